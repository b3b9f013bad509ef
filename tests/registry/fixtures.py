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


if __name__ == "__main__":
    t = time.monotonic()
    for n, fx in build_all().items():
        print(n, fx.layout, fx.info.get("layers"), fx.info.get("architecture",
                                                               fx.info.get("architectures")))
    print(f"{time.monotonic() - t:.2f}s")
