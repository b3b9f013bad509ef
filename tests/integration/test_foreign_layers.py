"""Non-distributable layers and the per-layer size cap.

A non-distributable layer is not in the registry: its descriptor lists URLs.
No tool in Debian makes such an image, so test code writes the manifest (the
config blob and the layer bytes come from the `single` fixture) and a second
listener, another origin, serves the layer and records what arrived.
"""
import base64
import json
from pathlib import Path

import pytest

import imgpull_cli as cli
from registry import fixtures, harness
from test_redirect import RecordingFileServer

FOREIGN_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"


@pytest.fixture
def foreign_image(registry_factory, fixture_cache, tmp_path):
    # distribution refuses layer URLs unless its config allows them.
    reg = registry_factory("basic", push=False, extra_config={
        "validation": {"manifests": {"urls": {"allow": ["^http://127\\.0\\.0\\.1"]}}}})
    single = fixture_cache["single"]
    blobs = Path(single.layout) / "blobs" / "sha256"
    manifest = json.loads((blobs / single.info["manifest_digest"].split(":")[1]).read_bytes())
    layer = manifest["layers"][0]
    served = tmp_path / "cdn"
    served.mkdir()
    (served / "layer.tar.gz").write_bytes((blobs / layer["digest"].split(":")[1]).read_bytes())
    with RecordingFileServer(served) as cdn:
        config = (blobs / manifest["config"]["digest"].split(":")[1]).read_bytes()
        fixtures._upload_bytes(reg, "foreign", config)
        layer["mediaType"] = FOREIGN_GZIP
        layer["urls"] = [f"http://127.0.0.1:{cdn.port}/layer.tar.gz"]
        manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
        body = json.dumps(manifest).encode()
        r = reg.api("PUT", "/v2/foreign/manifests/latest", body=body,
                    headers={"Content-Type": manifest["mediaType"], "Content-Length": str(len(body))})
        assert r.status == 201, r.body
        auth = base64.b64encode(f"{harness.USER}:{harness.PASSWORD}".encode()).decode()
        env = cli.docker_config(tmp_path, {reg.host: {"auth": auth}})
        yield reg, cdn, layer, env


def test_foreign_layer_is_refused_unless_asked(foreign_image, tmp_path):
    reg, cdn, layer, env = foreign_image
    proc = cli.run(["pull", f"{reg.host}/foreign:latest"], tmp_path / "store", env=env)
    assert proc.returncode != 0
    assert "non-distributable" in proc.stderr and "--fetch-foreign-layers" in proc.stderr, proc.stderr
    assert layer["urls"][0] in proc.stderr
    assert cdn.seen == []


def test_foreign_layer_is_fetched_from_its_url_without_credentials(foreign_image, tmp_path):
    reg, cdn, layer, env = foreign_image
    proc = cli.run(["pull", "--fetch-foreign-layers", "--rootfs", str(tmp_path / "rootfs"),
                    f"{reg.host}/foreign:latest"], tmp_path / "store", env=env)
    assert proc.returncode == 0, proc.stderr
    assert [s[0] for s in cdn.seen] == ["GET"]
    assert cdn.seen[0][2] is None, "registry credentials went to the layer's URL"
    assert layer["digest"].split(":")[1] in cli.blobs(tmp_path / "store")
    assert any((tmp_path / "rootfs").iterdir())


def test_layer_size_cap_bounds_decompression(registry_plain, tmp_path):
    ref = f"{registry_plain.host}/single:latest"
    proc = cli.run(["pull", "--rootfs", str(tmp_path / "rootfs"), "--max-layer-size", "4096", ref],
                   tmp_path / "store")
    assert proc.returncode != 0
    assert "4096" in proc.stderr and ref in proc.stderr, proc.stderr
    assert cli.index_names(tmp_path / "store") == []
