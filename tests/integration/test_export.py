"""imgpull save: docker-archive tars and OCI layouts that skopeo, umoci and
podman read, made from images pulled from a real registry."""
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

import imgpull_cli as cli





@pytest.fixture
def store(registry_plain, tmp_path):
    root = tmp_path / "store"
    for repo in ("single", "multi", "v2s2"):
        cli.run(["pull", "-q", f"{registry_plain.host}/{repo}:latest"], root, check=True)
    return root


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_docker_archive_has_the_classic_layout(registry_plain, store, tmp_path):
    host = registry_plain.host
    out = tmp_path / "images.tar"
    proc = cli.run(["save", "-o", str(out), f"{host}/single", f"{host}/multi:latest"], store, check=True)
    assert proc.stdout == ""
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        repositories = json.load(tar.extractfile("repositories"))
        assert [m["RepoTags"] for m in manifest] == [[f"{host}/single:latest"], [f"{host}/multi:latest"]]
        for entry, repo in zip(manifest, ("single", "multi")):
            config = registry_plain.skopeo_inspect(f"{repo}:latest", config=True)
            config_bytes = tar.extractfile(entry["Config"]).read()
            assert entry["Config"] == sha256(config_bytes).split(":")[1] + ".json"
            assert json.loads(config_bytes)["rootfs"] == config["rootfs"]
            # Every layer is the uncompressed tar its diffID names.
            diff_ids = [sha256(tar.extractfile(path).read()) for path in entry["Layers"]]
            assert diff_ids == config["rootfs"]["diff_ids"]
            assert all(p.endswith("/layer.tar") for p in entry["Layers"])
            top = entry["Layers"][-1].split("/")[0]
            assert repositories[f"{host}/{repo}"] == {"latest": top}
    assert list(tmp_path.glob("images.tar.tmp-*")) == []


def test_skopeo_reads_and_copies_the_docker_archive(registry_plain, store, tmp_path):
    host = registry_plain.host
    out = tmp_path / "multi.tar"
    cli.run(["save", "-o", str(out), f"{host}/multi"], store, check=True)
    diff_ids = registry_plain.skopeo_inspect("multi:latest", config=True)["rootfs"]["diff_ids"]
    inspect = json.loads(cli.skopeo("inspect", f"docker-archive:{out}"))
    assert inspect["Layers"] == diff_ids
    assert inspect["Architecture"] == "amd64"
    copied = tmp_path / "copied"
    cli.skopeo("copy", f"docker-archive:{out}", f"oci:{copied}:x")
    config = json.loads(cli.skopeo("inspect", "--config", f"oci:{copied}:x"))
    assert config["rootfs"]["diff_ids"] == diff_ids
    assert config["config"] == registry_plain.skopeo_inspect("multi:latest", config=True)["config"]
    # The copy is a whole image: umoci unpacks it (whiteouts, hardlinks and all).
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{copied}:x", str(bundle)], check=True,
                   capture_output=True)
    assert (bundle / "rootfs" / "srv" / "data" / "config" / "inner.txt").exists()
    assert not (bundle / "rootfs" / "srv" / "data" / "gone.txt").exists()

    # Several images in one archive: each is addressed by its tag.
    both = tmp_path / "both.tar"
    cli.run(["save", "-o", str(both), f"{host}/single", f"{host}/multi"], store, check=True)
    for repo in ("single", "multi"):
        layers = json.loads(cli.skopeo("inspect", f"docker-archive:{both}:{host}/{repo}:latest"))["Layers"]
        assert layers == registry_plain.skopeo_inspect(f"{repo}:latest", config=True)["rootfs"]["diff_ids"]


def test_save_writes_to_stdout_when_it_is_not_a_terminal(registry_plain, store):
    proc = subprocess.run([cli.binary(), "--root", str(store), "save", f"{registry_plain.host}/single"],
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        assert "manifest.json" in tar.getnames()


def test_save_of_a_missing_image_writes_nothing(store, tmp_path):
    out = tmp_path / "x.tar"
    proc = cli.run(["save", "-o", str(out), "nosuch:1"], store)
    assert (proc.returncode, proc.stderr) == (1, "Error: No such image: nosuch:1\n")
    assert list(tmp_path.glob("x.tar*")) == []


def test_save_fails_cleanly_on_a_corrupt_layer(registry_plain, store, tmp_path):
    layer = registry_plain.skopeo_inspect("single:latest", raw=True)["layers"][0]["digest"]
    path = Path(store) / "blobs" / "sha256" / layer.split(":")[1]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    out = tmp_path / "single.tar"
    proc = cli.run(["save", "-o", str(out), f"{registry_plain.host}/single"], store)
    assert proc.returncode == 1
    assert f"saving {registry_plain.host}/single:latest: layer {layer}" in proc.stderr
    assert list(tmp_path.glob("single.tar*")) == []


def test_oci_layout_directory_holds_just_the_saved_images(registry_plain, store, tmp_path):
    host = registry_plain.host
    layout = tmp_path / "layout"
    cli.run(["save", "--format", "oci", "-o", str(layout), f"{host}/single", f"{host}/v2s2"], store, check=True)
    stat = subprocess.run(["umoci", "stat", "--image", f"{layout}:{host}/single:latest"], capture_output=True,
                          text=True, check=True).stdout
    assert "LAYER" in stat
    for repo in ("single", "v2s2"):
        inspect = json.loads(cli.skopeo("inspect", f"oci:{layout}:{host}/{repo}:latest"))
        assert inspect["Layers"] == [l["digest"] for l in registry_plain.skopeo_inspect("single:latest", raw=True)["layers"]]
    # It is an imgpull store too, with just these images (multi is not in it).
    listed = cli.run(["images"], layout, check=True).stdout
    assert f"{host}/single " in listed and f"{host}/v2s2 " in listed and "multi" not in listed
    multi_config = registry_plain.skopeo_inspect("multi:latest", raw=True)["config"]["digest"].split(":")[1]
    assert multi_config not in cli.blobs(layout)
    assert cli.run(["verify"], layout).returncode == 0
    again = cli.run(["save", "--format", "oci", "-o", str(layout), f"{host}/multi"], store)
    assert again.returncode == 1 and "not an empty directory" in again.stderr


def test_oci_archive_is_read_by_skopeo(registry_plain, store, tmp_path):
    host = registry_plain.host
    out = tmp_path / "multi-oci.tar"
    cli.run(["save", "--format", "oci", "-o", str(out), f"{host}/multi"], store, check=True)
    inspect = json.loads(cli.skopeo("inspect", f"oci-archive:{out}:{host}/multi:latest"))
    assert inspect["Layers"] == [l["digest"] for l in registry_plain.skopeo_inspect("multi:latest", raw=True)["layers"]]
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert {"oci-layout", "index.json"} <= set(names)


@pytest.fixture
def podman(tmp_path):
    """podman with storage of its own (vfs, so no overlay mounts are needed);
    the test is skipped when podman is not installed or cannot run here."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install podman)")
    runroot = tempfile.mkdtemp(prefix="imgpull-podman-")  # podman wants it under 50 characters
    cmd = ["podman", "--root", str(tmp_path / "podman-root"), "--runroot", runroot, "--storage-driver", "vfs"]
    try:
        probe = subprocess.run([*cmd, "info"], capture_output=True, text=True, timeout=120)
        if probe.returncode != 0:
            pytest.skip(f"podman cannot run here: {probe.stderr.strip()[-300:]}")
        yield cmd
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def test_podman_loads_both_formats(registry_plain, store, tmp_path, podman):
    host = registry_plain.host
    cli.run(["tag", f"{host}/multi", "example.com/team/multi:1"], store, check=True)
    archive = tmp_path / "multi.tar"
    cli.run(["save", "-o", str(archive), "example.com/team/multi:1"], store, check=True)
    loaded = subprocess.run([*podman, "load", "-i", str(archive)], capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    assert "Loaded image: example.com/team/multi:1" in loaded.stdout, loaded.stdout
    [doc] = json.loads(subprocess.run([*podman, "image", "inspect", "example.com/team/multi:1"],
                                      capture_output=True, text=True, check=True).stdout)
    assert doc["RootFS"]["Layers"] == registry_plain.skopeo_inspect("multi:latest", config=True)["rootfs"]["diff_ids"]

    oci = tmp_path / "single-oci.tar"
    cli.run(["save", "--format", "oci", "-o", str(oci), f"{host}/single"], store, check=True)
    loaded = subprocess.run([*podman, "load", "-i", str(oci)], capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    images = subprocess.run([*podman, "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True,
                            text=True, check=True).stdout.split()
    assert f"{host}/single:latest" in images, images
