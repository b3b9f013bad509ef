"""A corpus of layer tars from the writers real images come from, each the one
layer of an OCI image, with what ``umoci unpack`` (Go's archive/tar, run as
root) makes of it: the oracle test_tar_corpus compares imgpull's rootfs with.

Cache: ``$IMGPULL_FIXTURE_CACHE/tar-corpus-v<CORPUS_VERSION>/<case>/``
(default cache /tmp/imgpull-fixtures); bump CORPUS_VERSION when a recipe
changes. Builds take the same kind of file lock as fixtures.py, so parallel
pytest processes build a case once. Each case directory holds

    layout/           OCI layout, tag ``latest``, one layer
    umoci.manifest    rootfs_manifest of ``umoci unpack`` (mtimes of
                      non-directories included), when umoci unpacks it
    umoci.error       umoci's last stderr line, when it refuses the layer
    tar-x.manifest    for cases umoci refuses: GNU tar's extraction instead
    info.json         {"case", "writer", "media_type", "layer_digest"}

The cases (CASES below; ``writer`` says which tool made the bytes):
  umoci-repack           umoci 0.4.7 repack (Go archive/tar writer, PAX)
  gnu-gnu                GNU tar --format=gnu: ././@LongLink 'L'/'K', base-256
                         uid/gid and a negative mtime
  gnu-gnu-sparse         GNU tar --format=gnu -S: old GNU sparse ('S'), which
                         umoci refuses; compared with ``tar -x`` instead
  gnu-posix-xattrs       GNU tar --format=posix --xattrs (SCHILY.xattr, one
                         of them empty-valued; PAX times with fractions, one
                         negative)
  gnu-posix-sparse-0.0 / -0.1 / -1.0   GNU tar --format=posix -S at each
                         PAX sparse version (GNU.sparse.* records)
  bsdtar-pax             bsdtar (libarchive) --format=pax --xattrs: both
                         SCHILY.xattr and LIBARCHIVE.xattr records, sparse
  bsdtar-ustar           bsdtar --format=ustar (names split into prefix/name)
  bsdtar-gnutar          bsdtar --format=gnutar
  buildah                buildah copy + commit (containers/storage's Go
                         writer), rootful with vfs storage
  py-base256             size, uid, gid, mtime (and a negative one) and device
                         numbers in base-256 fields (Python; no tool writes
                         base-256 for values that fit in octal)
  py-empty-pax-values    PAX records with empty values: SCHILY.xattr (deleted),
                         path, linkpath, uname, gname (the ustar value stays)
  py-negative-pax-time   mtime=-86400.25 (libarchive alone reads -86399.75)
  py-gnu-long-nul        a GNU long name with a NUL inside (both cut there)
  py-ustar-link-size     ustar hardlink/symlink/dir entries with a size but no
                         data (the size is ignored by both)
  py-rega-dir            typeflag NUL with a trailing slash: a directory
  py-zero-bytes          a 0-byte uncompressed layer (application/vnd.oci.
                         image.layer.v1.tar; hand-made layout)
  py-gzip-of-nothing     gzip of 0 bytes of tar (umoci raw add-layer of an
                         empty file)
  py-only-end-blocks     just the two zero blocks
  diff-*                 crafted shapes where imgpull and umoci are known to
                         differ (DIFFERENCES)
  refused-*              crafted shapes imgpull refuses on purpose (REFUSED)
The cases where imgpull and umoci are known to differ are listed in
DIFFERENCES (test_tar_corpus documents each, README "Tar fidelity").
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    from .harness import HarnessError, _run
    from .fixtures import UMOCI, TAR, _blob, _image_info, _locked
except ImportError:  # run as a script from tests/registry
    from harness import HarnessError, _run
    from fixtures import UMOCI, TAR, _blob, _image_info, _locked

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools import rootfs_manifest as rm  # noqa: E402

CORPUS_VERSION = "1"
BSDTAR = "/usr/bin/bsdtar"
BUILDAH = "/usr/bin/buildah"
COMPARE = {"mtime": "nondir", "include_root": False}
EPOCH = 1700000000
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def cache_root() -> str:
    base = os.environ.get("IMGPULL_FIXTURE_CACHE", "/tmp/imgpull-fixtures")
    return os.path.join(base, f"tar-corpus-v{CORPUS_VERSION}")


# --- the source tree the tools archive -------------------------------------------------

LONG_DIR = "long-" + "d" * 110
LONG_NAME = f"{LONG_DIR}/" + "n" * 120
LONG_TARGET = "../" + "t" * 150


def _touch(path, data=b"", mode=0o644, mtime=EPOCH, owner=None):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    if owner:
        os.lchown(path, *owner)
    os.utime(path, ns=(round(mtime * 10**9),) * 2)


def make_tree(root, sparse=True, devices=True):
    """Files of every kind and the attributes tar formats encode differently."""
    os.makedirs(f"{root}/d/empty-dir")
    _touch(f"{root}/d/file", b"hello\n")
    _touch(f"{root}/d/exec", b"#!/bin/sh\n", 0o755)
    _touch(f"{root}/d/setuid", b"suid\n", 0o4755)
    _touch(f"{root}/d/empty")
    _touch(f"{root}/d/owned", b"owned\n", owner=(1000, 1001))
    _touch(f"{root}/d/big-ids", b"ids\n", owner=(3000000, 3000001))  # > 7 octal digits
    _touch(f"{root}/d/subsecond", b"t\n", mtime=EPOCH + 0.123456789)
    _touch(f"{root}/d/before-epoch", b"old\n", mtime=-86400.25)
    _touch(os.fsencode(root) + b"/d/caf\xe9", b"latin-1 name\n")
    os.chmod(f"{root}/d/empty-dir", 0o1777)
    os.makedirs(f"{root}/{LONG_DIR}")
    _touch(f"{root}/{LONG_NAME}", b"long\n")
    os.symlink("d/file", f"{root}/s")
    os.symlink(LONG_TARGET, f"{root}/long-link")
    os.link(f"{root}/d/file", f"{root}/d/hard")
    os.mkfifo(f"{root}/d/fifo")
    if devices:
        os.mknod(f"{root}/d/null", 0o20666, os.makedev(1, 3))
    os.setxattr(f"{root}/d/file", "user.note", b"value")
    os.setxattr(f"{root}/d/file", "user.empty", b"")
    os.setxattr(f"{root}/d", "user.bin", bytes(range(0, 256, 15)))
    if sparse:
        with open(f"{root}/sparse", "wb") as f:
            f.truncate(3 << 20)
            f.seek(1 << 20)
            f.write(b"data in the middle")
        os.utime(f"{root}/sparse", (EPOCH, EPOCH))
    for path in (f"{root}/s", f"{root}/long-link", f"{root}/d/fifo", f"{root}/d/null",
                 f"{root}/d", root):
        if os.path.lexists(path):
            os.utime(path, (EPOCH, EPOCH), follow_symlinks=False)


# --- crafted tars (what no tool writes) --------------------------------------------------

def _octal(n, width):
    return b"%0*o\0" % (width - 1, n)


def _base256(n, width):
    b = (n % (1 << (8 * width))).to_bytes(width, "big")
    return bytes([b[0] | 0x80]) + b[1:]


def _header(name, typ=b"0", size=0, mode=0o644, uid=0, gid=0, mtime=EPOCH, link=b"",
            magic=b"ustar\x0000", uname=b"", gname=b"", devmajor=0, devminor=0):
    """One 512-byte header; a number given as bytes is put in as is (base-256)."""
    h = bytearray(512)

    def put(off, width, v):
        v = v.encode() if isinstance(v, str) else v
        v = v if isinstance(v, bytes) else _octal(v, width)
        h[off:off + min(width, len(v))] = v[:width]
    put(0, 100, name); put(100, 8, mode); put(108, 8, uid); put(116, 8, gid)
    put(124, 12, size); put(136, 12, mtime); h[156:157] = typ; put(157, 100, link)
    h[257:265] = magic; put(265, 32, uname); put(297, 32, gname)
    put(329, 8, devmajor); put(337, 8, devminor)
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 512)


def _file(name, data=b"", **kw):
    kw.setdefault("size", len(data))
    return _header(name, **kw) + _pad(data)


def _pax(records, typ=b"x"):
    body = b""
    for k, v in records:
        k = k.encode() if isinstance(k, str) else k
        v = v.encode() if isinstance(v, str) else v
        rest = b" " + k + b"=" + v + b"\n"
        n = len(rest) + 1
        while len(str(n)) + len(rest) != n:
            n = len(str(n)) + len(rest)
        body += str(n).encode() + rest
    return _header("PaxHeaders/x", typ=typ, size=len(body)) + _pad(body)


def _gnu_long(kind, value: bytes):
    return _header("././@LongLink", typ=kind, size=len(value) + 1,
                   magic=b"ustar  \0") + _pad(value + b"\0")


END = b"\0" * 1024


def _py_base256():
    gnu = {"magic": b"ustar  \0"}
    return (_file("size", b"hello", size=_base256(5, 12), **gnu)
            + _file("ids", b"x", uid=_base256(3000000, 8), gid=_base256(1234, 8), **gnu)
            + _file("mtime", b"x", mtime=_base256(EPOCH + 1, 12), **gnu)
            + _file("negative-mtime", b"x", mtime=_base256(-86400, 12), **gnu)
            + _header("null", typ=b"3", mode=0o666, devmajor=_base256(1, 8),
                      devminor=_base256(3, 8), **gnu)
            + END)


def _py_empty_pax_values():
    return (_pax([("SCHILY.xattr.user.empty", ""), ("SCHILY.xattr.user.full", "v")])
            + _file("xattrs", b"x")
            + _pax([("path", "")]) + _file("ustar-name", b"x")
            + _pax([("linkpath", "")]) + _header("link", typ=b"2", mode=0o777, link="ustar-target")
            + _pax([("uname", ""), ("gname", "")]) + _file("names", b"x", uname=b"root",
                                                           gname=b"root")
            + END)


def _py_negative_pax_time():
    return (_pax([("mtime", "-86400.25")]) + _file("before-epoch", b"x")
            + _pax([("mtime", "1700000000.987654321")]) + _file("after", b"x")
            + END)


def _py_gnu_long_nul():
    return (_gnu_long(b"L", b"name-before-nul\0after") + _file("short", b"x", magic=b"ustar  \0")
            + _gnu_long(b"K", b"target\0after") + _header("link", typ=b"2", mode=0o777,
                                                           link="short", magic=b"ustar  \0")
            + END)


def _py_ustar_link_size():
    return (_file("target", b"t")
            + _header("hard", typ=b"1", link="target", size=100)
            + _header("sym", typ=b"2", mode=0o777, link="target", size=100)
            + _header("dir/", typ=b"5", mode=0o755, size=100)
            + _file("after", b"a")
            + END)


def _py_rega_dir():
    return _header("d/", typ=b"\0", mode=0o700) + _file("d/f", b"x", typ=b"\0") + END


# Known differences, each a case: imgpull and umoci both unpack it and disagree.
# (name: (tar bytes, reason)). test_tar_corpus marks them xfail(strict=True).
def _py_empty_pax_ids_times():
    return (_pax([("uid", ""), ("gid", "")]) + _file("ids", b"x", uid=1234, gid=5678)
            + _pax([("mtime", "")]) + _file("mtime", b"x", mtime=1600000000)
            + END)


def _py_gnu_long_empty():
    return _gnu_long(b"L", b"") + _file("ustar-name", b"x", magic=b"ustar  \0") + END


def _py_pax_then_gnu_name():
    return _pax([("path", "pax-name")]) + _gnu_long(b"L", b"gnu-name") + _file("short", b"x") + END


def _py_reg_trailing_slash():
    return _header("d/", typ=b"0", mode=0o755) + END


def _py_hardlink_with_data():
    hidden = _file("hidden", b"h")
    return (_file("target", b"t") + _pax([("mtime", str(EPOCH))])
            + _header("link", typ=b"1", link="target", size=len(hidden)) + hidden + END)


def _py_libarchive_xattr_only():
    return _pax([("LIBARCHIVE.xattr.user.la", "dmFsdWU")]) + _file("f", b"x") + END


CRAFTED = {
    "py-base256": _py_base256,
    "py-empty-pax-values": _py_empty_pax_values,
    "py-negative-pax-time": _py_negative_pax_time,
    "py-gnu-long-nul": _py_gnu_long_nul,
    "py-ustar-link-size": _py_ustar_link_size,
    "py-rega-dir": _py_rega_dir,
    "py-only-end-blocks": lambda: END,
    "py-gzip-of-nothing": lambda: b"",
    "diff-empty-pax-ids-times": _py_empty_pax_ids_times,
    "diff-gnu-long-name-empty": _py_gnu_long_empty,
    "diff-pax-then-gnu-name": _py_pax_then_gnu_name,
    "diff-reg-trailing-slash": _py_reg_trailing_slash,
    "diff-libarchive-xattr-only": _py_libarchive_xattr_only,
    "refused-hardlink-with-data": _py_hardlink_with_data,
}

# Cases imgpull refuses on purpose though umoci unpacks them: {name: words of the error}.
REFUSED = {
    # After a PAX header libarchive reads the hardlink's size as data, Go reads the entry
    # "hidden" inside it as the next header: the same bytes, two different trees.
    "refused-hardlink-with-data": "hardlink entry that carries data",
}

DIFFERENCES = {
    "diff-empty-pax-ids-times": "empty PAX uid/gid/mtime: Go keeps the ustar value, "
                                "libarchive reads 0",
    "diff-gnu-long-name-empty": "empty GNU long name: Go keeps the ustar name, libarchive "
                                "reads an empty name (the entry names the root and is ignored)",
    "diff-pax-then-gnu-name": "PAX path and GNU long name on one entry: Go takes the GNU name, "
                              "libarchive the first one it reads",
    "diff-reg-trailing-slash": "typeflag '0' with a trailing slash: a file for Go, a directory "
                               "for libarchive",
    "diff-libarchive-xattr-only": "LIBARCHIVE.xattr records: Go reads only SCHILY.xattr",
}


# --- the tool-made layers -------------------------------------------------------------------

def _tar_layer(work, args, sparse=True, devices=True):
    src = os.path.join(work, "src")
    make_tree(src, sparse=sparse, devices=devices)
    out = os.path.join(work, "layer.tar")
    _run([*args(src, out)])
    return out


def _gnu(fmt, *extra, sparse=True):
    def build(work):
        return _tar_layer(work, lambda src, out: [TAR, f"--format={fmt}", *extra, "--sort=name",
                                                  "-C", src, "-cf", out, "."], sparse=sparse)
    return build


def _bsdtar(fmt, *extra, sparse=True):
    def build(work):
        return _tar_layer(work, lambda src, out: [BSDTAR, f"--format={fmt}", *extra, "-C", src,
                                                  "-cf", out, "."], sparse=sparse)
    return build


def _umoci_repack(work, layout):
    bundle = os.path.join(work, "bundle")
    _run([UMOCI, "new", "--image", f"{layout}:latest"])
    _run([UMOCI, "unpack", "--image", f"{layout}:latest", bundle])
    rootfs = os.path.join(bundle, "rootfs")
    shutil.rmtree(rootfs)
    make_tree(rootfs)
    _run([UMOCI, "repack", "--image", f"{layout}:latest", bundle])


def _buildah(work, layout):
    src = os.path.join(work, "src")
    make_tree(src)
    store = ["--storage-driver", "vfs", "--root", os.path.join(work, "storage"),
             "--runroot", os.path.join(work, "run")]
    ctr = _run([BUILDAH, *store, "from", "scratch"]).stdout.decode().strip().splitlines()[-1]
    try:
        _run([BUILDAH, *store, "copy", ctr, src + "/", "/"])
        _run([BUILDAH, *store, "commit", "--quiet", "--format", "oci", ctr,
              f"oci:{layout}:latest"])
    finally:
        subprocess.run([BUILDAH, *store, "rm", ctr], capture_output=True)


# case -> (writer, builder). A builder of kind "tar" returns an uncompressed tar that
# `umoci raw add-layer` makes the layer (gzip); "layout" writes the layout itself.
TOOL_CASES = {
    "gnu-gnu": ("GNU tar --format=gnu", "tar", _gnu("gnu", sparse=False)),
    "gnu-gnu-sparse": ("GNU tar --format=gnu -S", "tar", _gnu("gnu", "-S")),
    "gnu-posix-xattrs": ("GNU tar --format=posix --xattrs", "tar",
                         _gnu("posix", "--xattrs", "--xattrs-include=*", sparse=False)),
    "gnu-posix-sparse-0.0": ("GNU tar --format=posix -S --sparse-version=0.0", "tar",
                             _gnu("posix", "-S", "--sparse-version=0.0")),
    "gnu-posix-sparse-0.1": ("GNU tar --format=posix -S --sparse-version=0.1", "tar",
                             _gnu("posix", "-S", "--sparse-version=0.1")),
    "gnu-posix-sparse-1.0": ("GNU tar --format=posix -S --sparse-version=1.0", "tar",
                             _gnu("posix", "-S", "--sparse-version=1.0")),
    "bsdtar-pax": ("bsdtar --format=pax --xattrs", "tar", _bsdtar("pax", "--xattrs", "-S")),
    "bsdtar-ustar": ("bsdtar --format=ustar", "tar", _bsdtar("ustar", sparse=False)),
    "bsdtar-gnutar": ("bsdtar --format=gnutar", "tar", _bsdtar("gnutar", sparse=False)),
    "umoci-repack": ("umoci repack", "layout", _umoci_repack),
    "buildah": ("buildah copy + commit (vfs)", "layout", _buildah),
}

NAMES = [*TOOL_CASES, *CRAFTED, "py-zero-bytes"]


def writer(name) -> str:
    if name in TOOL_CASES:
        return TOOL_CASES[name][0]
    return "Python (crafted bytes)" if name != "py-zero-bytes" else "Python (hand-made layout)"


def unavailable(name) -> str | None:
    """Why a case cannot be built here (None when it can)."""
    tool = {"bsdtar": BSDTAR, "buildah": BUILDAH}.get(name.split("-")[0])
    if tool and not os.access(tool, os.X_OK):
        return f"{tool} is not installed (scripts/install-deps.sh)"
    if os.geteuid() != 0:
        return "the corpus trees have owners and device nodes: needs root"
    return None


# --- building and caching ----------------------------------------------------------------------

def _put_blob(layout, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(_blob(layout, digest), "wb") as f:
        f.write(data)
    return digest, len(data)


def _replace_layers(layout, layer: bytes, media_type: str, diff_id: str):
    """Make the image at layout:latest one layer of exactly these bytes."""
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    desc = index["manifests"][0]
    with open(_blob(layout, desc["digest"])) as f:
        manifest = json.load(f)
    with open(_blob(layout, manifest["config"]["digest"])) as f:
        config = json.load(f)
    config["rootfs"] = {"type": "layers", "diff_ids": [diff_id]}
    config["history"] = [{"created_by": "imgpull tests: tar corpus"}]
    cd, cs = _put_blob(layout, json.dumps(config).encode())
    ld, ls = _put_blob(layout, layer)
    manifest["config"].update(digest=cd, size=cs)
    manifest["layers"] = [{"mediaType": media_type, "digest": ld, "size": ls}]
    md, ms = _put_blob(layout, json.dumps(manifest).encode())
    desc.update(digest=md, size=ms)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)


def _build(name, final):
    parent = os.path.dirname(final)
    work = tempfile.mkdtemp(prefix=f".build-{name}-", dir=parent)
    try:
        out = os.path.join(work, "out")
        layout = os.path.join(out, "layout")
        os.makedirs(out)
        _run([UMOCI, "init", "--layout", layout])
        tar_path = None
        if name in TOOL_CASES and TOOL_CASES[name][1] == "layout":
            TOOL_CASES[name][2](work, layout)
        else:
            _run([UMOCI, "new", "--image", f"{layout}:latest"])
            if name == "py-zero-bytes":
                _replace_layers(layout, b"", OCI_LAYER_TAR, "sha256:" + hashlib.sha256().hexdigest())
            else:
                if name in TOOL_CASES:
                    tar_path = TOOL_CASES[name][2](work)
                else:
                    tar_path = os.path.join(work, "layer.tar")
                    with open(tar_path, "wb") as f:
                        f.write(CRAFTED[name]())
                _run([UMOCI, "raw", "add-layer", "--image", f"{layout}:latest", tar_path])
        _run([UMOCI, "config", "--image", f"{layout}:latest", "--os", "linux",
              "--architecture", "amd64"])
        _run([UMOCI, "gc", "--layout", layout])
        bundle = os.path.join(work, "umoci-unpack")
        p = subprocess.run([UMOCI, "unpack", "--image", f"{layout}:latest", bundle],
                           capture_output=True, text=True)
        if p.returncode == 0:
            m = rm.manifest(os.path.join(bundle, "rootfs"), **COMPARE)
            with open(os.path.join(out, "umoci.manifest"), "w") as f:
                f.write(rm.format_manifest(m))
        else:
            with open(os.path.join(out, "umoci.error"), "w") as f:
                f.write(p.stderr.strip().splitlines()[-1] + "\n")
            if tar_path is None:
                raise HarnessError(f"{name}: umoci refused it and there is no tar for tar -x:\n"
                                   f"{p.stderr}")
            xdir = os.path.join(work, "tar-x")
            os.makedirs(xdir)
            _run([TAR, "-xpf", tar_path, "--xattrs", "--xattrs-include=*", "--numeric-owner",
                  "-C", xdir])
            with open(os.path.join(out, "tar-x.manifest"), "w") as f:
                f.write(rm.format_manifest(rm.manifest(xdir, **COMPARE)))
        image = _image_info(layout, "latest")
        info = {"case": name, "writer": writer(name), "media_type": image["layer_media_types"][0],
                "layer_digest": image["layer_digests"][0]}
        with open(os.path.join(out, "info.json"), "w") as f:
            json.dump(info, f, indent=2)
        os.rename(out, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def get(name: str) -> str:
    """The case's cached directory (see the module doc), built on first use."""
    if name not in NAMES:
        raise ValueError(f"unknown corpus case {name!r}")
    root = cache_root()
    final = os.path.join(root, name)
    if not os.path.exists(os.path.join(final, "info.json")):
        with _locked(root):
            if not os.path.exists(os.path.join(final, "info.json")):
                _build(name, final)
    return final


if __name__ == "__main__":
    for n in sys.argv[1:] or NAMES:
        d = get(n)
        print(n, d, open(os.path.join(d, "info.json")).read().replace("\n", " "))
