"""Surviving the network: imgpull behind the fault-injecting proxy, in front of a real registry."""
import hashlib
import re

import pytest

import imgpull_cli as cli
from faults.proxy import Fault, FaultProxy
from registry import fixtures
from registry.harness import Registry

LAYER_BYTES = 8 * 1024 * 1024
# Quick retries, so failing tests fail fast; back-off itself is the same code.
FAST = {"--retries": "3", "--retry-max-wait": "0.2"}


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A plain registry with an image whose one layer is 8 MiB of random data."""
    with Registry("plain", str(tmp_path_factory.mktemp("faults-registry"))) as reg:
        big = fixtures.big_blob(reg, "resume", LAYER_BYTES)
        yield reg, big


@pytest.fixture
def proxy(image):
    reg, _ = image
    with FaultProxy(reg.url) as p:
        yield p


def pull(proxy, big, root, pull_args=(), **global_options):
    """imgpull [FAST global options, overridden by global_options] pull --max-connections 1
    [pull_args] REF: these faults are met by one connection carrying the whole blob
    (tests/integration/test_ranges.py has them for a blob fetched in pieces)."""
    options = dict(FAST)
    options.update({"--" + k.replace("_", "-"): v for k, v in global_options.items()})
    args = [x for item in options.items() for x in item]
    return cli.run([*args, "pull", "--max-connections", "1", *pull_args, f"{proxy.host}/{big.ref}"], root)


def layer_gets(proxy, big):
    return proxy.requests("GET", big.layer_digest)


def test_dropped_connection_resumes_with_range(proxy, image, tmp_path):
    _, big = image
    proxy.add(Fault.drop_after(bytes=3_000_000), path=big.layer_digest, headers={"Range": None})
    proc = pull(proxy, big, tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    gets = layer_gets(proxy, big)
    assert len(gets) == 2, gets
    assert gets[1].range == f"bytes={gets[0].bytes_sent}-", gets
    assert gets[1].status == 206
    total = proxy.bytes_sent(path=big.layer_digest)
    assert total < 1.1 * big.layer_size, total
    stored = tmp_path / "store" / "blobs" / "sha256" / big.layer_digest.split(":")[1]
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == big.layer_digest.split(":")[1]


def test_truncated_body_resumes(proxy, image, tmp_path):
    _, big = image
    proxy.add(Fault.truncate(bytes=1_000_000), path=big.layer_digest, times=2)
    proc = pull(proxy, big, tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    gets = layer_gets(proxy, big)
    assert [g.range for g in gets] == [None, "bytes=1000000-", "bytes=2000000-"], gets


def test_registry_ignoring_range_makes_the_blob_start_over(proxy, image, tmp_path):
    _, big = image
    proxy.add(Fault.drop_after(bytes=2_000_000), path=big.layer_digest, headers={"Range": None})
    proxy.add(Fault.ignore_range(), path=big.layer_digest, headers={"Range": "."})
    proc = pull(proxy, big, tmp_path / "store", pull_args=["--rootfs", str(tmp_path / "rootfs")])
    assert proc.returncode == 0, proc.stderr
    gets = layer_gets(proxy, big)
    assert len(gets) == 2 and gets[1].status == 200, gets
    # The rootfs applier followed the download through the restart.
    data = (tmp_path / "rootfs" / big.file_name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == big.file_sha256


def test_stall_is_detected_and_the_transfer_resumes(proxy, image, tmp_path):
    _, big = image
    proxy.add(Fault.stall(after=1_000_000, seconds=30), path=big.layer_digest, headers={"Range": None})
    proc = pull(proxy, big, tmp_path / "store", stall_timeout="1")
    assert proc.returncode == 0, proc.stderr
    gets = layer_gets(proxy, big)
    assert len(gets) == 2 and gets[1].range and gets[1].range.startswith("bytes="), gets


def test_retry_after_is_honoured_on_manifests(proxy, image, tmp_path):
    _, big = image
    proxy.add(Fault.status(503, retry_after=1), path=r"/manifests/", times=2)
    proc = pull(proxy, big, tmp_path / "store", retry_max_wait="5")
    assert proc.returncode == 0, proc.stderr
    # A first pull GETs the tag, retried after the time the registry asked for.
    assert [(m.path, m.status) for m in proxy.requests("GET", r"/manifests/")] == \
        [(f"/v2/{big.repo}/manifests/{big.tag}", s) for s in (503, 503, 200)]
    assert proxy.requests("HEAD", r"/manifests/") == []


def test_429_on_a_blob_is_retried(proxy, image, tmp_path):
    _, big = image
    proxy.add(Fault.status(429, retry_after=0), path=big.layer_digest, times=1)
    proc = pull(proxy, big, tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    assert [g.status for g in layer_gets(proxy, big)] == [429, 200]


# As Docker Hub answers (figures invented: the message must show whatever the registry sends).
RATE_LIMITED = {"RateLimit-Limit": "150;w=21600", "RateLimit-Remaining": "0;w=21600",
                "Docker-RateLimit-Source": "192.0.2.7", "RateLimit-Reset": "7200"}


def test_429_on_the_manifest_says_the_limit_what_remains_and_what_helps(proxy, image, tmp_path):
    _, big = image
    proxy.add(Fault.status(429, retry_after=3600, headers=RATE_LIMITED), path=r"/manifests/", times=None)
    proc = pull(proxy, big, tmp_path / "store")
    assert proc.returncode != 0
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "gave up after 4 attempts" in message, message
    assert ("the registry's rate limit: limit 150 per 6 hours, 0 remaining, counted for 192.0.2.7; "
            "it resets in 2 hours; it asks to wait 60 minutes (Retry-After); "
            "log in (imgpull login) for a higher limit, or use a mirror (hosts.toml)") in message, message
    assert message.count("rate limit") == 1, message
    # Retried (Retry-After capped by --retry-max-wait), then given up. (A pull
    # of a tag already in the store asks with HEAD, and a refused HEAD is not
    # followed by a GET: PullTest.AHeadThatCannotBeServedIsNotFollowedByAGet.)
    assert [(r.method, r.status) for r in proxy.requests(path=r"/manifests/")] == [("GET", 429)] * 4


def test_429_without_figures_says_the_registry_sent_none(proxy, image, tmp_path):
    _, big = image
    proxy.add(Fault.status(429), path=r"/manifests/", times=None)
    proc = pull(proxy, big, tmp_path / "store", retries="0")
    assert proc.returncode != 0
    message = proc.stderr.strip()
    assert ("too many requests (HTTP 429 from " in message and "the registry limits how often it may be asked (it "
            "sent no RateLimit-Limit or RateLimit-Remaining header saying how often); log in (imgpull login) for a "
            "higher limit, or use a mirror (hosts.toml)") in message, message


def test_debug_prints_rate_limit_headers_and_no_other_header(proxy, image, tmp_path):
    _, big = image
    proxy.add(Fault.status(429, retry_after=0, headers={**RATE_LIMITED, "X-Session": "secret-value"}),
              path=r"/manifests/", times=1)
    proc = cli.run([*[x for kv in FAST.items() for x in kv], "--debug", "pull", f"{proxy.host}/{big.ref}"],
                   tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    debug = [l for l in proc.stderr.splitlines() if l.startswith("DEBUG")]
    for line in debug:
        assert cli.DEBUG_LINE.match(line), line
    [refused] = [l for l in debug if " -> 429 " in l]
    assert re.sub(r"^DEBUG \+[0-9.]+s ", "DEBUG ", refused).startswith(f"DEBUG GET http://{proxy.host}/v2/{big.repo}/manifests/{big.tag} -> 429 "), refused
    assert refused.endswith(" [ratelimit-limit: 150;w=21600, ratelimit-remaining: 0;w=21600, "
                            "docker-ratelimit-source: 192.0.2.7, ratelimit-reset: 7200]"), refused
    assert "secret-value" not in proc.stderr


def test_retries_run_out_with_a_message_saying_what_was_tried(proxy, image, tmp_path):
    _, big = image
    proxy.add(Fault.status(500), path=big.layer_digest, times=None)
    proc = pull(proxy, big, tmp_path / "store")
    assert proc.returncode != 0
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "gave up after 4 attempts" in message and big.layer_digest in message, message
    assert message.count("HTTP 500") == 4, message
    assert cli.ingest_leftovers(tmp_path / "store") == []
    assert cli.index_names(tmp_path / "store") == []


def test_flipped_byte_is_never_committed(proxy, image, tmp_path):
    _, big = image
    proxy.add(Fault.flip_byte(offset=12345), path=big.layer_digest, times=None)
    proc = pull(proxy, big, tmp_path / "store")
    assert proc.returncode != 0
    assert "digest mismatch" in proc.stderr and big.layer_digest in proc.stderr, proc.stderr
    assert big.layer_digest.split(":")[1] not in cli.blobs(tmp_path / "store")
    assert cli.ingest_leftovers(tmp_path / "store") == []
