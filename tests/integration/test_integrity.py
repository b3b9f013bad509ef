"""A lying registry: corrupt and truncated blobs, configs whose diffIDs do not match.

The registry is real; what it serves is made wrong by editing its storage
directory (it does not re-hash blobs it serves) or by pushing an image whose
config test code broke on purpose (no tool makes one).
"""
import hashlib
import json
from pathlib import Path

import imgpull_cli as cli
import synth_images
from registry import harness


def blob_data(registry, digest):
    hex_ = digest.split(":")[1]
    return Path(registry.storage_dir) / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"


def layer_digests(registry, repo_tag):
    return [l["digest"] for l in registry.skopeo_inspect(repo_tag, raw=True)["layers"]]


def assert_nothing_recorded(root, digest):
    assert digest.split(":")[1] not in cli.blobs(root)
    assert cli.ingest_leftovers(root) == []
    assert cli.index_names(root) == []


def test_flipped_byte_is_a_digest_mismatch_and_nothing_is_committed(registry_factory, tmp_path):
    reg = registry_factory("plain")
    layer = layer_digests(reg, "multi:latest")[1]
    data = blob_data(reg, layer)
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0xFF
    data.write_bytes(bytes(content))
    ref = f"{reg.host}/multi:latest"
    proc = cli.run(["pull", ref], tmp_path / "store")
    assert proc.returncode != 0
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    actual = "sha256:" + hashlib.sha256(bytes(content)).hexdigest()
    for needle in (ref, f"layer {layer}", "digest mismatch", f"expected {layer}", f"got {actual}"):
        assert needle in message, message
    assert_nothing_recorded(tmp_path / "store", layer)
    # Once the registry is mended, the same store completes the pull.
    content[len(content) // 2] ^= 0xFF
    data.write_bytes(bytes(content))
    cli.run(["pull", ref], tmp_path / "store", check=True)
    assert layer.split(":")[1] in cli.blobs(tmp_path / "store")


def test_truncated_blob_is_a_size_mismatch(registry_factory, tmp_path):
    reg = registry_factory("plain")
    layer = layer_digests(reg, "single:latest")[0]
    data = blob_data(reg, layer)
    data.write_bytes(data.read_bytes()[:-100])
    proc = cli.run(["pull", f"{reg.host}/single:latest"], tmp_path / "store")
    assert proc.returncode != 0
    assert "size mismatch" in proc.stderr and layer in proc.stderr, proc.stderr
    assert_nothing_recorded(tmp_path / "store", layer)


def test_corrupt_manifest_served_for_a_digest_is_refused(registry_factory, tmp_path):
    reg = registry_factory("plain")
    digest = reg.pushed["single:latest"]
    data = blob_data(reg, digest)
    doc = json.loads(data.read_bytes())
    doc["annotations"] = {"tampered": "yes"}
    data.write_bytes(json.dumps(doc).encode())
    ref = f"{reg.host}/single@{digest}"
    proc = cli.run(["pull", ref], tmp_path / "store")
    assert proc.returncode != 0
    assert "hash to" in proc.stderr and ref in proc.stderr, proc.stderr
    assert cli.blobs(tmp_path / "store") == set()


def test_diff_id_mismatch_fails_the_rootfs(registry_plain, tmp_path):
    layout, layer, real_diff_id = synth_images.broken_diff_id_layout(tmp_path, registry_plain.fixtures["multi"])
    harness.push(registry_plain, str(layout), "latest", "broken-diffid:latest")
    ref = f"{registry_plain.host}/broken-diffid:latest"
    proc = cli.run(["pull", "--rootfs", str(tmp_path / "rootfs"), ref], tmp_path / "store")
    assert proc.returncode != 0
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    for needle in (ref, layer, "expected diff_id sha256:" + "0" * 64, "got " + real_diff_id):
        assert needle in message, message
    # The image is not recorded as pulled.
    assert cli.index_names(tmp_path / "store") == []
