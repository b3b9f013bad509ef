"""Fixture images for the real-registry tests, built with real tools (umoci,
GNU tar) and cached on disk.

Cache: ``$IMGPULL_FIXTURE_CACHE`` (default ``/tmp/imgpull-fixtures``) /
``v<FIXTURE_VERSION>/``. Change FIXTURE_VERSION whenever a build recipe
changes; the next run rebuilds into a fresh directory. Builds take a file
lock, so concurrent pytest processes build once. Each fixture directory holds:

    layout/      the OCI image layout (push it with harness.push)
    reference/   what ``umoci unpack --rootless`` makes of the image (rootfs/
                 of the top-level tag; for ``index`` one bundle per arch under
                 reference/<arch>/rootfs) -- a reference extraction for tests
    info.json    digests, media types, layer count, architecture(s)

Fixtures (tag in the layout is ``latest``; all layers are
``application/vnd.oci.image.layer.v1.tar+gzip`` as umoci writes them, and
umoci's manifests carry no ``mediaType`` field):

single -- 1 layer, linux/amd64, config: Cmd ["/bin/sh", "-c", "cat /hello.txt"],
    Env FIXTURE=single, WorkingDir /srv, Author "imgpull tests",
    label org.example.fixture=single. Files:
      /hello.txt                       "hello from imgpull fixture single\\n"
      /empty                           0 bytes
      /bin/hello.sh                    mode 0755, a shell script
      /srv/secret.txt                  mode 0600
      /srv/dir with space/file.txt     a name with spaces
      /srv/link-to-hello -> ../hello.txt   (relative symlink)
      /etc/debian_version, /etc/issue, /etc/host.conf      copied from the host
      /usr/share/common-licenses/BSD, GPL-3 (35 KiB), GPL -> GPL-3 (symlink)
      /usr/share/doc/base-files/...    copied (README, FAQ -> README, ...)
    (host files that do not exist on the build machine are skipped.)

multi -- 3 layers, linux/amd64, Cmd ["/bin/true"]:
  layer 1 (umoci repack): /srv/data/{a.txt "alpha\\n", gone.txt, config (file
      "cfg-file\\n")}, /srv/data/sub/ (empty dir), /srv/olddir/deep/f,
      /srv/opq/{o1, inner/o2}, /srv/keep.txt, plus /usr/share/doc/base-files/.
  layer 2 (umoci repack after `ln`, `ln -s`, `rm`, `rm -r`):
      /srv/data/a-hard.txt (regular file) and /srv/data/a.txt re-emitted as a
      *hardlink* entry to a-hard.txt (umoci writes the new name as the file
      and the old one as the link), /srv/data/a-sym -> a.txt (symlink),
      whiteouts /srv/data/.wh.gone.txt and /srv/.wh.olddir.
  layer 3 (GNU tar --sort=name + `umoci raw add-layer`):
      /srv/data/config/ (a directory replacing the layer-1 file, no whiteout
      for it -- the same shape umoci repack writes for that change) with
      /srv/data/config/inner.txt; /srv/opq/.wh..wh..opq (opaque marker) and
      /srv/opq/new.txt.
  Final tree under /srv: keep.txt, data/{a.txt, a-hard.txt (same inode),
  a-sym -> a.txt, config/inner.txt, sub/}, opq/new.txt. Gone: data/gone.txt,
  olddir/, opq/o1, opq/inner/.
  Why layer 3 is not umoci's own: umoci 0.4.7 `repack` never writes an
  opaque marker (after `rm -r dir; mkdir dir` it writes one .wh. entry per
  removed child), and `umoci insert --opaque` does write .wh..wh..opq but its
  tar stream is truncated (no padding of the last file, no end-of-archive
  blocks: GNU tar says "Unexpected EOF"), so it is not used here.

index -- an OCI image index (mediaType application/vnd.oci.image.index.v1+json,
  written by this module since no Debian tool makes one) listing two
  1-layer images, each with a platform object:
    linux/amd64: /etc/fixture-arch "amd64\\n", /hello.txt
    linux/arm64 (variant v8 in the index): /etc/fixture-arch "arm64\\n", /hello.txt
  Tag ``latest`` is the index; ``amd64`` and ``arm64`` tag the two images.
  Push it with ``push(..., all_=True)``.

v2s2 -- not a layout: the ``single`` layout pushed with ``fmt="v2s2"`` (the
  registry then holds a Docker schema 2 manifest, layers
  application/vnd.docker.image.rootfs.diff.tar.gzip).

debian -- a real distribution (debian(), pushed by conftest's ``debian_image``
  fixture as debian:minbase and debian:minbase-zstd): ``mmdebstrap
  --variant=minbase --include=iputils-ping,libcap2-bin bookworm`` written
  straight to a tar (mmdebstrap's own: pax, numeric owners, device nodes
  in ./dev, hard links, xattrs, SOURCE_DATE_EPOCH-clamped mtimes), that tar
  added verbatim as the one layer with ``umoci raw add-layer`` (gzip), then
  ``skopeo copy --dest-compress-format zstd`` into a second layout whose
  layer is application/vnd.oci.image.layer.v1.tar+zstd (same diff_id, same
  config). iputils-ping brings /usr/bin/ping with a security.capability
  xattr (cap_net_raw+ep, set by its postinst through libcap2-bin's setcap);
  a customize hook adds user.* xattrs to /etc/debian_version and /srv (so
  arbitrary xattrs, binary values and one on a directory are covered).
  Cached on its own key: ``$IMGPULL_FIXTURE_CACHE/debian-v<DEBIAN_FIXTURE_VERSION>/``
  (image/layout, image/layout-zstd, image/info.json); no reference/ (umoci
  0.4.7 cannot unpack zstd layers; unpack the gzip layout instead, it is
  the same tar). Needs mmdebstrap and Debian's archive (deb.debian.org,
  or $IMGPULL_DEBIAN_MIRROR); about 25 s to build cold on 2 cores.

big_blob(registry, repo, size) -- an image uploaded straight through the
  registry API whose one layer is an *uncompressed* tar
  (application/vnd.oci.image.layer.v1.tar) holding one file /random.bin of
  `size` random bytes (the blob is size + 512-byte header + padding + 1 KiB
  end-of-archive).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

try:  # imported as registry.fixtures (tests/ on sys.path, the normal way)
    from .harness import HarnessError, Registry, _run, push
except ImportError:  # run as a script from tests/registry
    from harness import HarnessError, Registry, _run, push

FIXTURE_VERSION = "1"
UMOCI = os.environ.get("IMGPULL_UMOCI", "/usr/bin/umoci")
TAR = "/bin/tar"
NAMES = ("single", "multi", "index")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"

SINGLE_HOST_FILES = [
    "/etc/debian_version", "/etc/issue", "/etc/host.conf",
    "/usr/share/common-licenses/BSD", "/usr/share/common-licenses/GPL-3",
    "/usr/share/common-licenses/GPL",
]
HOST_DIRS = ["/usr/share/doc/base-files"]


@dataclasses.dataclass
class Fixture:
    """A cached fixture image."""
    name: str
    layout: str          # OCI layout directory
    tag: str             # tag inside the layout ("latest")
    reference: str       # umoci's rootless unpack (bundle dir(s)), see module doc
    info: dict           # contents of info.json

    @property
    def layers(self) -> int:
        return self.info["layers"]


def cache_root() -> str:
    base = os.environ.get("IMGPULL_FIXTURE_CACHE", "/tmp/imgpull-fixtures")
    return os.path.join(base, f"v{FIXTURE_VERSION}")


def _umoci(*args):
    return _run([UMOCI, *args])


def _write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def _copy_host(src, rootfs):
    dst = os.path.join(rootfs, src.lstrip("/"))
    if not os.path.lexists(src):
        return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.isdir(src) and not os.path.islink(src):
        shutil.copytree(src, dst, symlinks=True)
    elif os.path.islink(src):
        os.symlink(os.readlink(src), dst)
    else:
        shutil.copy2(src, dst)


def _blob(layout, digest):
    return os.path.join(layout, "blobs", *digest.split(":", 1))


def _read_json(layout, digest):
    with open(_blob(layout, digest), "rb") as f:
        return json.load(f)


def _put_blob(layout, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(_blob(layout, digest), "wb") as f:
        f.write(data)
    return digest


def _index_entry(layout, tag):
    with open(os.path.join(layout, "index.json")) as f:
        idx = json.load(f)
    for d in idx["manifests"]:
        if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return d
    raise HarnessError(f"tag {tag} not in {layout}")


def _image_info(layout, tag):
    desc = _index_entry(layout, tag)
    man = _read_json(layout, desc["digest"])
    cfg = _read_json(layout, man["config"]["digest"])
    return {
        "manifest_digest": desc["digest"],
        "manifest_size": desc["size"],
        "config_digest": man["config"]["digest"],
        "layers": len(man["layers"]),
        "layer_digests": [l["digest"] for l in man["layers"]],
        "layer_media_types": [l["mediaType"] for l in man["layers"]],
        "diff_ids": cfg["rootfs"]["diff_ids"],
        "architecture": cfg.get("architecture"),
        "os": cfg.get("os"),
    }


def _config(layout, tag, *extra):
    _umoci("config", "--image", f"{layout}:{tag}", "--os", "linux",
           "--author", "imgpull tests", *extra)


def _new_bundle(layout, tag, bundle):
    _umoci("new", "--image", f"{layout}:{tag}")
    _umoci("unpack", "--rootless", "--image", f"{layout}:{tag}", bundle)
    return os.path.join(bundle, "rootfs")


def _repack(layout, tag, bundle, comment):
    _umoci("repack", "--refresh-bundle", "--history.comment", comment,
           "--image", f"{layout}:{tag}", bundle)


def _build_single(work, layout):
    _umoci("init", "--layout", layout)
    rootfs = _new_bundle(layout, "latest", os.path.join(work, "bundle"))
    _write(os.path.join(rootfs, "hello.txt"), "hello from imgpull fixture single\n")
    _write(os.path.join(rootfs, "empty"), "")
    _write(os.path.join(rootfs, "bin/hello.sh"), "#!/bin/sh\necho hello\n", 0o755)
    _write(os.path.join(rootfs, "srv/secret.txt"), "not for everyone\n", 0o600)
    _write(os.path.join(rootfs, "srv/dir with space/file.txt"), "spaces\n")
    os.symlink("../hello.txt", os.path.join(rootfs, "srv/link-to-hello"))
    for p in SINGLE_HOST_FILES + HOST_DIRS:
        _copy_host(p, rootfs)
    _repack(layout, "latest", os.path.join(work, "bundle"), "single: files")
    _config(layout, "latest", "--architecture", "amd64",
            "--config.cmd", "/bin/sh", "--config.cmd", "-c", "--config.cmd", "cat /hello.txt",
            "--config.env", "FIXTURE=single", "--config.workingdir", "/srv",
            "--config.label", "org.example.fixture=single")


def _build_multi(work, layout):
    _umoci("init", "--layout", layout)
    bundle = os.path.join(work, "bundle")
    rootfs = _new_bundle(layout, "latest", bundle)
    srv = os.path.join(rootfs, "srv")
    _write(f"{srv}/data/a.txt", "alpha\n")
    _write(f"{srv}/data/gone.txt", "to be deleted\n")
    _write(f"{srv}/data/config", "cfg-file\n")
    os.makedirs(f"{srv}/data/sub")
    _write(f"{srv}/olddir/deep/f", "deep\n")
    _write(f"{srv}/opq/o1", "o1\n")
    _write(f"{srv}/opq/inner/o2", "o2\n")
    _write(f"{srv}/keep.txt", "kept\n")
    for p in HOST_DIRS:
        _copy_host(p, rootfs)
    _repack(layout, "latest", bundle, "multi layer 1: base")
    # layer 2: hardlink, symlink, delete a file and a directory
    os.link(f"{srv}/data/a.txt", f"{srv}/data/a-hard.txt")
    os.symlink("a.txt", f"{srv}/data/a-sym")
    os.unlink(f"{srv}/data/gone.txt")
    shutil.rmtree(f"{srv}/olddir")
    _repack(layout, "latest", bundle, "multi layer 2: links and whiteouts")
    # layer 3: file -> directory, opaque directory (see module doc)
    stage = os.path.join(work, "layer3")
    _write(f"{stage}/srv/data/config/inner.txt", "now a directory\n")
    _write(f"{stage}/srv/opq/.wh..wh..opq", "")
    _write(f"{stage}/srv/opq/new.txt", "new\n")
    layer3 = os.path.join(work, "layer3.tar")
    _run([TAR, "--sort=name", "--owner=0", "--group=0", "--numeric-owner",
          "-C", stage, "-cf", layer3, "srv"])
    _umoci("raw", "add-layer", "--history.comment", "multi layer 3: file->dir, opaque dir",
           "--image", f"{layout}:latest", layer3)
    _config(layout, "latest", "--architecture", "amd64", "--config.cmd", "/bin/true")


def _build_index(work, layout):
    _umoci("init", "--layout", layout)
    manifests = []
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        bundle = os.path.join(work, f"bundle-{arch}")
        rootfs = _new_bundle(layout, arch, bundle)
        _write(os.path.join(rootfs, "etc/fixture-arch"), f"{arch}\n")
        _write(os.path.join(rootfs, "hello.txt"), f"hello from the {arch} image\n")
        _repack(layout, arch, bundle, f"index: {arch}")
        _config(layout, arch, "--architecture", arch, "--config.cmd", "/bin/true")
        d = _index_entry(layout, arch)
        platform = {"architecture": arch, "os": "linux"}
        if variant:
            platform["variant"] = variant
        manifests.append({"mediaType": OCI_MANIFEST, "digest": d["digest"],
                          "size": d["size"], "platform": platform})
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    data = json.dumps(index, indent=2).encode()
    digest = _put_blob(layout, data)
    path = os.path.join(layout, "index.json")
    with open(path) as f:
        top = json.load(f)
    top["manifests"].append({"mediaType": OCI_INDEX, "digest": digest, "size": len(data),
                             "annotations": {"org.opencontainers.image.ref.name": "latest"}})
    with open(path, "w") as f:
        json.dump(top, f)


BUILDERS = {"single": _build_single, "multi": _build_multi, "index": _build_index}


def _build(name, final):
    parent = os.path.dirname(final)
    work = tempfile.mkdtemp(prefix=f".build-{name}-", dir=parent)
    try:
        layout = os.path.join(work, "out", "layout")
        os.makedirs(os.path.dirname(layout))
        BUILDERS[name](work, layout)
        _umoci("gc", "--layout", layout)
        ref = os.path.join(work, "out", "reference")
        os.makedirs(ref)
        if name == "index":
            info = {"name": name, "tag": "latest", "layers": 1,
                    "index_digest": _index_entry(layout, "latest")["digest"],
                    "architectures": ["amd64", "arm64"], "platforms": {}}
            for arch in ("amd64", "arm64"):
                _umoci("unpack", "--rootless", "--image", f"{layout}:{arch}",
                       os.path.join(ref, arch))
                info["platforms"][arch] = _image_info(layout, arch)
        else:
            _umoci("unpack", "--rootless", "--image", f"{layout}:latest", ref + "/bundle")
            os.rename(ref + "/bundle/rootfs", ref + "/rootfs")
            shutil.rmtree(ref + "/bundle")
            info = {"name": name, "tag": "latest", **_image_info(layout, "latest")}
        with open(os.path.join(work, "out", "info.json"), "w") as f:
            json.dump(info, f, indent=2)
        os.rename(os.path.join(work, "out"), final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _locked(root):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, ".lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lk, fcntl.LOCK_UN)


def get(name: str, cache: str | None = None) -> Fixture:
    """The fixture `name` (single, multi, index), built on first use."""
    if name not in BUILDERS:
        raise ValueError(f"unknown fixture {name!r}; have {NAMES}")
    root = cache or cache_root()
    final = os.path.join(root, name)
    if not os.path.exists(os.path.join(final, "info.json")):
        with _locked(root):
            if not os.path.exists(os.path.join(final, "info.json")):
                _build(name, final)
    with open(os.path.join(final, "info.json")) as f:
        info = json.load(f)
    return Fixture(name, os.path.join(final, "layout"), "latest",
                   os.path.join(final, "reference"), info)


def build_all(cache: str | None = None) -> dict[str, Fixture]:
    """All layout fixtures, {name: Fixture}."""
    return {n: get(n, cache) for n in NAMES}


# Standard repository set pushed into every test registry:
#   (fixture, repo:tag, push kwargs)
STANDARD_PUSHES = [
    ("single", "single:latest", {}),
    ("multi", "multi:latest", {}),
    ("index", "index:latest", {"all_": True}),
    ("single", "v2s2:latest", {"fmt": "v2s2"}),
]


def push_standard(registry: Registry, fixtures: dict[str, Fixture] | None = None) -> dict:
    """Push the standard set (plus public/single:latest for token registries).
    Returns {repo:tag: pushed digest}."""
    fixtures = fixtures or build_all()
    pushes = list(STANDARD_PUSHES)
    if registry.flavour == "token":
        pushes.append(("single", "public/single:latest", {}))
    out = {}
    for name, target, kw in pushes:
        fx = fixtures[name]
        out[target] = push(registry, fx.layout, fx.tag, target, **kw)
    return out


@dataclasses.dataclass
class BigImage:
    repo: str
    tag: str
    manifest_digest: str
    config_digest: str
    layer_digest: str     # sha256 of the (uncompressed) tar blob = diff_id
    layer_size: int
    file_name: str        # path in the image: "random.bin"
    file_size: int
    file_sha256: str      # of the file's contents

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.tag}"

    def __str__(self) -> str:  # so f"{host}/{big}" names it
        return self.ref


def _write_random_tar(path, size, chunk=1 << 20):
    """Tar with one file random.bin of `size` random bytes, written and hashed
    in `chunk` pieces. Returns (tar sha256 hex, tar size, file sha256 hex)."""
    ti = tarfile.TarInfo("random.bin")
    ti.size = size
    ti.mode = 0o644
    ti.mtime = int(time.time())
    ti.type = tarfile.REGTYPE
    header = ti.tobuf(format=tarfile.PAX_FORMAT if size >= 8 ** 11 else tarfile.USTAR_FORMAT)
    th, fh = hashlib.sha256(), hashlib.sha256()
    total = 0
    with open(path, "wb") as f:
        def out(b):
            nonlocal total
            f.write(b)
            th.update(b)
            total += len(b)
        out(header)
        # AES-256-CTR keystream from a random key: random bytes at GB/s
        # (os.urandom manages ~300 MB/s here).
        stream = Cipher(algorithms.AES(os.urandom(32)), modes.CTR(os.urandom(16))).encryptor()
        zeros = bytes(chunk)
        left = size
        while left:
            n = min(chunk, left)
            b = stream.update(zeros if n == chunk else bytes(n))
            fh.update(b)
            out(b)
            left -= len(b)
        pad = (-size) % 512
        out(b"\0" * (pad + 1024))
    return th.hexdigest(), total, fh.hexdigest()


def _upload_blob(registry, repo, path, digest, size):
    r = registry.api("POST", f"/v2/{repo}/blobs/uploads/", body=b"",
                     headers={"Content-Length": "0"})
    if r.status != 202:
        raise HarnessError(f"upload start: {r.status} {r.body[:300]!r}")
    loc = r.headers["Location"]
    sep = "&" if "?" in loc else "?"
    with open(path, "rb") as f:
        r = registry.api("PUT", f"{loc}{sep}digest={digest}", body=f,
                         headers={"Content-Length": str(size),
                                  "Content-Type": "application/octet-stream"},
                         timeout=600)
    if r.status != 201:
        raise HarnessError(f"upload PUT: {r.status} {r.body[:300]!r}")


def _upload_bytes(registry, repo, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = registry.api("POST", f"/v2/{repo}/blobs/uploads/", body=b"",
                     headers={"Content-Length": "0"})
    if r.status != 202:
        raise HarnessError(f"upload start: {r.status} {r.body[:300]!r}")
    loc = r.headers["Location"]
    sep = "&" if "?" in loc else "?"
    r = registry.api("PUT", f"{loc}{sep}digest={digest}", body=data,
                     headers={"Content-Length": str(len(data)),
                              "Content-Type": "application/octet-stream"})
    if r.status != 201:
        raise HarnessError(f"upload PUT: {r.status} {r.body[:300]!r}")
    return digest


def big_blob(registry: Registry, repo: str, size: int, tag: str = "latest",
             workdir: str | None = None) -> BigImage:
    """Push an image whose single layer is an uncompressed tar with one file of
    `size` random bytes, straight through the registry API (POST upload, then
    one streaming PUT ?digest=, then config blob and OCI manifest). The tar
    is staged in a temporary file (in workdir, default registry.tmpdir) that
    is deleted afterwards; memory use stays at a few MiB for any size.
    Works for every flavour (auth via Registry.api)."""
    fd, path = tempfile.mkstemp(prefix="bigblob-", suffix=".tar",
                                dir=workdir or registry.tmpdir)
    os.close(fd)
    try:
        tar_hex, tar_size, file_hex = _write_random_tar(path, size)
        layer_digest = "sha256:" + tar_hex
        _upload_blob(registry, repo, path, layer_digest, tar_size)
    finally:
        os.unlink(path)
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "imgpull tests big_blob"}],
    }
    cfg_bytes = json.dumps(config).encode()
    config_digest = _upload_bytes(registry, repo, cfg_bytes)
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(cfg_bytes)},
        "layers": [{"mediaType": OCI_LAYER_TAR, "digest": layer_digest, "size": tar_size}],
    }
    man_bytes = json.dumps(manifest).encode()
    r = registry.api("PUT", f"/v2/{repo}/manifests/{tag}", body=man_bytes,
                     headers={"Content-Type": OCI_MANIFEST,
                              "Content-Length": str(len(man_bytes))})
    if r.status != 201:
        raise HarnessError(f"manifest PUT: {r.status} {r.body[:300]!r}")
    return BigImage(repo, tag, "sha256:" + hashlib.sha256(man_bytes).hexdigest(),
                    config_digest, layer_digest, tar_size, "random.bin", size, file_hex)


# ---------------------------------------------------------------------------
# debian: a real Debian minbase root filesystem (see the module doc)

DEBIAN_FIXTURE_VERSION = "1"
MMDEBSTRAP = os.environ.get("IMGPULL_MMDEBSTRAP", "/usr/bin/mmdebstrap")
SKOPEO_BIN = os.environ.get("IMGPULL_SKOPEO", "/usr/bin/skopeo")
DEBIAN_MIRROR = os.environ.get("IMGPULL_DEBIAN_MIRROR", "http://deb.debian.org/debian")
DEBIAN_SUITE = "bookworm"
DEBIAN_VARIANT = "minbase"
DEBIAN_INCLUDE = ("iputils-ping", "libcap2-bin")
DEBIAN_EPOCH = 1700000000  # SOURCE_DATE_EPOCH: every mtime in the tar is clamped to it
DEBIAN_TAG = "minbase"
DEBIAN_ZSTD_TAG = "minbase-zstd"
DEBIAN_XATTRS = {  # added by a customize hook; path in the rootfs -> (name, value)
    "etc/debian_version": ("user.imgpull.fixture", b"debian-minbase"),
    "srv": ("user.imgpull.bytes", bytes(range(0, 256, 17))),
}
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
_OCI_ARCH = {"amd64": "amd64", "arm64": "arm64", "i386": "386", "ppc64el": "ppc64le",
             "s390x": "s390x", "riscv64": "riscv64", "armhf": "arm"}


@dataclasses.dataclass
class DebianImage:
    """The cached Debian minbase image: two OCI layouts (gzip and zstd) of
    the same one-layer image. After conftest's ``debian_image`` fixture
    pushed it, ``pushed`` is {"debian:minbase": digest, "debian:minbase-zstd": digest}."""
    layout: str           # gzip layer (umoci's), tag DEBIAN_TAG
    tag: str
    zstd_layout: str      # zstd layer (skopeo's), tag DEBIAN_ZSTD_TAG
    zstd_tag: str
    info: dict            # info.json: sizes, digests, entry counts, build times
    cached: bool = True   # False when debian() built it just now
    get_seconds: float = 0.0
    repo: str = "debian"
    pushed: dict = dataclasses.field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.tag}"

    @property
    def zstd_ref(self) -> str:
        return f"{self.repo}:{self.zstd_tag}"


def debian_cache_dir(cache: str | None = None) -> str:
    base = cache or os.environ.get("IMGPULL_FIXTURE_CACHE", "/tmp/imgpull-fixtures")
    return os.path.join(base, f"debian-v{DEBIAN_FIXTURE_VERSION}")


def debian_unavailable() -> str | None:
    """Why the Debian fixture cannot be built here (None when it can, or is cached)."""
    if os.path.exists(os.path.join(debian_cache_dir(), "image", "info.json")):
        return None
    if not os.access(MMDEBSTRAP, os.X_OK):
        return f"{MMDEBSTRAP} is not installed (apt-get install mmdebstrap)"
    return None


def _dpkg_arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], stdout=subprocess.PIPE,
                          text=True, check=True).stdout.strip()


def _scan_rootfs_tar(path) -> dict:
    """Counts of what the mmdebstrap tar holds, and a check that the
    attributes the fixture exists for made it into the tar."""
    counts = {"entries": 0, "files": 0, "dirs": 0, "symlinks": 0, "hardlinks": 0,
              "char_devices": 0, "block_devices": 0, "fifos": 0,
              "setuid_setgid_sticky": 0, "non_root_owned": 0, "xattrs": {}}
    packages = 0
    with tarfile.open(path) as t:
        for m in t:
            counts["entries"] += 1
            key = ("files" if m.isreg() else "dirs" if m.isdir() else "symlinks" if m.issym()
                   else "hardlinks" if m.islnk() else "char_devices" if m.ischr()
                   else "block_devices" if m.isblk() else "fifos" if m.isfifo() else None)
            if key:
                counts[key] += 1
            if m.mode & 0o7000:
                counts["setuid_setgid_sticky"] += 1
            if m.uid or m.gid:
                counts["non_root_owned"] += 1
            for k in m.pax_headers:
                if k.startswith("SCHILY.xattr."):
                    counts["xattrs"].setdefault(m.name.removeprefix("./").rstrip("/") or "/", []).append(
                        k[len("SCHILY.xattr."):])
            if m.name in ("./var/lib/dpkg/status", "var/lib/dpkg/status"):
                packages = t.extractfile(m).read().count(b"\nPackage: ") + 1
    counts["packages"] = packages
    want = {"usr/bin/ping": "security.capability",
            **{p: name for p, (name, _) in DEBIAN_XATTRS.items()}}
    for p, name in want.items():
        if name not in counts["xattrs"].get(p, []):
            raise HarnessError(f"mmdebstrap tar {path}: /{p} has no {name} xattr "
                               f"(xattrs seen: {counts['xattrs']})")
    if not counts["hardlinks"] or not counts["char_devices"]:
        raise HarnessError(f"mmdebstrap tar {path} has no hard links or no devices: {counts}")
    return counts


def _layer_desc(layout, tag) -> dict:
    man = _read_json(layout, _index_entry(layout, tag)["digest"])
    (layer,) = man["layers"]
    return layer


def _build_debian(final):
    parent = os.path.dirname(final)
    work = tempfile.mkdtemp(prefix=".build-debian-", dir=parent)
    times = {}
    try:
        out = os.path.join(work, "out")
        os.makedirs(out)
        tar = os.path.join(work, "rootfs.tar")
        hook = "/usr/bin/python3 -c " + _shell_quote(
            "import os, sys; r = sys.argv[1]; "
            + "; ".join(f"os.setxattr(os.path.join(r, {p!r}), {n!r}, {v!r})"
                        for p, (n, v) in DEBIAN_XATTRS.items())) + ' "$1"'
        cmd = [MMDEBSTRAP, f"--variant={DEBIAN_VARIANT}", "--include=" + ",".join(DEBIAN_INCLUDE),
               "--format=tar", f"--customize-hook={hook}", DEBIAN_SUITE, tar,
               f"deb {DEBIAN_MIRROR} {DEBIAN_SUITE} main"]
        t = time.monotonic()
        _run(cmd, stdin=subprocess.DEVNULL,
             env={**os.environ, "SOURCE_DATE_EPOCH": str(DEBIAN_EPOCH)})
        times["mmdebstrap_seconds"] = round(time.monotonic() - t, 2)

        t = time.monotonic()
        counts = _scan_rootfs_tar(tar)
        with open(tar, "rb") as f:
            diff_id = "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
        tar_size = os.path.getsize(tar)
        times["scan_seconds"] = round(time.monotonic() - t, 2)

        t = time.monotonic()
        layout = os.path.join(out, "layout")
        arch = _OCI_ARCH.get(_dpkg_arch(), _dpkg_arch())
        _umoci("init", "--layout", layout)
        _umoci("new", "--image", f"{layout}:{DEBIAN_TAG}")
        created_by = (f"SOURCE_DATE_EPOCH={DEBIAN_EPOCH} mmdebstrap --variant={DEBIAN_VARIANT} "
                      f"--include={','.join(DEBIAN_INCLUDE)} --customize-hook=<user xattrs> "
                      f"{DEBIAN_SUITE} rootfs.tar")
        _umoci("raw", "add-layer", "--history.created_by", created_by,
               "--image", f"{layout}:{DEBIAN_TAG}", tar)
        _umoci("config", "--image", f"{layout}:{DEBIAN_TAG}", "--os", "linux",
               "--architecture", arch, "--author", "imgpull tests",
               "--config.cmd", "bash",
               "--config.env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        _umoci("gc", "--layout", layout)
        times["umoci_seconds"] = round(time.monotonic() - t, 2)
        os.unlink(tar)

        t = time.monotonic()
        zstd_layout = os.path.join(out, "layout-zstd")
        _run([SKOPEO_BIN, "--insecure-policy", "copy", "--quiet", "--dest-compress-format", "zstd",
              f"oci:{layout}:{DEBIAN_TAG}", f"oci:{zstd_layout}:{DEBIAN_ZSTD_TAG}"])
        times["skopeo_zstd_seconds"] = round(time.monotonic() - t, 2)

        gz, zs = _layer_desc(layout, DEBIAN_TAG), _layer_desc(zstd_layout, DEBIAN_ZSTD_TAG)
        gz_info, zs_info = _image_info(layout, DEBIAN_TAG), _image_info(zstd_layout, DEBIAN_ZSTD_TAG)
        if zs["mediaType"] != OCI_LAYER_ZSTD:
            raise HarnessError(f"skopeo wrote a {zs['mediaType']} layer, not zstd")
        if gz_info["diff_ids"] != [diff_id] or zs_info["diff_ids"] != [diff_id]:
            raise HarnessError(f"diff_ids {gz_info['diff_ids']} / {zs_info['diff_ids']} "
                               f"are not the mmdebstrap tar's {diff_id}")
        info = {
            "name": "debian", "tag": DEBIAN_TAG, "zstd_tag": DEBIAN_ZSTD_TAG,
            "suite": DEBIAN_SUITE, "variant": DEBIAN_VARIANT, "include": list(DEBIAN_INCLUDE),
            "mirror": DEBIAN_MIRROR, "source_date_epoch": DEBIAN_EPOCH,
            "mmdebstrap": _run([MMDEBSTRAP, "--version"], text=True).stdout.strip(),
            "architecture": arch, "diff_id": diff_id, "tar_size": tar_size,
            "gzip": {**gz_info, "layer_size": gz["size"]},
            "zstd": {**zs_info, "layer_size": zs["size"]},
            **counts, **times,
        }
        info["build_seconds"] = round(sum(times.values()), 2)
        with open(os.path.join(out, "info.json"), "w") as f:
            json.dump(info, f, indent=2)
        os.rename(out, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _shell_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def debian(cache: str | None = None) -> DebianImage:
    """The Debian minbase fixture, built on first use (about 25 s, needs
    mmdebstrap and the Debian archive), then read from the cache."""
    t = time.monotonic()
    root = debian_cache_dir(cache)
    final = os.path.join(root, "image")
    built = False
    if not os.path.exists(os.path.join(final, "info.json")):
        with _locked(root):
            if not os.path.exists(os.path.join(final, "info.json")):
                _build_debian(final)
                built = True
    with open(os.path.join(final, "info.json")) as f:
        info = json.load(f)
    return DebianImage(os.path.join(final, "layout"), DEBIAN_TAG,
                       os.path.join(final, "layout-zstd"), DEBIAN_ZSTD_TAG, info,
                       cached=not built, get_seconds=time.monotonic() - t)


def push_index(registry: Registry, repo: str, tag: str, entries: list[dict],
               media_type: str = OCI_INDEX) -> dict:
    """Push an index (OCI, or a Docker manifest list with media_type) of
    `entries` (descriptors: mediaType, digest, size, optional platform) as
    REPO:TAG through the registry API, for shapes no tool makes (an index whose
    entry is another index). Every entry must already be in REPO. Returns the
    index's own descriptor ({"mediaType", "digest", "size"})."""
    body = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}).encode()
    r = registry.api("PUT", f"/v2/{repo}/manifests/{tag}", body=body,
                     headers={"Content-Type": media_type, "Content-Length": str(len(body))})
    if r.status != 201:
        raise HarnessError(f"index PUT {repo}:{tag}: {r.status} {r.body[:300]!r}")
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(body).hexdigest(), "size": len(body)}


def push_layout_exact(registry: Registry, layout: str, tag_in_layout: str, repo_and_tag: str) -> str:
    """Push one image of an OCI layout byte for byte through the registry API:
    its blobs as they are, then its manifest as it is. Returns the manifest
    digest.

    skopeo is not used for images whose layers exist in two compressions:
    with a persistent blob-info cache (/var/lib/containers/cache when root,
    written by any skopeo or podman run on the machine) it may "reuse" the
    gzip blob of the same diffID already in the registry instead of uploading
    the zstd one, and push a different image than the layout holds."""
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    [desc] = [m for m in index["manifests"]
              if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag_in_layout]
    blob = lambda d: os.path.join(layout, "blobs", *d.split(":"))  # noqa: E731
    with open(blob(desc["digest"]), "rb") as f:
        manifest_bytes = f.read()
    manifest = json.loads(manifest_bytes)
    repo, tag = repo_and_tag.rsplit(":", 1)
    for d in [manifest["config"], *manifest["layers"]]:
        _upload_blob(registry, repo, blob(d["digest"]), d["digest"], d["size"])
    r = registry.api("PUT", f"/v2/{repo}/manifests/{tag}", body=manifest_bytes,
                     headers={"Content-Type": desc["mediaType"], "Content-Length": str(len(manifest_bytes))})
    if r.status != 201:
        raise HarnessError(f"manifest PUT: {r.status} {r.body[:300]!r}")
    return desc["digest"]


def push_debian(registry: Registry, image: DebianImage) -> dict:
    """Push both variants (repo ``debian``); returns and records {repo:tag: digest}."""
    image.pushed = {
        image.ref: push_layout_exact(registry, image.layout, image.tag, image.ref),
        image.zstd_ref: push_layout_exact(registry, image.zstd_layout, image.zstd_tag, image.zstd_ref),
    }
    return image.pushed


if __name__ == "__main__":
    t = time.monotonic()
    for n, fx in build_all().items():
        print(n, fx.layout, fx.info.get("layers"), fx.info.get("architecture",
                                                               fx.info.get("architectures")))
    print(f"{time.monotonic() - t:.2f}s")
