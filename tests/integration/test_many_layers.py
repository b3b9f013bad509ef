"""Many layers, many images: a 120-layer image (with a rootfs) and 10 images
pulled at once by 10 processes into one store. Reports each process's peak
RSS (VmHWM, sampled from /proc/PID/status) and the most descriptors it had
open (sampled from /proc/PID/fd), and bounds them. Not wait4's ru_maxrss: it
counts the forked Python before the exec, which is pytest's size (over 100
MiB late in a full run), not imgpull's."""
import hashlib
import os
import subprocess
import time

import pytest

import imgpull_cli as cli
import synth_images
from registry.harness import Registry

KIB = 1024
MAX_FDS = 64
MAX_RSS_KIB = 100 * 1024


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with Registry("plain", str(tmp_path_factory.mktemp("many-registry"))) as reg:
        yield reg


def vm_hwm_kib(pid):
    """The process's peak resident size so far (0 before its exec of imgpull is seen)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run_measured(cmds, env):
    """Runs the commands at once; returns [(returncode, stderr, peak RSS KiB, max fds)]."""
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env) for c in cmds]
    max_fds = [0] * len(procs)
    peak_rss = [0] * len(procs)
    results = [None] * len(procs)
    deadline = time.monotonic() + 300
    while any(r is None for r in results):
        assert time.monotonic() < deadline, "pulls did not finish"
        for i, p in enumerate(procs):
            if results[i] is not None:
                continue
            try:
                max_fds[i] = max(max_fds[i], len(os.listdir(f"/proc/{p.pid}/fd")))
                peak_rss[i] = max(peak_rss[i], vm_hwm_kib(p.pid))
            except OSError:
                pass
            pid, status, _ = os.wait4(p.pid, os.WNOHANG)
            if pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                results[i] = (p.returncode, p.stderr.read().decode(), peak_rss[i], max_fds[i])
                p.stderr.close()
        time.sleep(0.002)
    return results


def env_for(tmp_path):
    return dict(os.environ, DOCKER_CONFIG=str(tmp_path / "no-docker-config"))


def test_an_image_of_120_layers_with_a_rootfs(registry, tmp_path):
    img = synth_images.push_image(registry, "layers120", [2 * KIB + i for i in range(120)])
    root, rootfs = tmp_path / "store", tmp_path / "rootfs"
    ref = f"{registry.host}/{img.ref}"
    t0 = time.monotonic()
    [(rc, err, rss, fds)] = run_measured(
        [[cli.binary(), "--root", str(root), "pull", "--rootfs", str(rootfs), ref]], env_for(tmp_path))
    took = time.monotonic() - t0
    print(f"\n120 layers with --rootfs: exit {rc} in {took:.2f}s, peak RSS {rss / 1024:.1f} MiB, "
          f"max open fds {fds}")
    assert rc == 0, err
    assert sorted(p.name for p in rootfs.iterdir()) == sorted(p.lstrip("/") for p in img.files)
    for path, sha in img.files.items():
        assert hashlib.sha256((rootfs / path.lstrip("/")).read_bytes()).hexdigest() == sha
    assert len(cli.blobs(root)) == 120 + 2  # layers, config, manifest
    assert cli.ingest_leftovers(root) == []
    assert fds < MAX_FDS and rss < MAX_RSS_KIB, (fds, rss)
    cli.run(["verify"], root, check=True)


def test_ten_images_pulled_at_once_into_one_store(registry, tmp_path):
    images = [synth_images.push_image(registry, f"ten/image{i}", [256 * KIB, 512 * KIB, 64 * KIB, 1024 * KIB])
              for i in range(10)]
    root = tmp_path / "store"
    refs = [f"{registry.host}/{img.ref}" for img in images]
    t0 = time.monotonic()
    results = run_measured([[cli.binary(), "--root", str(root), "pull", ref] for ref in refs],
                           env_for(tmp_path))
    took = time.monotonic() - t0
    print(f"\n10 pulls at once in {took:.2f}s; peak RSS MiB "
          f"{[round(r[2] / 1024, 1) for r in results]}; max open fds {[r[3] for r in results]}")
    for rc, err, rss, fds in results:
        assert rc == 0, err
        assert fds < MAX_FDS and rss < MAX_RSS_KIB, (fds, rss)
    assert sorted(cli.index_names(root)) == sorted(refs)
    assert cli.ingest_leftovers(root) == []
    verify = cli.run(["verify"], root)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    for i, img in enumerate(images[:3]):  # a few unpacked and checked file by file
        out = tmp_path / f"rootfs{i}"
        cli.run(["unpack", refs[i], str(out)], root, check=True)
        for path, sha in img.files.items():
            assert hashlib.sha256((out / path.lstrip("/")).read_bytes()).hexdigest() == sha
