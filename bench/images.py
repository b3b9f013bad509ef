"""Benchmark images, built once and cached under the bench cache directory.

big        5 gzip layers of real content: layer 1 is the Debian minbase tar of
           tests/registry/fixtures.py (mmdebstrap), layers 2-5 are GNU tar
           archives of directories of this machine's /usr (shared libraries,
           /usr/share, compilers and headers, binaries), compressed with pigz -6.
           About 3 GB uncompressed, about 1 GB compressed.
big-zstd   the same tars compressed with zstd -3 (same diff_ids, same config).
minbase    the Debian minbase fixture (one gzip layer), as the tests use it.
minbase-zstd  its zstd variant (skopeo --dest-compress-format zstd).

Every image keeps, beside its OCI layout, the uncompressed tar of each layer
(tars/<diff_id hex>.tar) for the tar -x floor.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from registry import fixtures  # noqa: E402
from registry.harness import HarnessError, _run  # noqa: E402

BIG_VERSION = "1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def _multiarch_lib() -> str:
    for d in sorted(glob.glob("/usr/lib/*-linux-gnu")):
        if os.path.isdir(d) and not os.path.islink(d):
            return d.lstrip("/")
    return "usr/lib"


def big_layer_dirs() -> list[list[str]]:
    """Host directories (relative to /) for layers 2-5."""
    layers = [
        [_multiarch_lib()],
        ["usr/share"],
        ["usr/lib/gcc", "usr/include", "usr/lib/python3", "usr/lib/python3.11"],
        ["usr/bin", "usr/sbin", "usr/libexec"],
    ]
    return [[d for d in ds if os.path.isdir("/" + d)] for ds in layers]


@dataclasses.dataclass
class Image:
    name: str            # big, big-zstd, minbase, minbase-zstd
    layout: str          # OCI layout directory
    tag: str             # tag in the layout
    repo_tag: str        # where it is pushed: "bench/big:gzip"
    compression: str     # gzip | zstd
    layer_blobs: list    # paths of the layer blobs in the layout, in order
    layer_digests: list  # "sha256:..." in order
    tars: list           # uncompressed tar per layer, in order
    compressed_bytes: int
    uncompressed_bytes: int
    entries: int | None = None
    note: str = ""


def _blob_path(layout, digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", algo, hexd)


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def _manifest(layout, tag):
    index = _read_json(os.path.join(layout, "index.json"))
    for m in index["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return _read_json(_blob_path(layout, m["digest"]))
    raise HarnessError(f"no tag {tag} in {layout}")


def _sha256_file(path) -> str:
    with open(path, "rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def _put_blob(layout, src_path=None, data: bytes | None = None) -> tuple[str, int]:
    """Moves a file (or writes bytes) into the layout's blobs; returns (digest, size)."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    if data is not None:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(_blob_path(layout, digest), "wb") as f:
            f.write(data)
        return digest, len(data)
    digest = _sha256_file(src_path)
    size = os.path.getsize(src_path)
    os.replace(src_path, _blob_path(layout, digest))
    return digest, size


def _write_layout(layout, tags: dict[str, bytes]):
    """index.json naming each manifest (bytes) by tag."""
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}\n')
    entries = []
    for tag, man in tags.items():
        digest, size = _put_blob(layout, data=man)
        entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                        "annotations": {"org.opencontainers.image.ref.name": tag}})
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": entries}, f)


def _log(msg):
    print(f"[images] {msg}", flush=True)


def _ensure_tar_of(blob: str, compression: str, tars_dir: str, diff_id: str) -> str:
    """The uncompressed tar of a layer blob, made once with igzip/zstd."""
    os.makedirs(tars_dir, exist_ok=True)
    path = os.path.join(tars_dir, diff_id.split(":", 1)[1] + ".tar")
    if not os.path.exists(path):
        tool = ["igzip", "-dc"] if compression == "gzip" else ["zstd", "-dcq"]
        tmp = path + ".tmp"
        with open(tmp, "wb") as out:
            subprocess.run([*tool, blob], stdout=out, check=True)
        if _sha256_file(tmp) != diff_id:
            raise HarnessError(f"{blob} does not decompress to {diff_id}")
        os.replace(tmp, path)
    return path


def minbase(cache: str) -> list[Image]:
    t = time.monotonic()
    deb = fixtures.debian(cache=cache)
    if not deb.cached:
        _log(f"built the Debian minbase fixture in {time.monotonic() - t:.0f}s")
    info = deb.info
    diff_id = info["diff_id"]
    tars_dir = os.path.join(cache, "tars")
    out = []
    for name, layout, tag, comp in (("minbase", deb.layout, deb.tag, "gzip"),
                                    ("minbase-zstd", deb.zstd_layout, deb.zstd_tag, "zstd")):
        man = _manifest(layout, tag)
        blobs = [_blob_path(layout, l["digest"]) for l in man["layers"]]
        tar = _ensure_tar_of(blobs[0], comp, tars_dir, diff_id)
        out.append(Image(name, layout, tag, f"bench/debian:{tag}", comp, blobs,
                         [l["digest"] for l in man["layers"]], [tar],
                         sum(l["size"] for l in man["layers"]), info["tar_size"],
                         info.get("entries")))
    return out


def _tar_host_dirs(dirs: list[str], dest: str):
    cmd = ["tar", "-C", "/", "--format=pax", "--numeric-owner", "--sort=name",
           "--xattrs", "--xattrs-include=*", "--pax-option=delete=atime,delete=ctime",
           "--warning=no-file-changed", "--warning=no-file-removed",
           "--exclude=__pycache__", "-cf", dest, *dirs]
    p = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
    if p.returncode not in (0, 1):  # 1: a file changed while being read
        raise HarnessError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")


def _count_entries(tar: str) -> int:
    p = subprocess.run(["tar", "-tf", tar], stdout=subprocess.PIPE, check=True)
    return p.stdout.count(b"\n")


def big(cache: str, minbase_images: list[Image]) -> list[Image]:
    root = os.path.join(cache, f"big-v{BIG_VERSION}")
    final = os.path.join(root, "image")
    if not os.path.exists(os.path.join(final, "info.json")):
        _build_big(root, final, minbase_images[0])
    info = _read_json(os.path.join(final, "info.json"))
    layout = os.path.join(final, "layout")
    out = []
    for name, tag, comp in (("big", "gzip", "gzip"), ("big-zstd", "zstd", "zstd")):
        man = _manifest(layout, tag)
        out.append(Image(name, layout, tag, f"bench/big:{tag}", comp,
                         [_blob_path(layout, l["digest"]) for l in man["layers"]],
                         [l["digest"] for l in man["layers"]],
                         [os.path.join(cache, "tars", d.split(":", 1)[1] + ".tar")
                          for d in info["diff_ids"]],
                         sum(l["size"] for l in man["layers"]), info["tar_bytes"],
                         info["entries"], info["note"]))
    return out


def _build_big(root: str, final: str, base: Image):
    t0 = time.monotonic()
    work = os.path.join(root, ".build")
    shutil.rmtree(work, ignore_errors=True)
    layout = os.path.join(work, "layout")
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    tars_dir = os.path.join(os.path.dirname(root), "tars")
    os.makedirs(tars_dir, exist_ok=True)
    layer_sources = [None] + big_layer_dirs()
    diff_ids, gz_layers, zs_layers, history = [], [], [], []
    tar_bytes = 0
    entries = 0
    for i, dirs in enumerate(layer_sources):
        t = time.monotonic()
        if dirs is None:
            tar = base.tars[0]
            created_by = "Debian bookworm minbase (mmdebstrap), the imgpull test fixture"
        else:
            tmp = os.path.join(work, f"layer{i}.tar")
            _tar_host_dirs(dirs, tmp)
            diff = _sha256_file(tmp)
            tar = os.path.join(tars_dir, diff.split(":", 1)[1] + ".tar")
            os.replace(tmp, tar)
            created_by = "tar -C / " + " ".join(dirs) + " (this machine's files)"
        diff_id = _sha256_file(tar)
        diff_ids.append(diff_id)
        tar_bytes += os.path.getsize(tar)
        entries += _count_entries(tar)
        gz = os.path.join(work, f"layer{i}.tar.gz")
        with open(gz, "wb") as f:
            subprocess.run(["pigz", "-6", "-n", "-c", tar], stdout=f, check=True)
        d, s = _put_blob(layout, gz)
        gz_layers.append({"mediaType": LAYER_GZIP, "digest": d, "size": s})
        zs = os.path.join(work, f"layer{i}.tar.zst")
        subprocess.run(["zstd", "-3", "-T2", "-q", "-f", tar, "-o", zs], check=True)
        d, s = _put_blob(layout, zs)
        zs_layers.append({"mediaType": LAYER_ZSTD, "digest": d, "size": s})
        history.append({"created_by": created_by})
        _log(f"layer {i + 1}/5: {os.path.getsize(tar) / 1e6:.0f} MB tar, "
             f"{gz_layers[-1]['size'] / 1e6:.0f} MB gzip, {zs_layers[-1]['size'] / 1e6:.0f} MB zstd "
             f"in {time.monotonic() - t:.0f}s")
    config = {
        "architecture": base_arch(), "os": "linux",
        "config": {"Cmd": ["bash"],
                   "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    cfg = json.dumps(config).encode()
    cfg_digest, cfg_size = _put_blob(layout, data=cfg)
    mans = {}
    for tag, layers in (("gzip", gz_layers), ("zstd", zs_layers)):
        mans[tag] = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cfg_digest, "size": cfg_size},
            "layers": layers}).encode()
    _write_layout(layout, mans)
    out = os.path.join(work, "out")
    os.makedirs(out)
    os.rename(layout, os.path.join(out, "layout"))
    gz_total = sum(l["size"] for l in gz_layers)
    info = {"diff_ids": diff_ids, "tar_bytes": tar_bytes, "entries": entries,
            "gzip_bytes": gz_total, "zstd_bytes": sum(l["size"] for l in zs_layers),
            "layer_dirs": layer_sources, "build_seconds": round(time.monotonic() - t0, 1),
            "note": f"{tar_bytes / 1e9:.2f} GB of tar in 5 layers, {gz_total / 1e9:.2f} GB gzip"}
    with open(os.path.join(out, "info.json"), "w") as f:
        json.dump(info, f, indent=2)
    os.makedirs(root, exist_ok=True)
    os.rename(out, final)
    shutil.rmtree(work, ignore_errors=True)
    _log(f"built the big image in {info['build_seconds']}s: {info['note']}")


def base_arch() -> str:
    arch = subprocess.run(["dpkg", "--print-architecture"], stdout=subprocess.PIPE, text=True,
                          check=True).stdout.strip()
    return {"i386": "386", "ppc64el": "ppc64le", "armhf": "arm"}.get(arch, arch)


def all_images(cache: str) -> dict[str, Image]:
    mb = minbase(cache)
    bg = big(cache, mb)
    return {i.name: i for i in [*bg, *mb]}
