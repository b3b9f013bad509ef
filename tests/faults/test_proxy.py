"""Self-tests of the fault-injecting proxy (faults/proxy.py) in front of a
real docker-registry: each fault is shown to really happen on the wire,
seen through Python's http.client (and curl for the two ways of cutting a
body short)."""

import base64
import hashlib
import http.client
import json
import os
import subprocess
import time

import pytest

from faults.proxy import Fault, FaultProxy, RedirectTarget
from registry import fixtures
from registry.harness import PASSWORD, USER, Registry

SIZE = 3 * 1024 * 1024 + 12345
CURL = "/usr/bin/curl"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    """A plain registry holding one random blob in repository "faults"."""
    with Registry("plain", str(tmp_path_factory.mktemp("faults-plain"))) as r:
        r.blob = os.urandom(SIZE)
        r.digest = fixtures._upload_bytes(r, "faults", r.blob)
        r.blob_path = f"/v2/faults/blobs/{r.digest}"
        yield r


@pytest.fixture(scope="module")
def basic_reg(tmp_path_factory):
    with Registry("basic", str(tmp_path_factory.mktemp("faults-basic"))) as r:
        r.blob = os.urandom(SIZE)
        r.digest = fixtures._upload_bytes(r, "faults", r.blob)
        r.blob_path = f"/v2/faults/blobs/{r.digest}"
        yield r


@pytest.fixture
def proxy(reg):
    with FaultProxy(reg.url) as p:
        yield p
    assert p.errors == []


def conn(p, timeout=10):
    return http.client.HTTPConnection("127.0.0.1", p.port, timeout=timeout)


def get(c, path, headers=None, method="GET"):
    """(response, body) on connection c; a short body raises."""
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    return r, r.read()


def read_until_error(r):
    """Read a response body piecewise: (bytes got, exception or None)."""
    got = bytearray()
    try:
        while True:
            b = r.read1(65536)
            if not b:  # read1 returns b"" at a premature EOF, without raising
                short = r.length if not r.chunked else None
                return bytes(got), (http.client.IncompleteRead(bytes(got), short) if short else None)
            got += b
    except (http.client.HTTPException, OSError) as e:
        return bytes(got), e


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


# --- pass-through -----------------------------------------------------------------

def test_passthrough_keepalive_and_records(reg, proxy):
    reg.clear_requests()
    c = conn(proxy)
    for _ in range(3):
        r, body = get(c, reg.blob_path, {"Authorization": "Bearer xyz"})
        assert r.status == 200 and sha(body) == reg.digest
        assert r.getheader("Content-Length") == str(SIZE)
        assert r.getheader("Docker-Content-Digest") == reg.digest
        assert r.getheader("Transfer-Encoding") is None
    r, body = get(c, reg.blob_path, method="HEAD")
    assert (r.status, body, r.getheader("Content-Length")) == (200, b"", str(SIZE))
    r, body = get(c, "/v2/faults/manifests/nope", {"Accept": "application/json"})
    assert r.status == 404 and json.loads(body)["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    r, body = get(c, "/v2/")
    assert r.status == 200
    c.close()

    recs = proxy.requests()
    assert [(x.method, x.status) for x in recs] == [
        ("GET", 200)] * 3 + [("HEAD", 200), ("GET", 404), ("GET", 200)]
    assert len({x.conn for x in recs}) == 1          # one client connection ...
    assert proxy.upstream_connections == 1           # ... and one upstream connection
    assert all(x.complete and x.fault is None for x in recs)
    assert [x.bytes_sent for x in recs[:4]] == [SIZE, SIZE, SIZE, 0]
    assert recs[0].has_auth and recs[0].authorization == "Bearer xyz" and not recs[3].has_auth
    assert recs[0].upstream_status == 200 and recs[0].content_length == SIZE
    assert proxy.bytes_sent(path=r"/blobs/") == 3 * SIZE
    # the registry really served them
    seen = [(x.method, x.path, x.status) for x in reg.requests()]
    assert seen[:4] == [("GET", reg.blob_path, 200)] * 3 + [("HEAD", reg.blob_path, 200)]


def test_request_bodies_and_query_are_forwarded(reg, proxy):
    """Upload through the proxy: POST, a chunked PATCH, PUT ?digest=. Host is
    kept, so the registry's Location points back at the proxy."""
    data = os.urandom(300_000)
    c = conn(proxy)
    r, _ = get(c, "/v2/up/blobs/uploads/", {"Content-Length": "0"}, method="POST")
    assert r.status == 202
    loc = r.getheader("Location")
    assert loc.startswith(proxy.url + "/v2/up/blobs/uploads/"), loc
    pieces = [data[i:i + 70_000] for i in range(0, len(data), 70_000)]
    c.request("PATCH", loc, body=iter(pieces), encode_chunked=True,
              headers={"Content-Type": "application/octet-stream"})
    r = c.getresponse()
    r.read()
    assert r.status == 202 and r.getheader("Range") == f"0-{len(data) - 1}"
    loc = r.getheader("Location")
    r, _ = get(c, f"{loc}&digest={sha(data)}", {"Content-Length": "0"}, method="PUT")
    assert r.status == 201, r.status
    r, body = get(c, f"/v2/up/blobs/{sha(data)}")
    assert r.status == 200 and body == data
    recs = proxy.requests()
    assert [x.method for x in recs] == ["POST", "PATCH", "PUT", "GET"]
    assert recs[1].request_bytes == len(data) and recs[1].header("Transfer-Encoding") == "chunked"
    assert "_state=" in recs[2].query and recs[2].query.endswith(f"&digest={sha(data)}")


# --- cutting the body short ---------------------------------------------------------

def test_drop_after_resets_after_exactly_n_bytes(reg, proxy):
    rule = proxy.add(Fault.drop_after(bytes=1_000_000), path=r"/blobs/sha256:", times=1)
    c = conn(proxy)
    c.request("GET", reg.blob_path)
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == str(SIZE)
    time.sleep(0.3)  # a slow reader still gets every byte sent before the RST
    got, err = read_until_error(r)
    assert len(got) == 1_000_000 and got == reg.blob[:1_000_000]
    assert isinstance(err, ConnectionResetError), err
    assert rule.spent and rule.hits == 1
    # spent: the next request is untouched
    r, body = get(conn(proxy), reg.blob_path)
    assert body == reg.blob
    first, second = proxy.requests()
    assert (first.fault, first.bytes_sent, first.error) == (
        "drop_after(1000000)", 1_000_000, "reset after 1000000 bytes")
    assert second.fault is None and second.bytes_sent == SIZE and second.conn != first.conn


def test_truncate_sends_full_length_header_then_eof(reg, proxy):
    proxy.add(Fault.truncate(bytes=123_456), path=r"/blobs/")
    c = conn(proxy)
    c.request("GET", reg.blob_path)
    r = c.getresponse()
    assert r.getheader("Content-Length") == str(SIZE)
    with pytest.raises(http.client.IncompleteRead) as ei:
        r.read()
    assert len(ei.value.partial) == 123_456 and ei.value.expected == SIZE - 123_456
    rec, = proxy.requests()
    assert rec.bytes_sent == 123_456 and rec.content_length == SIZE and not rec.complete


@pytest.mark.skipif(not os.access(CURL, os.X_OK), reason="curl not installed")
def test_curl_sees_reset_versus_partial_file(reg, proxy):
    proxy.add(Fault.drop_after(bytes=50_000), path=r"/blobs/")
    proxy.add(Fault.truncate(bytes=50_000), path=r"/blobs/")
    codes = []
    for _ in range(2):
        p = subprocess.run([CURL, "-s", "-o", "/dev/null", "-w", "%{size_download}",
                            proxy.url + reg.blob_path], capture_output=True, text=True, timeout=20)
        codes.append((p.returncode, p.stdout))
    assert codes == [(56, "50000"), (18, "50000")]  # 56: recv failure (reset); 18: partial file


def test_flip_byte_changes_the_digest(reg, proxy):
    proxy.add(Fault.flip_byte(2_000_000), path=r"/blobs/")
    r, body = get(conn(proxy), reg.blob_path)
    assert r.status == 200 and len(body) == SIZE and sha(body) != reg.digest
    diff = [i for i, (a, b) in enumerate(zip(body, reg.blob)) if a != b]
    assert diff == [2_000_000] and body[2_000_000] == reg.blob[2_000_000] ^ 0xFF
    # offsets count bytes of this response's body (of a 206: of the part)
    proxy.add(Fault.flip_byte(0, xor=0x01), path=r"/blobs/")
    r, body = get(conn(proxy), reg.blob_path, {"Range": "bytes=1000-"})
    assert r.status == 206 and body[0] == reg.blob[1000] ^ 0x01 and body[1:] == reg.blob[1001:]


# --- canned answers --------------------------------------------------------------------

def test_status_503_with_retry_after_never_reaches_the_registry(reg, proxy):
    reg.clear_requests()
    rule = proxy.add(Fault.status(503, retry_after=7), path=r"/blobs/", times=2)
    c = conn(proxy)
    for _ in range(2):
        r, body = get(c, reg.blob_path)
        assert r.status == 503 and r.getheader("Retry-After") == "7"
        assert r.getheader("Content-Type").startswith("application/json")
        assert json.loads(body) == {"errors": [{"code": "UNAVAILABLE",
                                                "message": "service unavailable", "detail": None}]}
    r, body = get(c, reg.blob_path)  # same connection: still usable; rule spent
    assert r.status == 200 and body == reg.blob and rule.spent
    recs = proxy.requests()
    assert [(x.status, x.upstream_status) for x in recs] == [(503, None), (503, None), (200, 200)]
    assert len({x.conn for x in recs}) == 1
    assert [x.status for x in reg.requests()] == [200]  # only the third got there


def test_other_statuses_head_and_custom_body(reg, proxy):
    proxy.add(Fault.status(429, retry_after="Wed, 21 Oct 2037 07:28:00 GMT"), method="HEAD")
    proxy.add(Fault.status(500), path=r"/manifests/")
    proxy.add(Fault.status(502, body=b"<html>bad gateway</html>",
                           headers={"Content-Type": "text/html"}))
    c = conn(proxy)
    r, body = get(c, reg.blob_path, method="HEAD")
    assert (r.status, body, r.getheader("Retry-After")) == (
        429, b"", "Wed, 21 Oct 2037 07:28:00 GMT")
    r, body = get(c, "/v2/faults/manifests/latest")
    assert r.status == 500 and json.loads(body)["errors"][0]["code"] == "UNKNOWN"
    assert r.getheader("Retry-After") is None
    r, body = get(c, "/v2/")
    assert r.status == 502 and body == b"<html>bad gateway</html>"
    assert r.getheader("Content-Type") == "text/html"


# --- stalls ------------------------------------------------------------------------------

def test_stall_then_close(reg, proxy):
    proxy.add(Fault.stall(after=100_000, seconds=0.8, then="close"), path=r"/blobs/")
    c = conn(proxy, timeout=0.3)
    c.request("GET", reg.blob_path)
    r = c.getresponse()
    t0 = time.monotonic()
    got, err = read_until_error(r)
    assert len(got) == 100_000 and isinstance(err, TimeoutError)  # silence, not EOF
    assert time.monotonic() - t0 < 0.8
    c.sock.settimeout(5)
    rest = c.sock.recv(10)  # after the stall: closed (EOF), nothing more sent
    assert rest == b"" and time.monotonic() - t0 >= 0.7
    rec, = proxy.requests()
    assert rec.bytes_sent == 100_000 and "stall" in rec.error


def test_stall_then_continue(reg, proxy):
    proxy.add(Fault.stall(after=0, seconds=0.5, then="continue"), path=r"/blobs/")
    c = conn(proxy)
    t0 = time.monotonic()
    c.request("GET", reg.blob_path)
    r = c.getresponse()
    t_headers = time.monotonic() - t0
    body = r.read()
    assert t_headers < 0.4 and time.monotonic() - t0 >= 0.5
    assert body == reg.blob
    rec, = proxy.requests()
    assert rec.complete and rec.bytes_sent == SIZE


def test_delay_before_answering(reg, proxy):
    proxy.add(Fault.delay(0.4), path=r"^/v2/$")
    c = conn(proxy)
    t0 = time.monotonic()
    r, _ = get(c, "/v2/")
    assert r.status == 200 and time.monotonic() - t0 >= 0.4


# --- Range ---------------------------------------------------------------------------------

def test_registry_honours_range_through_the_proxy(reg, proxy):
    c = conn(proxy)
    n = 1_234_567
    r, body = get(c, reg.blob_path, {"Range": f"bytes={n}-"})
    assert r.status == 206 and body == reg.blob[n:]
    assert r.getheader("Content-Range") == f"bytes {n}-{SIZE - 1}/{SIZE}"
    assert r.getheader("Content-Length") == str(SIZE - n)
    r, body = get(c, reg.blob_path, {"Range": "bytes=10-19"})
    assert (r.status, body) == (206, reg.blob[10:20])
    r, body = get(c, reg.blob_path, {"Range": "bytes=-5"})
    assert (r.status, body) == (206, reg.blob[-5:])
    # past the end is clamped
    r, body = get(c, reg.blob_path, {"Range": f"bytes={SIZE - 3}-{SIZE * 2}"})
    assert (r.status, body) == (206, reg.blob[-3:])
    # If-Range: the ETag is the quoted digest; anything else -> 200 and the whole blob
    assert r.getheader("Etag") == f'"{reg.digest}"'
    r, body = get(c, reg.blob_path, {"Range": "bytes=5-", "If-Range": f'"{reg.digest}"'})
    assert (r.status, len(body)) == (206, SIZE - 5)
    r, body = get(c, reg.blob_path, {"Range": "bytes=5-", "If-Range": '"sha256:00"'})
    assert (r.status, len(body)) == (200, SIZE)
    # several ranges: multipart/byteranges
    r, body = get(c, reg.blob_path, {"Range": "bytes=0-0,10-19"})
    assert r.status == 206 and r.getheader("Content-Type").startswith("multipart/byteranges")
    # HEAD with Range answers 206 too
    r, body = get(c, reg.blob_path, {"Range": "bytes=100-"}, method="HEAD")
    assert (r.status, r.getheader("Content-Length"), body) == (206, str(SIZE - 100), b"")
    recs = proxy.requests()
    assert recs[0].range == f"bytes={n}-" and recs[0].bytes_sent == SIZE - n
    assert len({x.conn for x in recs}) == 1


def test_registry_416_announces_the_whole_blob_length(reg, proxy):
    """Surprise: distribution 2.8 (Go 1.19 http.ServeContent after the
    registry preset Content-Length) answers an unsatisfiable or malformed
    Range with 416 but keeps Content-Length = blob size, sends a short
    text body ("invalid range: failed to overlap\\n") and closes the
    connection. The proxy passes that on faithfully."""
    c = conn(proxy)
    c.request("GET", reg.blob_path, headers={"Range": f"bytes={SIZE}-"})
    r = c.getresponse()
    assert r.status == 416
    assert r.getheader("Content-Range") == f"bytes */{SIZE}"
    assert r.getheader("Content-Length") == str(SIZE)
    with pytest.raises(http.client.IncompleteRead) as ei:
        r.read()
    assert ei.value.partial == b"invalid range: failed to overlap\n"
    rec, = proxy.requests()
    assert (rec.status, rec.upstream_status, rec.error) == (416, 416, "upstream body ended early")


def test_ignore_range_returns_200_and_everything(reg, proxy):
    reg.clear_requests()
    proxy.add(Fault.ignore_range(), path=r"/blobs/", headers={"Range": r"^bytes="})
    c = conn(proxy)
    r, body = get(c, reg.blob_path, {"Range": "bytes=1000-"})
    assert r.status == 200 and body == reg.blob and r.getheader("Content-Range") is None
    r, body = get(c, reg.blob_path, {"Range": "bytes=1000-"})  # spent: honoured again
    assert r.status == 206 and body == reg.blob[1000:]
    first, second = proxy.requests()
    assert first.range == "bytes=1000-" and first.fault == "ignore_range"  # what the client sent
    assert first.bytes_sent == SIZE and second.bytes_sent == SIZE - 1000


def test_combined_faults_and_a_resume_story(reg, proxy):
    """What a resuming client run looks like in the records: drop, then a
    Range request that the server ignores and cuts again, then success."""
    proxy.add(Fault.drop_after(bytes=500_000), path=r"/blobs/", headers={"Range": None})
    proxy.add(Fault.ignore_range() + Fault.truncate(bytes=700_000), path=r"/blobs/",
              headers={"Range": r"."})
    c = conn(proxy)
    c.request("GET", reg.blob_path)
    got, err = read_until_error(c.getresponse())
    assert len(got) == 500_000 and isinstance(err, ConnectionResetError)
    c = conn(proxy)
    c.request("GET", reg.blob_path, headers={"Range": "bytes=500000-"})
    r = c.getresponse()
    assert r.status == 200  # the Range was ignored ...
    got2, err = read_until_error(r)
    assert got2 == reg.blob[:700_000] and err is not None  # ... and cut at 700 000
    c = conn(proxy)
    r, body = get(c, reg.blob_path, {"Range": "bytes=500000-"})
    assert r.status == 206 and body == reg.blob[500_000:]
    recs = proxy.requests(method="GET", path=r"/blobs/")
    assert [x.range for x in recs] == [None, "bytes=500000-", "bytes=500000-"]
    assert [x.fault for x in recs] == ["drop_after(500000)",
                                       "ignore_range + truncate(700000)", None]
    assert [x.status for x in recs] == [200, 200, 206]
    assert proxy.bytes_sent(path=r"/blobs/") == 500_000 + 700_000 + SIZE - 500_000
    assert proxy.unspent() == []


def test_rule_order_methods_and_forever(reg, proxy):
    forever = proxy.add(Fault.status(500), path=r"/tags/", times=None)
    first = proxy.add(Fault.status(502), path=r"/blobs/", times=1)
    second = proxy.add(Fault.status(503), path=r"/blobs/", times=1)
    head = proxy.add(Fault.flip_byte(0), path=r"/blobs/", times=1)  # GET only by default
    c = conn(proxy)
    statuses = [get(c, reg.blob_path, method="HEAD")[0].status,
                get(c, reg.blob_path, method="HEAD")[0].status,
                get(c, reg.blob_path, method="HEAD")[0].status]
    assert statuses == [502, 503, 200]
    assert first.spent and second.spent and head.hits == 0
    assert proxy.unspent() == [forever, head]
    for _ in range(3):
        assert get(c, "/v2/faults/tags/list")[0].status == 500
    assert forever.hits == 3 and forever.remaining is None
    r, body = get(c, reg.blob_path)
    assert body[0] == reg.blob[0] ^ 0xFF and head.spent


# --- redirects to another origin ---------------------------------------------------------------

def test_redirect_to_a_target_fetching_from_upstream(reg, proxy):
    with RedirectTarget(reg.url) as cdn:
        proxy.add(Fault.redirect(cdn), path=r"/blobs/sha256:", times=None)
        c = conn(proxy)
        r, _ = get(c, reg.blob_path + "?ns=x", {"Authorization": "Bearer secret"})
        assert r.status == 307
        loc = r.getheader("Location")
        assert loc == f"{cdn.url}/cdn{reg.blob_path}?ns=x" and cdn.port != proxy.port
        r, _ = get(c, reg.blob_path, method="HEAD")  # HEAD is answered, not redirected
        assert r.status == 200
        # follow without credentials (what a client must do across origins) ...
        t = http.client.HTTPConnection("127.0.0.1", cdn.port, timeout=10)
        r, body = get(t, loc[len(cdn.url):])
        assert r.status == 200 and body == reg.blob
        # ... and, wrongly, with them; with a Range
        r, body = get(t, loc[len(cdn.url):], {"Authorization": "Bearer secret",
                                               "Range": "bytes=3000000-"})
        assert r.status == 206 and body == reg.blob[3_000_000:]
        seen = cdn.requests()
        assert [(x.method, x.has_auth, x.range, x.status) for x in seen] == [
            ("GET", False, None, 200), ("GET", True, "bytes=3000000-", 206)]
        assert seen[1].authorization == "Bearer secret"
        recs = proxy.requests()
        assert [(x.status, x.location) for x in recs] == [(307, loc), (200, None)]
        assert recs[0].has_auth and recs[0].upstream_status == 200
        # faults work on the target too
        cdn.add(Fault.truncate(bytes=10))
        t = http.client.HTTPConnection("127.0.0.1", cdn.port, timeout=10)
        t.request("GET", loc[len(cdn.url):])
        with pytest.raises(http.client.IncompleteRead):
            t.getresponse().read()
        assert cdn.errors == []


def test_redirect_behind_auth_to_a_storage_target(basic_reg):
    """check_upstream: an unauthenticated GET gets the registry's 401, an
    authenticated one the 307; the target serves the registry's storage dir."""
    with FaultProxy(basic_reg.url) as p, RedirectTarget(storage_dir=basic_reg.storage_dir) as cdn:
        p.add(Fault.redirect(cdn), path=r"/blobs/", times=None)
        c = conn(p)
        r, body = get(c, basic_reg.blob_path)
        assert r.status == 401 and "WWW-Authenticate" in r.headers
        r, _ = get(c, basic_reg.blob_path, {"Authorization": BASIC})
        assert r.status == 307
        path = r.getheader("Location")[len(cdn.url):]
        t = http.client.HTTPConnection("127.0.0.1", cdn.port, timeout=10)
        r, body = get(t, path)
        assert (r.status, r.getheader("Docker-Content-Digest")) == (200, basic_reg.digest)
        assert body == basic_reg.blob
        r, body = get(t, path, {"Range": "bytes=17-", "Authorization": BASIC})
        assert r.status == 206 and body == basic_reg.blob[17:]
        assert r.getheader("Content-Range") == f"bytes 17-{SIZE - 1}/{SIZE}"
        r, body = get(t, path, {"Range": f"bytes={SIZE}-"})
        assert r.status == 416
        r, body = get(t, path.replace(basic_reg.digest[7:17], "0" * 10))
        assert r.status == 404
        assert [x.has_auth for x in cdn.requests()] == [False, True, False, False]
        assert [(x.status, x.upstream_status) for x in p.requests()] == [(401, 401), (307, 200)]
        assert p.errors == [] and cdn.errors == []


def test_blind_redirect_and_stop_ends_stalls(reg):
    """check_upstream=False redirects without asking upstream; stopping the
    proxy ends a stall at once instead of waiting it out."""
    p = FaultProxy(reg.url).start()
    p.add(Fault.redirect("http://127.0.0.1:9", check_upstream=False), path=r"/blobs/")
    p.add(Fault.stall(after=10, seconds=60), path=r"/blobs/")
    c = conn(p)
    r, _ = get(c, reg.blob_path)
    assert r.status == 307 and r.getheader("Location") == "http://127.0.0.1:9" + reg.blob_path
    c.request("GET", reg.blob_path)
    r = c.getresponse()
    assert r.read(10) == reg.blob[:10]
    t0 = time.monotonic()
    p.stop()
    assert time.monotonic() - t0 < 3
    assert [x.upstream_status for x in p.requests(settle=0)] == [None, 200]


def test_parallel_clients_share_rules_exactly(reg, proxy):
    """Rules are consumed atomically: 6 parallel GETs, a times=2 rule hits
    exactly two of them."""
    import concurrent.futures
    rule = proxy.add(Fault.status(503, retry_after=1), path=r"/blobs/", times=2)

    def one(_):
        r, body = get(conn(proxy), reg.blob_path)
        return r.status, (body == reg.blob) if r.status == 200 else None

    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        results = sorted(ex.map(one, range(6)))
    assert results == [(200, True)] * 4 + [(503, None)] * 2
    assert rule.spent and len({x.conn for x in proxy.requests()}) == 6
