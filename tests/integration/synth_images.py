"""Images made by test code and pushed straight through the registry API:
any number of layers, each an uncompressed tar holding one file of random
bytes, so a test knows every byte and digest.

    img = push_image(reg, "many", layer_sizes=[4096] * 120)
    img.ref, img.layers (digests), img.config_digest, img.files ({path: sha256})

And a fixture's layout made wrong on purpose (no tool makes one):

    layout, layer, real_diff_id = broken_diff_id_layout(tmp_path, registry.fixtures["multi"])
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import tarfile

from registry import fixtures

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


@dataclasses.dataclass
class SynthImage:
    repo: str
    tag: str
    config_digest: str
    layers: list          # layer digests, in order
    layer_sizes: list
    files: dict           # path in the rootfs -> sha256 hex of its content

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.tag}"

    @property
    def blobs(self) -> list:
        return [self.config_digest, *self.layers]

    @property
    def total_bytes(self) -> int:
        return sum(self.layer_sizes)


def layer_tar(name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mode = 0o644
        info.mtime = 1700000000
        tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def push_image(reg, repo: str, layer_sizes, tag: str = "latest", seed: str = "") -> SynthImage:
    """Pushes an image whose layer i holds /layer-<i>.bin of layer_sizes[i]
    random bytes. Layers are built in memory: keep each under ~64 MiB."""
    layers, sizes, files, descs = [], [], {}, []
    for i, size in enumerate(layer_sizes):
        content = os.urandom(size)
        name = f"{seed}layer-{i:04d}.bin"
        files["/" + name] = hashlib.sha256(content).hexdigest()
        tar = layer_tar(name, content)
        digest = fixtures._upload_bytes(reg, repo, tar)
        layers.append(digest)
        sizes.append(len(tar))
        descs.append({"mediaType": OCI_LAYER_TAR, "digest": digest, "size": len(tar)})
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": layers},  # uncompressed: diff_id = digest
        "history": [{"created_by": f"synth layer {i}"} for i in range(len(layers))],
    }
    cfg = json.dumps(config).encode()
    config_digest = fixtures._upload_bytes(reg, repo, cfg)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(cfg)},
        "layers": descs,
    }).encode()
    r = reg.api("PUT", f"/v2/{repo}/manifests/{tag}", body=manifest,
                headers={"Content-Type": OCI_MANIFEST, "Content-Length": str(len(manifest))})
    if r.status != 201:
        raise RuntimeError(f"manifest PUT: {r.status} {r.body[:300]!r}")
    return SynthImage(repo, tag, config_digest, layers, sizes, files)


def blob_gets(proxy, digest: str):
    """The proxy's records of GETs of one blob."""
    return proxy.requests("GET", path=f"/blobs/{digest}$")


def broken_diff_id_layout(tmp_path, fixture):
    """A copy of a fixture layout whose config lists a wrong diff_id."""
    layout = tmp_path / "broken-layout"
    shutil.copytree(fixture.layout, layout)
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    entry = next(m for m in index["manifests"]
                 if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == fixture.tag)
    manifest = json.loads((blobs / entry["digest"].split(":")[1]).read_bytes())
    config = json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_bytes())
    config["rootfs"]["diff_ids"][-1] = "sha256:" + "0" * 64

    def put(doc):
        raw = json.dumps(doc).encode()
        hex_ = hashlib.sha256(raw).hexdigest()
        (blobs / hex_).write_bytes(raw)
        return "sha256:" + hex_, len(raw)

    manifest["config"]["digest"], manifest["config"]["size"] = put(config)
    entry["digest"], entry["size"] = put(manifest)
    (layout / "index.json").write_text(json.dumps(index))
    return layout, manifest["layers"][-1]["digest"], fixture.info["diff_ids"][-1]
