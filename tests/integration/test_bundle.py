"""OCI runtime bundles as root: `imgpull pull --bundle DIR REF` and `imgpull
unpack --bundle DIR REF` make DIR/rootfs and DIR/config.json, and Debian's
runc starts them (`runc --root STATE run ID` in DIR); the container's output
says the image config was followed: command, environment, working directory,
user with its supplementary group from the image's /etc/group, hostname.

The image is bundle_images' (the Debian minbase fixture plus a layer and a
config); the rootless side is test_rootless.py.
"""
import json
import os
import shutil
import subprocess
import types

import pytest

import bundle_images
import imgpull_cli as cli
from registry.harness import push
from tools import rootfs_manifest as rm

RUNC = shutil.which("runc") or "/usr/sbin/runc"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="as root (rootless bundles: test_rootless.py)"),
    pytest.mark.skipif(not os.access(RUNC, os.X_OK), reason="needs runc (scripts/install-deps.sh)"),
]


@pytest.fixture(scope="module")
def runnable(registry_plain, debian_image, tmp_path_factory):
    work = tmp_path_factory.mktemp("runnable")
    layout = bundle_images.build(debian_image, str(work))
    push(registry_plain, layout, bundle_images.TAG, "bundle:runnable")
    push(registry_plain, layout, bundle_images.NOUSER_TAG, "bundle:nouser")
    yield types.SimpleNamespace(layout=layout, ref=f"{registry_plain.host}/bundle:runnable",
                                nouser_ref=f"{registry_plain.host}/bundle:nouser")
    shutil.rmtree(work, ignore_errors=True)


def run_bundle(bundle, container_id, state):
    """`runc --root STATE run ID` in the bundle, as runc is meant to be used."""
    return subprocess.run([RUNC, "--root", str(state), "run", container_id], cwd=bundle,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def config_of(bundle):
    return json.loads((bundle / "config.json").read_text())


def test_pull_bundle_runs_with_runc(runnable, tmp_path):
    bundle = tmp_path / "web"
    cli.run(["pull", "--bundle", str(bundle), runnable.ref], tmp_path / "store", check=True)
    assert sorted(p.name for p in bundle.iterdir()) == ["config.json", "rootfs"]

    config = config_of(bundle)
    process = config["process"]
    assert process["args"] == ["/bin/sh", "-c", bundle_images.SCRIPT]
    assert process["user"] == {"uid": 1, "gid": 1, "additionalGids": [4242]}
    assert process["cwd"] == "/opt/bundle"
    assert "GREETING=hello" in process["env"]
    assert "HOME=/usr/sbin" in process["env"]
    assert [e for e in process["env"] if e.startswith("PATH=")] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert config["hostname"] == "web"
    assert config["root"] == {"path": "rootfs", "readonly": False}
    assert config["annotations"][bundle_images.LABEL[0]] == bundle_images.LABEL[1]
    assert config["annotations"]["org.opencontainers.image.os"] == "linux"
    assert "uidMappings" not in config["linux"]
    assert {"type": "network"} in config["linux"]["namespaces"]

    # The rootfs is the one `unpack` makes of the same image.
    reference = tmp_path / "unpacked"
    cli.run(["unpack", runnable.ref, str(reference)], tmp_path / "store", check=True)
    assert not rm.diff(str(bundle / "rootfs"), str(reference), mtime="nondir")

    proc = run_bundle(bundle, "imgpull-test-pull", tmp_path / "runc")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == bundle_images.expected_line("web", "1 4242")


def test_unpack_bundle_writes_the_same_config(runnable, tmp_path):
    store = tmp_path / "store"
    pulled = tmp_path / "a" / "app"
    pulled.parent.mkdir()
    cli.run(["pull", "--bundle", str(pulled), runnable.ref], store, check=True)
    unpacked = tmp_path / "b" / "app"
    unpacked.parent.mkdir()
    proc = cli.run(["unpack", "--bundle", str(unpacked), runnable.ref], store, check=True)
    assert proc.stderr == ""
    assert (unpacked / "config.json").read_bytes() == (pulled / "config.json").read_bytes()
    assert not rm.diff(str(unpacked / "rootfs"), str(pulled / "rootfs"), mtime="nondir")
    proc = run_bundle(unpacked, "imgpull-test-unpack", tmp_path / "runc")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == bundle_images.expected_line("app", "1 4242")


def test_bundle_cmd_replaces_the_cmd(runnable, tmp_path):
    bundle = tmp_path / "override"
    cmd = json.dumps(['echo "overridden: $GREETING in $(pwd)"'])
    cli.run(["pull", "--bundle", str(bundle), "--bundle-cmd", cmd, runnable.ref], tmp_path / "store",
            check=True)
    assert config_of(bundle)["process"]["args"] == ["/bin/sh", "-c", 'echo "overridden: $GREETING in $(pwd)"']
    proc = run_bundle(bundle, "imgpull-test-cmd", tmp_path / "runc")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "overridden: hello in /opt/bundle"


def test_bundle_cmd_must_be_a_json_array(runnable, tmp_path):
    proc = cli.run(["pull", "--bundle", str(tmp_path / "b"), "--bundle-cmd", "echo hi", runnable.ref],
                   tmp_path / "store")
    assert proc.returncode != 0
    assert "JSON array of strings" in proc.stderr, proc.stderr
    assert not (tmp_path / "b").exists(), "refused before anything is made"


def test_bundle_dir_must_be_empty_unless_forced(runnable, tmp_path):
    bundle = tmp_path / "full"
    bundle.mkdir()
    (bundle / "notes.txt").write_text("mine\n")
    proc = cli.run(["pull", "--bundle", str(bundle), runnable.ref], tmp_path / "store")
    assert proc.returncode != 0
    assert "not empty" in proc.stderr, proc.stderr
    assert sorted(p.name for p in bundle.iterdir()) == ["notes.txt"]
    cli.run(["pull", "--force", "--bundle", str(bundle), runnable.ref], tmp_path / "store", check=True)
    assert sorted(p.name for p in bundle.iterdir()) == ["config.json", "notes.txt", "rootfs"]


def test_a_user_the_image_lacks_fails_the_bundle(runnable, tmp_path):
    bundle = tmp_path / "nouser"
    proc = cli.run(["pull", "--bundle", str(bundle), runnable.nouser_ref], tmp_path / "store")
    assert proc.returncode != 0
    assert 'no user "nosuchuser" in the image\'s /etc/passwd' in proc.stderr, proc.stderr
    assert "config.json" in proc.stderr
    assert not (bundle / "config.json").exists()


def test_bundle_and_rootfs_are_exclusive(runnable, tmp_path):
    proc = cli.run(["pull", "--bundle", str(tmp_path / "b"), "--rootfs", str(tmp_path / "r"), runnable.ref],
                   tmp_path / "store")
    assert proc.returncode != 0
    assert "--bundle" in proc.stderr and "--rootfs" in proc.stderr, proc.stderr
