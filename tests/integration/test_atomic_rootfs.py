"""Root filesystems appear complete or not at all: `pull --rootfs DIR` and
`unpack REF DIR` build beside DIR (.DIR.imgpull-staging-<id>) and rename into
place once every layer is applied and verified.

- a layer whose diffID does not match: the pull (and the unpack) fails, DIR
  does not exist afterwards, no staging directory or store record is left; an
  existing DIR (empty, or full with --force) stays as it was;
- a pull SIGKILLed while it applies layers (downloads throttled by the fault
  proxy): DIR does not exist, the half-made staging directory does; the same
  command again succeeds and removes it; `imgpull prune` removes it too, and
  so does an `unpack` into the same DIR;
- --force replaces DIR, but never the store.

Real registry (tests/registry/harness.py); the broken image is a fixture's
layout with one diff_id changed (synth_images.broken_diff_id_layout).
"""
import hashlib
import os
import signal
import subprocess
import time

import pytest

import imgpull_cli as cli
import synth_images
from faults.proxy import Fault, FaultProxy
from registry import harness
from registry.harness import Registry
from tools import rootfs_manifest as rm

MIB = 1024 * 1024
LAYERS = [3 * MIB, 6 * MIB]
RATE = 1 * MIB  # per connection: the layers take seconds to arrive, so a kill lands mid-apply
KILL_WAIT_SECONDS = 60  # a bound on a loaded machine, not a timing check


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    """A registry with a synthetic image behind a throttling fault proxy."""
    with Registry("plain", str(tmp_path_factory.mktemp("atomic-registry"))) as reg:
        img = synth_images.push_image(reg, "atomic", LAYERS)
        with FaultProxy(reg.url) as proxy:
            yield proxy, img


@pytest.fixture(scope="module")
def broken(registry_plain, tmp_path_factory):
    """The multi fixture with a wrong diff_id for its last layer: (reference, that layer)."""
    layout, layer, _ = synth_images.broken_diff_id_layout(tmp_path_factory.mktemp("broken"),
                                                          registry_plain.fixtures["multi"])
    harness.push(registry_plain, str(layout), "latest", "atomic-broken:latest")
    return f"{registry_plain.host}/atomic-broken:latest", layer


def run_killed_mid_apply(proxy, args, root, parent):
    """Runs imgpull ARGS with its layer downloads throttled and SIGKILLs it once
    its staging directory in PARENT holds an entry (layers are being applied)."""
    proxy.clear_rules()
    proxy.add(Fault.throttle(RATE), path=r"/blobs/sha256:", times=None)
    env = dict(os.environ, DOCKER_CONFIG=str(parent / "no-docker-config"))
    proc = subprocess.Popen([cli.binary(), "--root", str(root), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + KILL_WAIT_SECONDS
    applying = False
    while not applying and proc.poll() is None and time.monotonic() < deadline:
        applying = any(os.listdir(parent / d) for d in cli.staging_dirs(parent))
        time.sleep(0.02)
    assert applying and proc.poll() is None, f"never caught it applying: {proc.stderr.read()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    proxy.clear_rules()
    assert proc.returncode == -signal.SIGKILL


def assert_rootfs_is(img, rootfs):
    assert sorted("/" + n for n in os.listdir(rootfs)) == sorted(img.files)
    for path, sha in img.files.items():
        with open(f"{rootfs}{path}", "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == sha, path


def assert_nothing_left(parent, root):
    assert cli.staging_dirs(parent) == []
    assert cli.staging_records(root) == []


# --- a layer that fails -------------------------------------------------------------

def test_a_failing_layer_leaves_no_dir(broken, tmp_path):
    ref, layer = broken
    root, rootfs = tmp_path / "store", tmp_path / "rootfs"
    proc = cli.run(["pull", "--rootfs", str(rootfs), ref], root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert layer in proc.stderr and "expected diff_id" in proc.stderr, proc.stderr
    assert not os.path.lexists(rootfs), "the layers before the broken one were applied, but not at DIR"
    assert_nothing_left(tmp_path, root)


def test_a_failing_unpack_leaves_no_dir(broken, tmp_path):
    ref, layer = broken
    root, rootfs = tmp_path / "store", tmp_path / "rootfs"
    cli.run(["pull", ref], root, check=True)  # a plain pull does not apply layers
    proc = cli.run(["unpack", ref, str(rootfs)], root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert layer in proc.stderr and "expected diff_id" in proc.stderr, proc.stderr
    assert not os.path.lexists(rootfs)
    assert_nothing_left(tmp_path, root)


def test_a_failing_pull_leaves_an_existing_dir_as_it_was(broken, tmp_path):
    ref, _ = broken
    root = tmp_path / "store"
    empty = tmp_path / "empty"
    empty.mkdir()
    full = tmp_path / "full"
    (full / "sub").mkdir(parents=True)
    (full / "sub" / "mine").write_text("mine\n")
    before = rm.manifest(full, mtime=True)
    assert cli.run(["pull", "--rootfs", str(empty), ref], root).returncode == 1
    assert os.listdir(empty) == []
    assert cli.run(["pull", "--force", "--rootfs", str(full), ref], root).returncode == 1
    assert rm.diff(before, full, mtime=True) == [], "--force replaces DIR only with a finished tree"
    assert_nothing_left(tmp_path, root)


# --- a pull that is killed ----------------------------------------------------------

def test_a_killed_pull_leaves_no_dir_and_the_same_command_then_works(slow, tmp_path):
    proxy, img = slow
    root, rootfs = tmp_path / "store", tmp_path / "rootfs"
    args = ["pull", "-q", "--rootfs", str(rootfs), f"{proxy.host}/{img.ref}"]
    run_killed_mid_apply(proxy, args, root, tmp_path)
    assert not os.path.lexists(rootfs)
    [left] = cli.staging_dirs(tmp_path)
    assert left.startswith(".rootfs.imgpull-staging-")
    assert os.listdir(tmp_path / left), "half made"
    assert cli.staging_records(root) == [left.rsplit("-", 1)[1]]

    cli.run(args, root, check=True)
    assert_rootfs_is(img, rootfs)
    assert_nothing_left(tmp_path, root)


def test_prune_removes_what_a_killed_pull_left(slow, tmp_path):
    proxy, img = slow
    root, rootfs = tmp_path / "store", tmp_path / "rootfs"
    run_killed_mid_apply(proxy, ["pull", "-q", "--rootfs", str(rootfs), f"{proxy.host}/{img.ref}"], root, tmp_path)
    [left] = cli.staging_dirs(tmp_path)
    proc = cli.run(["prune", "-v"], root, check=True)
    assert f"deleted: {tmp_path / left} (" in proc.stdout, proc.stdout
    assert "Total reclaimed space: 0B" not in proc.stdout
    assert not os.path.lexists(rootfs)
    assert_nothing_left(tmp_path, root)


def test_unpack_removes_what_a_killed_pull_left(slow, tmp_path):
    proxy, img = slow
    root, rootfs = tmp_path / "store", tmp_path / "rootfs"
    ref = f"{proxy.host}/{img.ref}"
    run_killed_mid_apply(proxy, ["pull", "-q", "--rootfs", str(rootfs), ref], root, tmp_path)
    assert len(cli.staging_dirs(tmp_path)) == 1
    cli.run(["pull", "-q", ref], root, check=True)
    cli.run(["unpack", ref, str(rootfs)], root, check=True)
    assert_rootfs_is(img, rootfs)
    assert_nothing_left(tmp_path, root)


# --- --force ----------------------------------------------------------------------

def test_force_replaces_dir_but_never_the_store(registry_plain, tmp_path):
    ref = f"{registry_plain.host}/single:latest"
    root = tmp_path / "store"
    cli.run(["pull", ref], root, check=True)
    for target in (root, tmp_path):
        before = rm.manifest(root, mtime=True)
        proc = cli.run(["pull", "--force", "--rootfs", str(target), ref], root)
        assert proc.returncode == 1 and f"that would delete {root}" in proc.stderr, proc.stderr
        assert rm.diff(before, root, mtime=True) == []
    assert cli.run(["verify"], root).returncode == 0
