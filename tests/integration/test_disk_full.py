"""Disk full: the store on a small tmpfs. The pull fails with a clear error
naming the blob and the file, commits nothing wrong, leaks no space beyond
the partial files it keeps, and those are resumed once there is room."""
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

import imgpull_cli as cli
import synth_images
from registry.harness import Registry

MIB = 1024 * 1024
FS_BYTES = 16 * MIB


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    with Registry("plain", str(tmp_path_factory.mktemp("diskfull-registry"))) as reg:
        yield reg, synth_images.push_image(reg, "big", [6 * MIB, 20 * MIB])


@pytest.fixture
def small_fs():
    mnt = tempfile.mkdtemp(prefix="imgpull-diskfull-")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_BYTES},mode=0755", "tmpfs", mnt],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        os.rmdir(mnt)
        pytest.skip(f"cannot mount a small tmpfs (needs root / CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        yield Path(mnt)
    finally:
        subprocess.run(["umount", mnt], check=False)
        os.rmdir(mnt)


def used_bytes(mnt):
    st = os.statvfs(mnt)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def file_bytes(root):
    """Space the files under root take (what is not this is leaked)."""
    return sum(p.stat().st_blocks * 512 for p in Path(root).rglob("*") if p.is_file())


def test_disk_full_is_a_clear_error_and_resumable(image, small_fs, tmp_path):
    reg, img = image
    root = small_fs / "store"
    ref = f"{reg.host}/{img.ref}"
    proc = cli.run(["pull", ref], root)
    assert proc.returncode == 1
    message = proc.stderr.strip()
    print(f"\n{message}")
    assert len(message.splitlines()) == 1, message
    assert "no space left on device writing blob sha256:" in message, message
    assert f"to {root}/ingest/" in message, message
    assert cli.index_names(root) == []
    # Nothing wrong was committed: every blob present hashes to its name.
    for blob in (root / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    # No space leaked: what the filesystem counts as used is what the files take.
    used, files = used_bytes(small_fs), file_bytes(small_fs)
    partials = {p.name: p.stat().st_size for p in (root / "ingest").glob("*.partial")}
    print(f"tmpfs {FS_BYTES} B: used {used} B, files {files} B; partials kept: {partials}")
    assert used - files < 256 * 1024, (used, files)
    # What is kept can be resumed: a clean prefix of its blob, or (a blob
    # fetched in pieces) the byte ranges its record lists.
    assert partials
    for name, size in partials.items():
        digest = "sha256:" + name.split(".")[0]
        assert digest in img.layers
        blob = reg.api("GET", f"/v2/{img.repo}/blobs/{digest}").body
        kept = (root / "ingest" / name).read_bytes()
        held = cli.recorded_ranges(root / "ingest" / name)
        if held is None:
            assert kept == blob[:size]
        for start, end in held or []:
            assert kept[start:end] == blob[start:end], (start, end)

    # With room, the next pull continues the partials and completes.
    subprocess.run(["mount", "-o", f"remount,size={4 * FS_BYTES}", str(small_fs)], check=True)
    again = cli.run(["pull", ref], root)
    assert again.returncode == 0, again.stderr
    assert "Resuming from byte" in again.stdout, again.stdout
    assert cli.ingest_leftovers(root) == []
    verify = cli.run(["verify"], root)
    assert verify.returncode == 0, verify.stdout + verify.stderr
