"""A layer that cannot be applied ends the pull at once: the applier's error
cancels the downloads still running, also one that is stalled (the transfer
is dropped, not left to its stall timeout), and a slow download of the bad
layer itself is not carried on to its end. Real registry, fault proxy."""
import gzip
import hashlib
import io
import json
import os
import tarfile
import time

import pytest

import imgpull_cli as cli
from faults.proxy import Fault, FaultProxy
from registry import fixtures
from registry.harness import Registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
STALL_SECONDS = 30


def layer_tar(bad_first_entry: bool, filler_bytes: int) -> bytes:
    """A tar of random filler, led (when bad_first_entry) by a hardlink to nothing."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if bad_first_entry:
            link = tarfile.TarInfo("broken-link")
            link.type = tarfile.LNKTYPE
            link.linkname = "no/such/target"
            tar.addfile(link)
        filler = tarfile.TarInfo(f"filler-{filler_bytes}.bin")
        filler.size = filler_bytes
        tar.addfile(filler, io.BytesIO(os.urandom(filler_bytes)))
    return out.getvalue()


def push(reg, repo, tars):
    """Pushes gzip layers of `tars`; returns [(digest, size)] of the layers."""
    layers = []
    for tar in tars:
        blob = gzip.compress(tar, compresslevel=1, mtime=0)
        layers.append((fixtures._upload_bytes(reg, repo, blob), len(blob)))
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_digest = fixtures._upload_bytes(reg, repo, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n}
                   for d, n in layers],
    }).encode()
    r = reg.api("PUT", f"/v2/{repo}/manifests/latest", body=manifest,
                headers={"Content-Type": OCI_MANIFEST, "Content-Length": str(len(manifest))})
    assert r.status == 201, r.body
    return layers


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with Registry("plain", str(tmp_path_factory.mktemp("apply-stops-registry"))) as reg:
        yield reg


def test_a_bad_layer_drops_the_stalled_download_of_another(registry, tmp_path):
    (bad, _), (stalled, _) = push(registry, "badfirst",
                                  [layer_tar(True, 64 * 1024), layer_tar(False, 8 * 1024 * 1024)])
    with FaultProxy(registry.url) as proxy:
        proxy.add(Fault.stall(after=512 * 1024, seconds=STALL_SECONDS, then="close"), path=stalled)
        start = time.monotonic()
        done = cli.run(["--stall-timeout", "120", "pull", "--rootfs", str(tmp_path / "rootfs"),
                        f"{proxy.host}/badfirst:latest"], tmp_path / "store")
        took = time.monotonic() - start
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"layer {bad}" in done.stderr and "hardlink target \"no/such/target\"" in done.stderr, done.stderr
    # Not a speed check: waiting for the stalled transfer would take the whole stall.
    assert took < STALL_SECONDS / 2, f"took {took:.1f}s: the pull waited for the stalled download"
    assert cli.index_names(tmp_path / "store") == []


def test_a_bad_layer_is_not_downloaded_to_its_end(registry, tmp_path):
    [(bad, size)] = push(registry, "badslow", [layer_tar(True, 8 * 1024 * 1024)])
    with FaultProxy(registry.url) as proxy:
        proxy.add(Fault.throttle(2 * 1024 * 1024), path=bad)  # 4 s for the whole layer
        # One connection, so what was sent is what the applier waited for (in
        # pieces, a second connection fetches the far half meanwhile; the unit
        # test PullTest.AnApplyErrorStopsADownloadThatStalls covers pieces).
        done = cli.run(["pull", "--max-connections", "1", "--rootfs", str(tmp_path / "rootfs"),
                        f"{proxy.host}/badslow:latest"], tmp_path / "store")
        sent = proxy.bytes_sent(path=bad)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "hardlink target \"no/such/target\"" in done.stderr, done.stderr
    assert 0 < sent < size / 2, (sent, size)
