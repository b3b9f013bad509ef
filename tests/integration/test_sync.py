"""`pull --sync` and `unpack --sync`: the store and the rootfs are flushed to
disk before imgpull exits, with one syncfs(2) per filesystem and no fsync per
file; without the flag nothing is synced (as docker, containerd and podman do).
A rootfs is made beside DIR and renamed into place: its filesystem is synced
before the rename (so DIR never names files whose data is not on disk) and
DIR's parent directory is fsynced after it (so the rename is on disk too).
Counted with strace on the real binary, pulling from the real registry."""
import os
import shutil
import subprocess

import pytest

import imgpull_cli as cli

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")


def traced(root, tmp_path, *args):
    """Runs imgpull under strace; returns the syncfs/fsync/fdatasync/sync calls it made."""
    log = tmp_path / f"strace-{len(list(tmp_path.glob('strace-*')))}.txt"
    env = dict(os.environ, DOCKER_CONFIG=str(tmp_path / "no-docker-config"))
    proc = subprocess.run(["strace", "-f", "-qq", "-y", "-o", str(log), "-e", "trace=syncfs,fsync,fdatasync,sync",
                           cli.binary(), "--root", str(root), *args],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = [line.split(None, 1)[1] for line in log.read_text().splitlines() if line.strip()]
    return [c for c in calls if not c.startswith("+++")]


def call_names(calls):
    """["syncfs", "fsync"] for the calls; asserting each returned 0."""
    assert all(c.endswith("= 0") for c in calls), calls
    return [c.split("(", 1)[0] for c in calls]


def fsynced_dir(calls):
    """The directory the one fsync call was on (strace -y prints fd paths)."""
    [fsync] = [c for c in calls if c.startswith("fsync(")]
    return fsync.split("<", 1)[1].split(">", 1)[0]


def test_pull_without_sync_syncs_nothing(registry_plain, tmp_path):
    ref = f"{registry_plain.host}/multi:latest"
    calls = traced(tmp_path / "store", tmp_path, "pull", "-q", "--rootfs", str(tmp_path / "rootfs"), ref)
    assert calls == []


def test_pull_sync_is_one_syncfs_per_filesystem(registry_plain, tmp_path):
    ref = f"{registry_plain.host}/multi:latest"
    # Store and rootfs on one filesystem: one syncfs, no per-file fsync; then
    # the fsync of the rootfs's parent that makes its rename durable.
    calls = traced(tmp_path / "store", tmp_path, "pull", "-q", "--sync", "--rootfs", str(tmp_path / "rootfs"), ref)
    assert call_names(calls) == ["syncfs", "fsync"], calls
    assert fsynced_dir(calls) == str(tmp_path), calls
    assert (tmp_path / "rootfs" / "srv").is_dir()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs")
def test_pull_sync_syncs_each_filesystem_once(registry_plain, tmp_path):
    ref = f"{registry_plain.host}/multi:latest"
    other = tmp_path / "other-fs"
    other.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "imgpull-test-sync", str(other)], check=True)
    try:
        calls = traced(tmp_path / "store", tmp_path, "pull", "-q", "--sync", "--rootfs", str(other / "rootfs"), ref)
    finally:
        subprocess.run(["umount", str(other)], check=True)
    assert call_names(calls) == ["syncfs", "syncfs", "fsync"], calls
    assert fsynced_dir(calls) == str(other), calls


def test_unpack_sync_syncs_the_rootfs(registry_plain, tmp_path):
    ref = f"{registry_plain.host}/multi:latest"
    root = tmp_path / "store"
    cli.run(["pull", "-q", ref], root, check=True)
    assert traced(root, tmp_path, "unpack", ref, str(tmp_path / "plain")) == []
    calls = traced(root, tmp_path, "unpack", "--sync", ref, str(tmp_path / "synced"))
    assert call_names(calls) == ["syncfs", "fsync"], calls
    assert fsynced_dir(calls) == str(tmp_path), calls
    assert sorted(os.listdir(tmp_path / "synced")) == sorted(os.listdir(tmp_path / "plain"))
