"""Two processes, one store: two `imgpull pull` of the same image into the
same --root at the same time both succeed, and every blob crosses the
network once (the second waits on the first's ingest locks, then finds the
blobs committed)."""
import os
import subprocess
import time
from collections import Counter

import pytest

import imgpull_cli as cli
import synth_images
from faults.proxy import Fault, FaultProxy
from registry.harness import Registry

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    with Registry("plain", str(tmp_path_factory.mktemp("concurrent-registry"))) as reg:
        yield reg, synth_images.push_image(reg, "shared", [4 * MIB, 4 * MIB, 2 * MIB, 1 * MIB])


def start(root, tmp_path, *args):
    env = dict(os.environ, DOCKER_CONFIG=str(tmp_path / "no-docker-config"))
    return subprocess.Popen([cli.binary(), "--root", str(root), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("rootfs", [False, True], ids=["store", "one-with-rootfs"])
def test_two_pulls_of_one_image_into_one_store(image, tmp_path, rootfs):
    reg, img = image
    root = tmp_path / "store"
    with FaultProxy(reg.url) as proxy:
        # Slow enough (about 1 s per layer) that the two pulls overlap.
        proxy.add(Fault.throttle(4 * MIB), path=r"/blobs/sha256:", times=None)
        ref = f"{proxy.host}/{img.ref}"
        t0 = time.monotonic()
        first = start(root, tmp_path, "pull", ref)
        second_args = ["pull", "--rootfs", str(tmp_path / "rootfs"), ref] if rootfs else ["pull", ref]
        second = start(root, tmp_path, *second_args)
        outs = [p.communicate(timeout=120) for p in (first, second)]
        took = time.monotonic() - t0
        for p, (out, err) in zip((first, second), outs):
            assert p.returncode == 0, err
        gets = Counter(r.path.split("/")[-1] for r in proxy.requests("GET", path=r"/blobs/sha256:"))
    print(f"\nboth pulls done in {took:.2f}s; blob GETs: {dict((d[7:19], n) for d, n in gets.items())}")
    assert set(gets) == set(img.blobs), gets
    assert all(n == 1 for n in gets.values()), gets
    # One of them downloaded; the other found the blobs already there.
    assert sum("Already exists" in out for out, _ in outs) <= 1
    assert cli.ingest_leftovers(root) == []
    verify = cli.run(["verify"], root)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert cli.index_names(root) == [f"{proxy.host}/{img.ref}"]
    if rootfs:
        import hashlib
        for path, sha in img.files.items():
            data = (tmp_path / "rootfs" / path.lstrip("/")).read_bytes()
            assert hashlib.sha256(data).hexdigest() == sha
