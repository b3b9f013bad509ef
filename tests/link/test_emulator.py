"""Self-tests of the link emulator (link/emulator.py) in front of a real
docker-registry: what it records and logs is what went over the wire, faults
still happen behind the link, and the link really delays and paces (only
lower bounds, which shaping guarantees however slow the machine is)."""

import concurrent.futures
import hashlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from faults.proxy import Fault
from link.emulator import CATCH_UP_SECONDS, LinkSpec, Pacer, read_log
from registry import fixtures
from registry.harness import Registry

SIZE = 2_000_000
CURL = "/usr/bin/curl"
EMULATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "emulator.py")


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    """A plain registry holding one random blob in repository "link"."""
    with Registry("plain", str(tmp_path_factory.mktemp("link-plain"))) as r:
        r.blob = os.urandom(SIZE)
        r.digest = fixtures._upload_bytes(r, "link", r.blob)
        r.blob_path = f"/v2/link/blobs/{r.digest}"
        yield r


def get(port, path, headers=None, conn=None):
    """(response, body, connection) of one GET."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    return r, r.read(), c


def curl(*args):
    return subprocess.run([CURL, "-s", "-o", "/dev/null", *args], timeout=60).returncode


# --- the link's description and its pacer -----------------------------------------------------

def test_link_spec_parses_the_benchmark_link_and_refuses_nonsense():
    spec = LinkSpec.parse("50ms,20MB/s,160MB/s")
    assert (spec.rtt, spec.conn_rate, spec.link_rate) == (0.05, 20e6, 160e6)
    assert str(spec) == "50ms,20MB/s,160MB/s"
    assert LinkSpec.parse("0.2s") == LinkSpec(0.2, None, None)
    assert LinkSpec.parse("0ms,inf,512KiB/s") == LinkSpec(0.0, None, 512 * 1024)
    for bad in ("", "50", "50ms,20MB", "50ms,0MB/s", "fast", "1ms,1MB/s,1MB/s,1MB/s"):
        with pytest.raises(ValueError):
            LinkSpec.parse(bad)


def test_pacer_hands_out_slots_at_its_rate_and_banks_little_idle_time():
    now = [100.0]
    pacer = Pacer(1000.0, clock=lambda: now[0])
    ends = [pacer.reserve(500) for _ in range(3)]
    assert ends == [100.5 - CATCH_UP_SECONDS, 101.0 - CATCH_UP_SECONDS, 101.5 - CATCH_UP_SECONDS]
    now[0] = 200.0  # idle for long: only the catch-up allowance is made up ...
    assert pacer.reserve(1000) == 201.0 - CATCH_UP_SECONDS
    pacer.restart()  # ... and after a restart nothing
    assert pacer.reserve(1000) == 201.0


# --- what the emulator records and logs --------------------------------------------------------

def test_records_ranges_content_ranges_and_bytes(reg, link_factory, tmp_path):
    log = str(tmp_path / "link.jsonl")
    link = link_factory(reg, "1ms", log_path=log)
    r, body, c = get(link.port, reg.blob_path, {"Range": "bytes=100-199"})
    assert (r.status, body) == (206, reg.blob[100:200])
    r, body, c = get(link.port, reg.blob_path, {"Range": f"bytes={SIZE - 10}-"}, conn=c)
    assert (r.status, body) == (206, reg.blob[-10:])
    r, body, _ = get(link.port, reg.blob_path)
    assert r.status == 200 and hashlib.sha256(body).hexdigest() == reg.digest[7:]
    c.close()

    recs = link.requests()
    assert [(x.conn, x.range, x.status, x.content_range, x.bytes_sent) for x in recs] == [
        (1, "bytes=100-199", 206, f"bytes 100-199/{SIZE}", 100),
        (1, f"bytes={SIZE - 10}-", 206, f"bytes {SIZE - 10}-{SIZE - 1}/{SIZE}", 10),
        (2, None, 200, None, SIZE)]
    link.stop()  # closes the connections and the log
    logged, conns, _ = read_log(log)
    assert [(x["conn"], x["method"], x["path"], x["range"], x["status"], x["content_range"],
             x["bytes"]) for x in logged] == [
        (x.conn, "GET", reg.blob_path, x.range, x.status, x.content_range, x.bytes_sent)
        for x in recs]
    assert [c.id for c in conns] == [1, 2] and all(c.closed is not None for c in conns)


def test_connections_open_at_once_are_counted(reg, link_factory):
    link = link_factory(reg, "5ms,inf,inf")
    conns = [http.client.HTTPConnection("127.0.0.1", link.port, timeout=30) for _ in range(5)]
    for c in conns:  # all five are open before any closes
        c.request("GET", reg.blob_path, headers={"Range": "bytes=0-9"})
    for c in conns:
        assert c.getresponse().read() == reg.blob[:10]
    for c in conns:
        c.close()
    assert link.peak_connections() == 5
    get(link.port, "/v2/")[2].close()  # a sixth, after the others: the peak stays
    assert link.peak_connections() == 5 and len(link.connections()) == 6


def test_cli_logs_parallel_ranged_curls(reg, tmp_path):
    log = str(tmp_path / "cli.jsonl")
    proc = subprocess.Popen([sys.executable, EMULATOR, "--upstream", reg.host,
                             "--link", "20ms,4MB/s,16MB/s", "--log", log],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), line
        url = "http://" + line.split()[2].rstrip(",") + reg.blob_path
        part = SIZE // 8
        ranges = [f"{i * part}-{(i + 1) * part - 1}" for i in range(8)]
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            assert list(ex.map(lambda r: curl("-f", "-r", r, url), ranges)) == [0] * 8
        assert curl("-f", "-o", "/dev/null", url, url) == 0  # two GETs on one connection
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    logged, conns, _ = read_log(log)
    assert sorted(x["range"] for x in logged[:8]) == sorted(f"bytes={r}" for r in ranges)
    assert all(x["status"] == 206 and x["bytes"] == part for x in logged[:8])
    assert [(x["range"], x["bytes"]) for x in logged[8:]] == [(None, SIZE)] * 2
    assert logged[8]["conn"] == logged[9]["conn"]
    assert len(conns) == 9 and len({x["conn"] for x in logged[:8]}) == 8


# --- faults behind the link ----------------------------------------------------------------------

def test_faults_happen_behind_the_link(reg, link_factory):
    link = link_factory(reg, "10ms,8MB/s,16MB/s")
    url = link.url + reg.blob_path
    link.add(Fault.drop_after(bytes=300_000), path=r"/blobs/")
    link.add(Fault.truncate(bytes=1000), path=r"/blobs/")
    link.add(Fault.stall(after=5000, seconds=0.5), path=r"/blobs/")
    link.add(Fault.status(503, retry_after=1), path=r"/blobs/")
    assert curl(url) == 56   # reset: "failure receiving network data"
    assert curl(url) == 18   # FIN before Content-Length: "partial file"
    assert curl(url) == 18   # stalled, then closed
    assert curl("-f", url) == 22
    assert curl("-f", url) == 0
    recs = link.requests()
    assert [(x.fault, x.status) for x in recs] == [
        ("drop_after(300000)", 200), ("truncate(1000)", 200), ("stall(5000, 0.5, close)", 200),
        ("status(503)", 503), (None, 200)]
    assert [x.bytes_sent for x in recs if x.status == 200] == [300_000, 1000, 5000, SIZE]
    assert recs[0].error == "reset after 300000 bytes"
    assert link.unspent() == []


# --- the link delays and paces (lower bounds only) ------------------------------------------------

def elapsed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def test_round_trips_and_rates_are_never_beaten(reg, link_factory):
    link = link_factory(reg, "200ms,2MB/s,inf")
    c = http.client.HTTPConnection("127.0.0.1", link.port, timeout=30)
    assert elapsed(lambda: get(link.port, "/v2/", conn=c)) >= 0.4  # handshake + exchange
    assert elapsed(lambda: get(link.port, "/v2/", conn=c)) >= 0.2  # one exchange
    took = elapsed(lambda: get(link.port, reg.blob_path, conn=c))
    assert took >= 0.2 + SIZE / 2e6  # a response is paced from its start, no credit


def test_the_link_rate_is_shared_by_all_connections(reg, link_factory):
    link = link_factory(reg, "0ms,inf,4MB/s")
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        took = elapsed(lambda: list(ex.map(lambda _: get(link.port, reg.blob_path), range(4))))
    assert took >= 4 * SIZE / 4e6 - CATCH_UP_SECONDS
    assert link.peak_connections() >= 1 and len(link.requests()) == 4


def test_what_is_not_http_is_refused_over_the_link_too(reg, link_factory):
    """A client probing for https sends a TLS ClientHello: it gets http.server's 400
    after the handshake and a round trip, as from a plain-http registry far away."""
    link = link_factory(reg, "200ms")
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", link.port), timeout=30) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 binary\n\r\n")
        answer = b"".join(iter(lambda: s.recv(4096), b""))
    assert b"Error code: 400" in answer, answer
    assert time.monotonic() - t0 >= 0.4
