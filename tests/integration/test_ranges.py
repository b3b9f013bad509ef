"""A big blob fetched in pieces over several connections, against a real
registry behind the fault proxy: every request a closed byte range, every
byte fetched once, and correct under servers that ignore Range, answer a
Range they were not asked, hold a shorter blob than the descriptor says, drop
connections, or redirect to another origin whose signed URL expires.
(tests/integration/test_faults.py has the same faults for one connection
carrying a whole blob; the speed over a real link is bench/'s business.)"""
import hashlib
import json
import re

import pytest

import imgpull_cli as cli
from faults.proxy import Fault, FaultProxy, RedirectTarget
from registry import fixtures
from registry.harness import Registry

LAYER_BYTES = 32 * 1024 * 1024
FAST = ["--retries", "3", "--retry-max-wait", "0.2"]
CLOSED = re.compile(r"bytes=(\d+)-(\d+)$")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A plain registry with an image whose one layer is 32 MiB of random data."""
    with Registry("plain", str(tmp_path_factory.mktemp("ranges-registry"))) as reg:
        yield reg, fixtures.big_blob(reg, "pieces", LAYER_BYTES)


@pytest.fixture
def proxy(image):
    reg, _ = image
    with FaultProxy(reg.url) as p:
        yield p


def pull(host, big, root, *extra):
    return cli.run([*FAST, "pull", "--json", *extra, f"{host}/{big.ref}"], root)


def events(proc):
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def ranges(gets):
    """(start, end) of each request's closed Range; fails on any other Range."""
    out = []
    for g in gets:
        m = CLOSED.fullmatch(g.range or "")
        assert m, f"not a closed range: {g!r}"
        out.append((int(m.group(1)), int(m.group(2)) + 1))
    return out


def stored_ok(root, big):
    data = (root / "blobs" / "sha256" / big.layer_digest.split(":")[1]).read_bytes()
    return hashlib.sha256(data).hexdigest() == big.layer_digest.split(":")[1]


def test_a_big_blob_comes_in_closed_ranges_over_several_connections(proxy, image, tmp_path):
    _, big = image
    proxy.add(Fault.throttle(8 * 1024 * 1024), path=big.layer_digest, times=None)  # ~1 s a piece
    proc = pull(proxy.host, big, tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    gets = proxy.requests("GET", big.layer_digest)
    pieces = ranges(gets)
    assert len(pieces) > 1, gets
    assert all(g.status == 206 for g in gets), gets
    # What was sent tiles the blob. A range that another connection took half
    # of was asked to its old end and cut short: beyond what the client
    # kept, only what was on its way when it stopped was sent.
    sent = sorted((start, start + g.bytes_sent) for (start, _), g in zip(pieces, gets))
    reach = 0
    for start, end in sent:
        assert start <= reach, sent  # no hole
        reach = max(reach, end)
    assert reach == big.layer_size, sent
    assert proxy.bytes_sent(path=big.layer_digest) < 1.25 * big.layer_size
    assert proxy.peak_connections() > 1
    assert stored_ok(tmp_path / "store", big)
    # One line, one bar: progress counts the layer's bytes, never more.
    for e in events(proc):
        if e.get("layer") == big.layer_digest and "current" in e:
            assert e["current"] <= big.layer_size, e
    assert events(proc)[-1]["bytes_downloaded"] == big.layer_size


def test_a_dropped_piece_resumes_its_own_range(proxy, image, tmp_path):
    _, big = image
    proxy.add(Fault.drop_after(bytes=3_000_000), path=big.layer_digest, times=1)
    proc = pull(proxy.host, big, tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    gets = proxy.requests("GET", big.layer_digest)
    starts = [start for start, _ in ranges(gets)]
    [dropped] = [i for i, g in enumerate(gets) if (g.error or "").startswith("reset after")]
    assert gets[dropped].bytes_sent == 3_000_000, gets
    # The dropped piece asks for its rest, and only that.
    assert starts[dropped] + 3_000_000 in starts[dropped + 1:], gets
    assert proxy.bytes_sent(path=big.layer_digest) < 1.05 * big.layer_size
    assert stored_ok(tmp_path / "store", big)


def test_a_server_ignoring_range_sends_the_blob_on_one_connection(proxy, image, tmp_path):
    _, big = image
    proxy.add(Fault.ignore_range(), path=big.layer_digest, times=None)
    proc = pull(proxy.host, big, tmp_path / "store", "--rootfs", str(tmp_path / "rootfs"))
    assert proc.returncode == 0, proc.stderr
    gets = proxy.requests("GET", big.layer_digest)
    carried = [g for g in gets if g.status == 200 and g.bytes_sent == big.layer_size]
    assert len(carried) == 1, gets
    # No byte counted twice, whatever the connections that were cut off got.
    assert events(proc)[-1]["bytes_downloaded"] == big.layer_size
    assert stored_ok(tmp_path / "store", big)
    data = (tmp_path / "rootfs" / big.file_name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == big.file_sha256


def test_a_content_range_that_was_not_asked_for_is_never_taken_as_data(proxy, image, tmp_path):
    _, big = image
    proxy.add(Fault.shift_range(1), path=big.layer_digest, times=None)
    proc = pull(proxy.host, big, tmp_path / "store")
    assert proc.returncode == 1
    assert "Content-Range" in proc.stderr and big.layer_digest in proc.stderr, proc.stderr
    assert big.layer_digest.split(":")[1] not in cli.blobs(tmp_path / "store")


def test_a_blob_shorter_than_its_descriptor_fails_naming_it(image, tmp_path):
    reg, big = image
    # The same layer, declared twice its size.
    config = reg.api("GET", f"/v2/{big.repo}/blobs/{big.config_digest}").body
    manifest = {
        "schemaVersion": 2, "mediaType": fixtures.OCI_MANIFEST,
        "config": {"mediaType": fixtures.OCI_CONFIG, "digest": big.config_digest, "size": len(config)},
        "layers": [{"mediaType": fixtures.OCI_LAYER_TAR, "digest": big.layer_digest,
                    "size": 2 * big.layer_size}],
    }
    body = json.dumps(manifest).encode()
    r = reg.api("PUT", f"/v2/{big.repo}/manifests/liar", body=body,
                headers={"Content-Type": fixtures.OCI_MANIFEST, "Content-Length": str(len(body))})
    assert r.status == 201, r.body
    proc = cli.run([*FAST, "pull", f"{reg.host}/{big.repo}:liar"], tmp_path / "store")
    assert proc.returncode == 1
    assert big.layer_digest in proc.stderr, proc.stderr
    assert big.layer_digest.split(":")[1] not in cli.blobs(tmp_path / "store")


@pytest.fixture
def cdn(image, tmp_path):
    """The registry's blobs redirected (307) to another origin serving its
    storage with Range, as an object store behind signed URLs does."""
    reg, _ = image
    with RedirectTarget(storage_dir=reg.storage_dir) as target, FaultProxy(reg.url) as proxy:
        proxy.add(Fault.redirect(target), path=r"/blobs/sha256:", times=None)
        yield proxy, target


def test_pieces_go_straight_to_the_redirect_target(cdn, image, tmp_path):
    proxy, target = cdn
    _, big = image
    target.add(Fault.throttle(8 * 1024 * 1024), path=big.layer_digest, times=None)
    proc = pull(proxy.host, big, tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    at_target = target.requests("GET", big.layer_digest)
    assert len(ranges(at_target)) > 1, at_target
    assert not any(r.has_auth for r in at_target)
    # The registry is asked once per connection that started before the
    # target was known, not once per piece.
    at_registry = proxy.requests("GET", big.layer_digest)
    assert len(at_registry) < len(at_target), (at_registry, at_target)
    assert stored_ok(tmp_path / "store", big)


def test_an_expired_redirect_is_asked_for_again_through_the_registry(cdn, image, tmp_path):
    proxy, target = cdn
    _, big = image
    # A request at the target for a piece past the first finds its signature
    # expired (the first rule a request matches applies).
    target.add(Fault.status(403, message="Request has expired"), path=big.layer_digest,
               headers={"Range": r"bytes=[1-9]"}, times=1)
    target.add(Fault.throttle(8 * 1024 * 1024), path=big.layer_digest, times=None)
    proc = pull(proxy.host, big, tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    assert any(r.status == 403 for r in target.requests("GET", big.layer_digest))
    assert len(proxy.requests("GET", big.layer_digest)) >= 2
    assert stored_ok(tmp_path / "store", big)
