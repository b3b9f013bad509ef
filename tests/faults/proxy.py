"""A fault-injecting HTTP reverse proxy for imgpull tests.

    from faults.proxy import Fault, FaultProxy, RedirectTarget

    with FaultProxy(reg.url) as proxy:
        proxy.add(Fault.drop_after(bytes=1_000_000), path=r"/blobs/sha256:", times=1)
        ... run imgpull against proxy.host ...
        gets = proxy.requests(method="GET", path=r"/blobs/")
        assert gets[1].range == "bytes=1000000-"
        assert sum(r.bytes_sent for r in gets) < 1.1 * size

The proxy listens on 127.0.0.1 (plain HTTP/1.1, keep-alive) and forwards
every request -- method, path, query, all end-to-end headers including Host
and Authorization, the body (streamed) -- to the upstream with http.client,
one upstream connection per client connection, and streams the response
back in 256 KiB pieces (memory stays flat for 1 GiB blobs). Status, headers
(Content-Length included) and body are passed through unchanged unless a
fault says otherwise. Host is kept as the client sent it, so the registry
builds upload Locations that point back at the proxy.

Rules (``add``) are tried in the order they were added; the first one that
matches the request's method, path (``re.search`` on the path without the
query) and optional header conditions, and is not spent, applies and uses up
one of its ``times``. One rule applies per request; combine faults with
``+`` (``Fault.ignore_range() + Fault.drop_after(bytes=10)``).

Body offsets in faults count bytes of the response body as sent on this
response (for a 206 they are offsets into the partial body, not the blob).
A body fault whose offset lies beyond the body has no effect (the rule is
still spent).

Faults that cut a response short leave the Content-Length header alone, so
the client sees fewer bytes than announced:
  drop_after  -- RST (SO_LINGER 0) after N bytes, once those bytes have been
                 acknowledged by the client's kernel: the client reads exactly
                 N bytes and then gets ECONNRESET (curl: exit 56).
  truncate    -- orderly close (FIN) after N bytes: N bytes, then EOF
                 (http.client: IncompleteRead; curl: exit 18).

Every request is recorded (``requests()``): see ``Record``; every client
connection too (``connections()``, ``peak_connections()``): see ``Connection``.
"""

from __future__ import annotations

import dataclasses
import fcntl
import http.client
import http.server
import io
import json
import os
import re
import select
import socket
import ssl
import struct
import termios
import threading
import time
import urllib.parse

__all__ = ["Connection", "Fault", "FaultProxy", "RedirectTarget", "Record", "Rule"]

CHUNK = 256 * 1024

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate",
    "proxy-authorization", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
})

# Registry error codes (distribution's errcode names) for canned statuses.
_ERROR_CODES = {
    400: "UNSUPPORTED", 401: "UNAUTHORIZED", 403: "DENIED", 404: "NAME_UNKNOWN",
    429: "TOOMANYREQUESTS", 500: "UNKNOWN", 502: "UNKNOWN", 503: "UNAVAILABLE",
    504: "UNKNOWN",
}


# --------------------------------------------------------------------------
# faults

@dataclasses.dataclass(frozen=True)
class Fault:
    """What to do to one response. Build with the constructors below; combine
    with ``+`` (fields set on the right win; flips accumulate)."""
    name: str
    drop_at: int | None = None          # RST after this many body bytes
    truncate_at: int | None = None      # FIN after this many body bytes
    flips: tuple = ()                   # ((offset, xor mask), ...)
    status_code: int | None = None      # canned answer, upstream not contacted
    retry_after: str | None = None
    error_code: str | None = None
    message: str | None = None
    body: bytes | None = None
    extra_headers: tuple = ()           # ((name, value), ...) for canned/redirect answers
    stall_at: int | None = None         # pause after this many body bytes ...
    stall_seconds: float = 0.0          # ... for this long ...
    stall_then: str = "close"           # ... then "close" (FIN) or "continue"
    drop_range: bool = False            # forward without Range/If-Range
    redirect_to: object = None          # RedirectTarget or base URL string
    redirect_status: int = 307
    check_upstream: bool = True         # redirect only what upstream would serve
    delay_seconds: float = 0.0          # wait before doing anything else
    rate: float | None = None           # body bytes per second, at most
    default_methods: tuple | None = None  # methods matched when add() gets none

    # --- constructors ---------------------------------------------------
    @staticmethod
    def drop_after(bytes: int, reset: bool = True) -> "Fault":  # noqa: A002 (name from the brief)
        """Send N body bytes, then close the connection abruptly: an RST
        (reset=True, after the N bytes were acknowledged) or a FIN
        (reset=False, the same as truncate)."""
        if reset:
            return Fault(f"drop_after({bytes})", drop_at=int(bytes), default_methods=("GET",))
        return Fault(f"drop_after({bytes}, reset=False)", truncate_at=int(bytes),
                     default_methods=("GET",))

    @staticmethod
    def truncate(bytes: int) -> "Fault":  # noqa: A002
        """Keep the upstream Content-Length (the full body) but send only N
        body bytes, then close the connection cleanly (FIN)."""
        return Fault(f"truncate({bytes})", truncate_at=int(bytes), default_methods=("GET",))

    @staticmethod
    def flip_byte(offset: int, xor: int = 0xFF) -> "Fault":
        """XOR the body byte at `offset` with `xor` (length unchanged)."""
        if not 0 < xor < 256:
            raise ValueError("xor must be 1..255")
        return Fault(f"flip_byte({offset})", flips=((int(offset), xor),), default_methods=("GET",))

    @staticmethod
    def status(code: int, retry_after: int | float | str | None = None, *,
               error_code: str | None = None, message: str | None = None,
               body: bytes | None = None, headers: dict | None = None) -> "Fault":
        """Answer `code` without contacting upstream: a registry-style JSON
        error body ({"errors": [{"code", "message", "detail"}]}) unless `body`
        is given, an optional Retry-After (seconds or an HTTP date, as
        given) and extra headers. Applies to any method by default."""
        return Fault(f"status({code})", status_code=int(code),
                     retry_after=None if retry_after is None else str(retry_after),
                     error_code=error_code, message=message, body=body,
                     extra_headers=tuple((headers or {}).items()))

    @staticmethod
    def stall(after: int = 0, seconds: float = 5.0, then: str = "close") -> "Fault":
        """Send the headers and the first `after` body bytes, then nothing for
        `seconds`; then close the connection (FIN) or continue normally."""
        if then not in ("close", "continue"):
            raise ValueError('then must be "close" or "continue"')
        return Fault(f"stall({after}, {seconds}, {then})", stall_at=int(after),
                     stall_seconds=float(seconds), stall_then=then, default_methods=("GET",))

    @staticmethod
    def ignore_range() -> "Fault":
        """Forward without Range and If-Range: upstream answers 200 with the
        whole body, as servers without Range support do."""
        return Fault("ignore_range", drop_range=True, default_methods=("GET",))

    @staticmethod
    def redirect(target, status: int = 307, check_upstream: bool = True) -> "Fault":
        """Answer `status` (307) with Location: target.location_for(path) (a
        RedirectTarget, another origin) or target + path + query (a base URL
        string). check_upstream=True: the request is forwarded first and only
        a 200/206 answer is replaced by the redirect (401/404 pass through, as
        a registry checks auth before redirecting); False: redirect blindly."""
        return Fault(f"redirect({status})", redirect_to=target, redirect_status=int(status),
                     check_upstream=check_upstream, default_methods=("GET",))

    @staticmethod
    def throttle(bytes_per_second: float) -> "Fault":
        """Send the body no faster than `bytes_per_second` (a slow link, so a
        test can interrupt a client mid-transfer)."""
        if bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be > 0")
        return Fault(f"throttle({bytes_per_second})", rate=float(bytes_per_second),
                     default_methods=("GET",))

    @staticmethod
    def delay(seconds: float) -> "Fault":
        """Wait `seconds` before forwarding (time to first byte)."""
        return Fault(f"delay({seconds})", delay_seconds=float(seconds))

    def __add__(self, other: "Fault") -> "Fault":
        if not isinstance(other, Fault):
            return NotImplemented
        base = {f.name: getattr(self, f.name) for f in dataclasses.fields(Fault)}
        defaults = Fault("")
        for f in dataclasses.fields(Fault):
            v = getattr(other, f.name)
            if v != getattr(defaults, f.name):
                base[f.name] = v
        base["name"] = f"{self.name} + {other.name}"
        base["flips"] = self.flips + other.flips
        base["extra_headers"] = self.extra_headers + other.extra_headers
        base["default_methods"] = ("GET",) if "GET" in ((self.default_methods or ()) + (
            other.default_methods or ())) else None
        return Fault(**base)

    @property
    def touches_body(self) -> bool:
        return bool(self.drop_at is not None or self.truncate_at is not None or self.flips
                    or self.stall_at is not None or self.rate is not None)


@dataclasses.dataclass
class Rule:
    """A fault bound to a request pattern; `times` None = forever."""
    fault: Fault
    path: re.Pattern
    methods: tuple | None
    times: int | None
    headers: dict
    hits: int = 0

    @property
    def remaining(self):
        return None if self.times is None else self.times - self.hits

    @property
    def spent(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def matches(self, method: str, path: str, headers) -> bool:
        if self.spent:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        if not self.path.search(path):
            return False
        for name, pattern in self.headers.items():
            value = headers.get(name)
            if pattern is None:
                if value is not None:
                    return False
            elif value is None or not re.search(pattern, value):
                return False
        return True

    def __repr__(self):
        return (f"Rule({self.fault.name}, path={self.path.pattern!r}, methods={self.methods}, "
                f"hits={self.hits}/{self.times})")


# --------------------------------------------------------------------------
# records

@dataclasses.dataclass
class Record:
    """One request the proxy saw and what it answered.

    seq (0, 1, ...), conn (client connection number: equal for requests on
    one keep-alive connection), method, path (no query), query, headers (the
    client's request headers, [(name, value)]), status (sent to the client;
    None if nothing was sent), response_headers (sent to the client,
    [(name, value)]), upstream_status (None = upstream not
    contacted), content_length (announced to the client, None if chunked or
    absent), bytes_sent (response body bytes written to the client),
    request_bytes (request body bytes read from the client), fault (its
    name or None), rule, location (of a redirect), error (why the exchange
    ended abnormally: "reset after N bytes", "client went away: ...",
    "upstream body ended early" ...), done, started/finished (monotonic)."""
    seq: int
    conn: int
    method: str
    path: str
    query: str
    headers: list
    status: int | None = None
    response_headers: list = dataclasses.field(default_factory=list)
    upstream_status: int | None = None
    content_length: int | None = None
    bytes_sent: int = 0
    request_bytes: int = 0
    fault: str | None = None
    rule: Rule | None = None
    location: str | None = None
    error: str | None = None
    done: bool = False
    started: float = 0.0
    finished: float | None = None

    def header(self, name: str):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    @property
    def range(self):
        """The request's Range header (as the client sent it) or None."""
        return self.header("Range")

    @property
    def content_range(self):
        """The response's Content-Range header (as sent to the client) or None."""
        return next((v for k, v in self.response_headers if k.lower() == "content-range"), None)

    @property
    def authorization(self):
        return self.header("Authorization")

    @property
    def has_auth(self) -> bool:
        return self.authorization is not None

    @property
    def complete(self) -> bool:
        """The whole announced body went out (or there was no body to send)."""
        return self.done and self.error is None

    def __repr__(self):
        extra = f" range={self.range!r}" if self.range else ""
        extra += f" content_range={self.content_range!r}" if self.content_range else ""
        extra += " auth" if self.has_auth else ""
        extra += f" fault={self.fault!r}" if self.fault else ""
        extra += f" error={self.error!r}" if self.error else ""
        return (f"<#{self.seq} c{self.conn} {self.method} {self.path} -> {self.status} "
                f"{self.bytes_sent}/{self.content_length} B{extra}>")


@dataclasses.dataclass
class Connection:
    """One client connection: id (the conn of its Records), opened and closed
    (monotonic; closed is None while it is open)."""
    id: int
    opened: float
    closed: float | None = None


def peak_overlap(intervals) -> int:
    """The most of the (start, end) intervals that overlap at one instant (end
    None = still going); one ending as another starts does not overlap it."""
    events = sorted([(s, 1) for s, _ in intervals] +
                    [(e, -1) for _, e in intervals if e is not None])
    peak = live = 0
    for _, step in events:
        live += step
        peak = max(peak, live)
    return peak


class _ClientGone(Exception):
    pass


# --------------------------------------------------------------------------
# response sources (upstream over http.client, or a local file)

class _UpstreamSource:
    def __init__(self, handler, resp, conn, method):
        self.handler = handler
        self.resp = resp
        self.conn = conn
        self.status = resp.status
        self.reason = resp.reason
        self.headers = resp.getheaders()
        self.has_body = not (method == "HEAD" or resp.status in (204, 304) or resp.status < 200)
        self.chunked = bool(resp.chunked) and self.has_body
        self.length = resp.length if self.has_body and not self.chunked else None
        self.ok = False

    def read1(self, n):
        try:
            return self.resp.read1(n)
        except (http.client.IncompleteRead, OSError):
            return b""  # upstream ended early / timed out: the caller notices the short body

    def close(self, reusable: bool):
        """reusable: the body was passed on completely; keep the upstream
        connection for the client's next request if upstream allows."""
        if reusable and not self.resp.will_close:
            try:
                if not self.has_body or self.resp.length == 0:
                    self.resp.read()  # marks the response finished
            except (http.client.HTTPException, OSError):
                pass
            if self.resp.isclosed():
                return
        self.resp.close()
        self.handler.drop_upstream()


class _FileSource:
    def __init__(self, status, headers, f=None, offset=0, length=0, body=b""):
        self.status = status
        self.reason = http.client.responses.get(status, "")
        self.headers = headers
        self.f = f
        self.body = body
        self.left = length if f is not None else len(body)
        self.length = self.left
        self.chunked = False
        self.has_body = True
        if f is not None:
            f.seek(offset)

    def read1(self, n):
        n = min(n, self.left)
        if n <= 0:
            return b""
        if self.f is not None:
            data = self.f.read(n)
        else:
            data, self.body = self.body[:n], self.body[n:]
        self.left -= len(data)
        return data

    def close(self, reusable: bool):
        if self.f is not None:
            self.f.close()


# --------------------------------------------------------------------------
# the server

class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Clients open dozens of connections at once (a floor of 8 ranges per blob);
    # the default backlog of 5 would drop SYNs and cost them a 1 s retransmit.
    request_queue_size = 128

    def handle_error(self, request, client_address):
        import sys
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, TimeoutError)):
            return
        self.proxy.errors.append(repr(exc))
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"
    # Headers and body go out in separate writes: with Nagle the body would
    # wait for the client's delayed ACK (40 ms on Linux) on a kept-alive connection.
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections

    # --- connection lifecycle -------------------------------------------
    def setup(self):
        super().setup()
        self.proxy = self.server.proxy
        self.conn_id = self.proxy._register_conn(self.connection).id
        self.upstream = None
        self.reset_done = False

    def finish(self):
        try:
            super().finish()
        finally:
            self.drop_upstream()
            self.proxy._unregister_conn(self.connection)

    def log_message(self, *args):
        pass

    def drop_upstream(self):
        if self.upstream is not None:
            try:
                self.upstream.close()
            except OSError:
                pass
            self.upstream = None

    # --- one request -------------------------------------------------------
    def _handle(self):
        proxy = self.proxy
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, url.query
        rec = proxy._new_record(self.conn_id, self.command, path, query, list(self.headers.items()))
        self.rec = rec
        self.headers_sent = False
        try:
            rule = proxy._match(self.command, path, self.headers)
            fault = rule.fault if rule else None
            rec.rule, rec.fault = rule, (fault.name if fault else None)
            self._serve(fault, path, query)
        except _ClientGone as e:
            rec.error = rec.error or f"client went away: {e}"
            self.close_connection = True
            self.drop_upstream()
        except Exception as e:  # noqa: BLE001 - record and answer 502 if still possible
            rec.error = rec.error or f"proxy error: {e!r}"
            self.drop_upstream()
            self.close_connection = True
            if not self.headers_sent:
                try:
                    self._canned(502, {"errors": [{"code": "UNKNOWN",
                                                    "message": f"fault proxy: {e}", "detail": None}]})
                except (OSError, _ClientGone):
                    pass
            self.close_connection = True
        finally:
            rec.done = True
            rec.finished = time.monotonic()
            proxy._done(rec)

    def _serve(self, fault, path, query):
        proxy = self.proxy
        if fault is not None and fault.delay_seconds:
            proxy._sleep(fault.delay_seconds)
        if fault is not None and fault.status_code is not None:
            self._drain_body()
            code = fault.error_code or _ERROR_CODES.get(fault.status_code, "UNKNOWN")
            msg = fault.message or http.client.responses.get(fault.status_code, "error").lower()
            body = fault.body if fault.body is not None else json.dumps(
                {"errors": [{"code": code, "message": msg, "detail": None}]}).encode()
            hdrs = list(fault.extra_headers)
            if fault.retry_after is not None:
                hdrs.insert(0, ("Retry-After", fault.retry_after))
            self._canned(fault.status_code, body, hdrs, raw=True)
            return
        if fault is not None and fault.redirect_to is not None and not fault.check_upstream:
            self._drain_body()
            self._send_redirect(fault)
            return
        src = proxy._open_source(self, fault, path, query)
        self.rec.upstream_status = src.status if isinstance(src, _UpstreamSource) else None
        if fault is not None and fault.redirect_to is not None and src.status in (200, 206):
            src.close(reusable=False)
            self._send_redirect(fault)
            return
        self._relay(src, fault)

    # --- request side --------------------------------------------------------
    def request_body_chunks(self):
        """Yield the raw request body bytes to forward: exactly Content-Length
        bytes, or the raw chunked framing (re-sent as is)."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise _ClientGone("EOF in chunked request body")
                yield line
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers up to the empty line
                        t = self.rfile.readline(65537)
                        yield t
                        if t in (b"\r\n", b"\n", b""):
                            return
                left = size
                while left:
                    b = self.rfile.read(min(CHUNK, left))
                    if not b:
                        raise _ClientGone("EOF in chunked request body")
                    self.rec.request_bytes += len(b)
                    left -= len(b)
                    yield b
                crlf = self.rfile.readline(3)
                if not crlf:
                    raise _ClientGone("EOF in chunked request body")
                yield crlf
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            b = self.rfile.read(min(CHUNK, length))
            if not b:
                raise _ClientGone("EOF in request body")
            length -= len(b)
            self.rec.request_bytes += len(b)
            yield b

    def has_request_body(self) -> bool:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        return "chunked" in te or int(self.headers.get("Content-Length") or 0) > 0

    def _drain_body(self):
        for _ in self.request_body_chunks():
            pass

    # --- response side -------------------------------------------------------
    def _write(self, data):
        try:
            self.wfile.write(data)
        except OSError as e:
            raise _ClientGone(e) from e

    def _start_response(self, status, reason, headers):
        self.send_response_only(status, reason)
        for k, v in headers:
            self.send_header(k, v)
        if self.close_connection and not any(k.lower() == "connection" for k, _ in headers):
            self.send_header("Connection", "close")
        try:
            self.end_headers()
        except OSError as e:
            raise _ClientGone(e) from e
        self.headers_sent = True
        self.rec.status = status
        self.rec.response_headers = list(headers)

    def _canned(self, status, body, headers=(), raw=False):
        if not raw:
            body = json.dumps(body).encode()
        hdrs = [("Content-Type", "application/json; charset=utf-8"),
                ("Docker-Distribution-Api-Version", "registry/2.0")]
        given = {k.lower() for k, _ in headers}
        hdrs = [(k, v) for k, v in hdrs if k.lower() not in given] + list(headers)
        hdrs.append(("Content-Length", str(len(body))))
        self.rec.content_length = len(body)
        self._start_response(status, None, hdrs)
        if self.command != "HEAD" and status not in (204, 304):
            self._write(body)
            self.rec.bytes_sent = len(body)

    def _send_redirect(self, fault):
        target = fault.redirect_to
        if isinstance(target, str):
            loc = target.rstrip("/") + self.path
        else:
            loc = target.location_for(self.path)
        self.rec.location = loc
        body = f'<a href="{loc}">Temporary Redirect</a>.\n\n'.encode()
        hdrs = [("Location", loc), ("Content-Type", "text/html; charset=utf-8"),
                ("Docker-Distribution-Api-Version", "registry/2.0")]
        given = {k.lower() for k, _ in fault.extra_headers}
        hdrs = [(k, v) for k, v in hdrs if k.lower() not in given] + list(fault.extra_headers)
        hdrs.append(("Content-Length", str(len(body))))
        self.rec.content_length = len(body)
        self._start_response(fault.redirect_status, None, hdrs)
        if self.command != "HEAD":
            self._write(body)
            self.rec.bytes_sent = len(body)

    def _relay(self, src, fault):
        rec = self.rec
        hdrs = [(k, v) for k, v in src.headers if k.lower() not in HOP_BY_HOP]
        read_to_close = src.has_body and not src.chunked and src.length is None
        if src.chunked:
            hdrs.append(("Transfer-Encoding", "chunked"))
        if read_to_close:
            self.close_connection = True
        cl = next((v for k, v in hdrs if k.lower() == "content-length"), None)
        rec.content_length = int(cl) if cl is not None and cl.strip().isdigit() else None
        try:
            self._start_response(src.status, src.reason, hdrs)
        except _ClientGone:
            src.close(reusable=False)
            raise
        if not src.has_body:
            src.close(reusable=True)
            return
        ended = None
        try:
            ended = self._stream(src, fault)
        except _ClientGone:
            src.close(reusable=False)
            raise
        announced = src.length
        if ended is None and announced is not None and rec.bytes_sent < announced:
            rec.error = "upstream body ended early"
            ended = "fin"
        if ended is None:
            if src.chunked:
                self._write(b"0\r\n\r\n")
            src.close(reusable=True)
            return
        src.close(reusable=False)
        if ended == "rst":
            self._reset()
        self.close_connection = True

    def _stream(self, src, fault):
        """Copy the body, applying body faults. Returns None when the body was
        sent completely, "fin" or "rst" when it was cut short."""
        rec = self.rec
        drop = fault.drop_at if fault else None
        trunc = fault.truncate_at if fault else None
        flips = sorted(fault.flips) if fault else []
        stall_at = fault.stall_at if fault else None
        cuts = [(x, k) for x, k in ((drop, "rst"), (trunc, "fin")) if x is not None]
        cut, cut_kind = min(cuts) if cuts else (None, None)
        rate = fault.rate if fault else None
        started = time.monotonic()
        pos = 0
        while True:
            if rate is not None:
                ahead = pos / rate - (time.monotonic() - started)
                if ahead > 0:
                    self.proxy._sleep(ahead)
            if stall_at is not None and pos >= stall_at:
                self.proxy._sleep(fault.stall_seconds)
                stall_at = None
                if fault.stall_then == "close":
                    rec.error = f"closed after {pos} bytes and a {fault.stall_seconds}s stall"
                    return "fin"
            if cut is not None and pos >= cut:
                rec.error = (f"reset after {pos} bytes" if cut_kind == "rst"
                             else f"truncated after {pos} bytes")
                return cut_kind
            n = CHUNK if rate is None else max(1024, min(CHUNK, int(rate / 20)))
            if stall_at is not None:
                n = min(n, stall_at - pos)
            if cut is not None:
                n = min(n, cut - pos)
            data = src.read1(n)
            if not data:
                return None
            if flips:
                end = pos + len(data)
                hit = [(o, m) for o, m in flips if pos <= o < end]
                if hit:
                    data = bytearray(data)
                    for o, m in hit:
                        data[o - pos] ^= m
                    data = bytes(data)
            if src.chunked:
                self._write(b"%x\r\n" % len(data) + data + b"\r\n")
            else:
                self._write(data)
            pos += len(data)
            rec.bytes_sent = pos

    def _reset(self):
        """Abort the client connection with an RST once everything written has
        been acknowledged (so the client can read all of it first)."""
        sock = self.connection
        deadline = time.monotonic() + 5
        try:
            while time.monotonic() < deadline:
                q = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
                if q == 0:
                    break
                time.sleep(0.001)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        for f in (self.wfile, self.rfile):
            try:
                f.close()
            except OSError:
                pass
        sock.close()  # the last reference: the kernel sends the RST now
        # BaseHTTPRequestHandler flushes wfile after the handler returns.
        self.wfile, self.rfile = io.BytesIO(), io.BytesIO()
        self.close_connection = True


def _do_any(self):
    self._handle()  # looked up on the instance, so subclasses may wrap _handle


for _m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
    setattr(_Handler, f"do_{_m}", _do_any)


class FaultProxy:
    """A fault-injecting reverse proxy in front of `upstream_url`
    ("http://127.0.0.1:PORT"; https upstreams take `ssl_context`).

    Use as a context manager (or start()/stop()). Attributes: host
    ("127.0.0.1:PORT"), port, url ("http://127.0.0.1:PORT"), rules, errors
    (unexpected proxy-side exceptions; should stay empty), upstream_connections
    (upstream connections opened so far: one per client connection when
    keep-alive works).

    Subclasses change how a connection is served with ``handler_class`` (a
    subclass of the request handler)."""

    handler_class = _Handler

    def __init__(self, upstream_url: str, ssl_context: ssl.SSLContext | None = None,
                 upstream_timeout: float = 60.0, port: int = 0):
        u = urllib.parse.urlsplit(upstream_url)
        if u.scheme not in ("http", "https"):
            raise ValueError(f"upstream must be http(s)://host:port, not {upstream_url!r}")
        self.upstream_url = upstream_url.rstrip("/")
        self.upstream_scheme = u.scheme
        self.upstream_host = u.hostname
        self.upstream_port = u.port or (443 if u.scheme == "https" else 80)
        self.upstream_netloc = u.netloc
        self.ssl_context = ssl_context
        self.upstream_timeout = upstream_timeout
        self.rules: list[Rule] = []
        self.errors: list[str] = []
        self.upstream_connections = 0  # upstream connections opened (keep-alive check)
        self._records: list[Record] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._inflight = 0
        self._conns: dict = {}
        self._conn_seq = 0
        self._connections: list[Connection] = []
        self.listen_port = port
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        self.port = None

    # --- lifecycle -----------------------------------------------------------
    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self):
        self._server = _Server(("127.0.0.1", self.listen_port), self.handler_class)
        self._server.proxy = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"faultproxy:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop listening, end stalls, close every client connection."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            socks = list(self._conns)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.wait_idle(5, connections=True)
        self._thread.join(5)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- rules -----------------------------------------------------------------
    def add(self, fault: Fault, path: str = r"", method=None, times: int | None = 1,
            headers: dict | None = None) -> Rule:
        """Apply `fault` to the next `times` requests (None = all) whose path
        (no query) matches the regex `path` (re.search) and whose method is
        `method` (a string or a tuple; default: GET for body, range and
        redirect faults, any method for status and delay). `headers` maps a
        header name to a regex its value must match, or to None = must be
        absent (e.g. {"Range": None} = only requests without Range).
        Returns the Rule (hits, remaining, spent)."""
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        if method is None:
            methods = fault.default_methods
        else:
            methods = (method,) if isinstance(method, str) else tuple(method)
            methods = tuple(m.upper() for m in methods)
        rule = Rule(fault, re.compile(path), methods, times, dict(headers or {}))
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear_rules(self):
        with self._lock:
            self.rules.clear()

    def unspent(self) -> list[Rule]:
        """Rules that still have uses left (times=None rules count as unspent)."""
        with self._lock:
            return [r for r in self.rules if not r.spent]

    def _match(self, method, path, headers):
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path, headers):
                    rule.hits += 1
                    return rule
        return None

    # --- records ------------------------------------------------------------------
    def _new_record(self, conn, method, path, query, headers) -> Record:
        with self._lock:
            rec = Record(len(self._records), conn, method, path, query, headers,
                         started=time.monotonic())
            self._records.append(rec)
            self._inflight += 1
            return rec

    def _done(self, rec):
        with self._lock:
            self._inflight -= 1
            self._observe("request", rec)
            self._idle.notify_all()

    def _observe(self, event: str, what):
        """Called under the lock, before stop() can see it happened, with
        ("request", a finished Record), ("open", Connection) or ("close",
        Connection): subclasses log here."""

    def wait_idle(self, timeout: float = 5.0, connections: bool = False) -> bool:
        """Wait until no request is being handled (connections=True: and no
        client connection is open); True if that happened."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._inflight or (connections and self._conns):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def requests(self, method: str | None = None, path: str | None = None,
                 settle: float = 2.0) -> list[Record]:
        """The recorded requests, oldest first, after waiting up to `settle`
        seconds for requests in progress to finish (a record's bytes_sent is
        final once its done is True). Optional filters: method, path regex."""
        self.wait_idle(settle)
        with self._lock:
            recs = list(self._records)
        return [r for r in recs
                if (method is None or r.method == method.upper())
                and (path is None or re.search(path, r.path))]

    def seen(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests matching the filters have arrived so far, without
        waiting for any to finish."""
        with self._lock:
            return sum(1 for r in self._records
                       if (method is None or r.method == method.upper())
                       and (path is None or re.search(path, r.path)))

    def clear_requests(self):
        """Forget the recorded requests and the connections already closed."""
        self.wait_idle(2.0)
        with self._lock:
            self._records.clear()
            self._connections = [c for c in self._connections if c.closed is None]

    def connections(self) -> list[Connection]:
        """The client connections so far, oldest first."""
        with self._lock:
            return [dataclasses.replace(c) for c in self._connections]

    def peak_connections(self) -> int:
        """The most client connections that were open at one time."""
        return peak_overlap([(c.opened, c.closed) for c in self.connections()])

    def bytes_sent(self, method: str | None = "GET", path: str | None = None) -> int:
        """Total response body bytes sent for the matching requests."""
        return sum(r.bytes_sent for r in self.requests(method, path))

    # --- plumbing -------------------------------------------------------------------
    def _register_conn(self, sock) -> Connection:
        with self._lock:
            self._conn_seq += 1
            self._conns[sock] = conn = Connection(self._conn_seq, time.monotonic())
            self._connections.append(conn)
            self._observe("open", conn)
            return conn

    def _unregister_conn(self, sock):
        with self._lock:
            conn = self._conns.pop(sock, None)
            if conn is not None:
                conn.closed = time.monotonic()
                self._observe("close", conn)
            self._idle.notify_all()

    def _sleep(self, seconds):
        self._stopping.wait(seconds)

    def _new_upstream(self):
        with self._lock:
            self.upstream_connections += 1
        if self.upstream_scheme == "https":
            return http.client.HTTPSConnection(self.upstream_host, self.upstream_port,
                                               timeout=self.upstream_timeout,
                                               context=self.ssl_context, blocksize=CHUNK)
        return http.client.HTTPConnection(self.upstream_host, self.upstream_port,
                                          timeout=self.upstream_timeout, blocksize=CHUNK)

    def _upstream_request(self, handler, fault, path, query):
        """(upstream request target, [(header, value)]) for a request."""
        target = handler.path
        if target.startswith(("http://", "https://")):
            target = path + ("?" + query if query else "")
        drop = set(HOP_BY_HOP) | {"expect"}
        if fault is not None and fault.drop_range:
            drop |= {"range", "if-range"}
        return target, [(k, v) for k, v in handler.headers.items() if k.lower() not in drop]

    def _open_source(self, handler, fault, path, query):
        """Forward the request upstream; returns an _UpstreamSource."""
        target, hdrs = self._upstream_request(handler, fault, path, query)
        if not any(k.lower() == "host" for k, _ in hdrs):
            hdrs.insert(0, ("Host", self.upstream_netloc))
        chunked = "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower()
        if chunked:
            hdrs.append(("Transfer-Encoding", "chunked"))
        has_body = handler.has_request_body()
        for attempt in (0, 1):
            conn = handler.upstream
            if conn is not None and conn.sock is not None:
                # A kept-alive upstream connection the server has since closed
                # reads as ready (EOF): do not send on it.
                r, _, _ = select.select([conn.sock], [], [], 0)
                if r:
                    handler.drop_upstream()
                    conn = None
            reused = conn is not None and conn.sock is not None
            if conn is None:
                conn = handler.upstream = self._new_upstream()
            try:
                conn.putrequest(handler.command, target, skip_host=True, skip_accept_encoding=True)
                for k, v in hdrs:
                    conn.putheader(k, v)
                conn.endheaders()
                if has_body:
                    for b in handler.request_body_chunks():
                        conn.send(b)
                resp = conn.getresponse()
                return _UpstreamSource(handler, resp, conn, handler.command)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                handler.drop_upstream()
                if attempt == 0 and reused and not has_body:
                    continue
                raise
        raise AssertionError("unreachable")


class RedirectTarget(FaultProxy):
    """A second origin (its own port) that blob redirects point at, standing
    in for a CDN / object store. It serves what Location names:
    ``{url}{prefix}{original path}`` (the query is ignored) either by fetching
    the original path from `upstream_url` -- without the client's
    Authorization, with `upstream_headers` (e.g. credentials) instead, and
    with its own Host -- or, given `storage_dir` (a registry's filesystem
    storage root), by serving /v2/<repo>/blobs/sha256:<hex> from
    docker/registry/v2/blobs/sha256/<xx>/<hex>/data (single Range requests
    honoured). It records requests like FaultProxy (``requests()``,
    ``has_auth``) and takes fault rules too (``add``)."""

    def __init__(self, upstream_url: str | None = None, storage_dir: str | None = None,
                 upstream_headers: dict | None = None, prefix: str = "/cdn",
                 ssl_context: ssl.SSLContext | None = None):
        if (upstream_url is None) == (storage_dir is None):
            raise ValueError("give exactly one of upstream_url and storage_dir")
        super().__init__(upstream_url or "http://unused.invalid", ssl_context=ssl_context)
        self.storage_dir = storage_dir
        self.upstream_headers = dict(upstream_headers or {})
        self.prefix = prefix.rstrip("/")

    def location_for(self, request_target: str) -> str:
        """The Location a redirect to this origin uses for `request_target`."""
        return f"{self.url}{self.prefix}{request_target}"

    def _strip(self, path):
        if self.prefix and path.startswith(self.prefix + "/"):
            return path[len(self.prefix):]
        return path

    def _upstream_request(self, handler, fault, path, query):
        drop = set(HOP_BY_HOP) | {"expect", "host", "authorization"}
        if fault is not None and fault.drop_range:
            drop |= {"range", "if-range"}
        hdrs = [("Host", self.upstream_netloc)]
        hdrs += [(k, v) for k, v in handler.headers.items() if k.lower() not in drop]
        hdrs += list(self.upstream_headers.items())
        return self._strip(path), hdrs

    def _open_source(self, handler, fault, path, query):
        if self.storage_dir is None:
            return super()._open_source(handler, fault, path, query)
        handler._drain_body()
        return self._file_source(handler, fault, self._strip(path))

    def _file_source(self, handler, fault, path):
        m = re.fullmatch(r"/v2/.+/blobs/sha256:([0-9a-f]{64})", path)
        fn = None
        if m:
            hexd = m.group(1)
            fn = os.path.join(self.storage_dir, "docker", "registry", "v2", "blobs", "sha256",
                              hexd[:2], hexd, "data")
        if handler.command not in ("GET", "HEAD") or fn is None or not os.path.isfile(fn):
            body = json.dumps({"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown",
                                           "detail": path}]}).encode()
            return _FileSource(404, [("Content-Type", "application/json; charset=utf-8"),
                                     ("Content-Length", str(len(body)))], body=body)
        digest = "sha256:" + m.group(1)
        size = os.path.getsize(fn)
        hdrs = [("Accept-Ranges", "bytes"), ("Content-Type", "application/octet-stream"),
                ("Docker-Content-Digest", digest), ("Etag", f'"{digest}"')]
        rng = None if (fault is not None and fault.drop_range) else handler.headers.get("Range")
        if_range = handler.headers.get("If-Range")
        if rng and if_range is not None and if_range != f'"{digest}"':
            rng = None
        start, end, status = 0, size - 1, 200
        if rng:
            mm = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", rng)
            if mm and (mm.group(1) or mm.group(2)):
                a, b = mm.group(1), mm.group(2)
                if a:
                    start = int(a)
                    end = min(int(b), size - 1) if b else size - 1
                else:
                    start = max(0, size - int(b))
                if start >= size or (a and b and int(b) < int(a)):
                    body = b"invalid range\n"
                    return _FileSource(416, [("Content-Range", f"bytes */{size}"),
                                             ("Content-Type", "text/plain; charset=utf-8"),
                                             ("Content-Length", str(len(body)))], body=body)
                status = 206
                hdrs.append(("Content-Range", f"bytes {start}-{end}/{size}"))
            # multiple or malformed ranges: ignored, whole body (allowed by RFC 9110)
        length = max(0, end - start + 1)
        hdrs.append(("Content-Length", str(length)))
        if handler.command == "HEAD":
            src = _FileSource(status, hdrs, body=b"")
            src.has_body = False
            return src
        return _FileSource(status, hdrs, open(fn, "rb"), start, length)
