"""A network link on loopback: the fault proxy (faults/proxy.py) behind an
emulated path with a round-trip time, a rate cap per connection and a rate
cap for the whole link, as a cloud VM pulling from a CDN sees it.

    from link.emulator import LinkProxy

    with LinkProxy(reg.url, "50ms,20MB/s,160MB/s") as link:
        ... run a client against link.host ...
        gets = link.requests("GET", r"/blobs/")
        assert all(g.range is None or g.range.endswith(tuple("0123456789")) for g in gets)
        assert link.peak_connections() <= 8

    python3 tests/link/emulator.py --upstream 127.0.0.1:5000 --link 50ms,20MB/s,160MB/s \\
        [--listen 127.0.0.1:0] [--log requests.jsonl]

The model (what a client sees, not how TCP gets there):
  round trip  a connection can carry its first request one RTT after it was
              accepted (the handshake); a request reaches the upstream RTT/2
              after the client sent it and its response starts back RTT/2
              after the upstream answered, so an exchange costs one RTT and a
              new connection one more.
  rates       every byte sent to the client passes the connection's pacer
              (the per-connection cap, as CDNs shape each flow; it starts
              afresh with every response) and then the link's pacer (one for
              all connections; who asked first goes first). A sender that
              comes late (a busy machine) may catch up on up to
              CATCH_UP_SECONDS of its schedule. Requests from the client
              (uploads) are not paced.
Not modelled: TCP slow start, loss, queueing delay; a paused reader is not
delayed further once a response has started.

Faults, request records and connection records are the fault proxy's:
``add(Fault...)``, ``requests()``, ``connections()``, ``peak_connections()``.
With a log path every finished request and every connection opened or
closed is also written as a JSON line (see ``read_log``), so a process that
did not start the emulator (the benchmark) can see what went over the wire.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import signal
import sys
import threading
import time

if not __package__:  # run as a script: make tests/ importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from faults.proxy import Connection, FaultProxy, _Handler  # noqa: E402

__all__ = ["LinkProxy", "LinkSpec", "Pacer", "read_log"]

# Bytes sent between two pacing decisions: 13 ms at 20 MB/s (a steady stream next
# to a 50 ms round trip), 640 decisions a second at 160 MB/s (little CPU for Python).
QUANTUM = 256 * 1024
# How much time a pacer lets its senders make up when they come late: a thread
# that woke late, an upstream that was not scheduled. On a busy machine (the
# benchmark shares two cores with the tools) waits of 20-100 ms happen; without
# this every rate would come out below its cap. A connection's pacer starts
# afresh with every response, so this is never credit for idle time there.
CATCH_UP_SECONDS = 0.1

_UNITS = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


def _parse_rate(text: str) -> float | None:
    """'20MB/s' -> 2e7 bytes per second; 'inf' or '-' -> None (no cap)."""
    if text.strip().lower() in ("inf", "-"):
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmg]i?b|b)/s\s*", text, re.IGNORECASE)
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"a rate is like 20MB/s, 512KiB/s or inf, not {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


def _parse_rtt(text: str) -> float:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s)\s*", text)
    if not m:
        raise ValueError(f"a round-trip time is like 50ms or 0.2s, not {text!r}")
    return float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)


def _format_rate(rate: float | None) -> str:
    return "inf" if rate is None else f"{rate / 1e6:g}MB/s"


@dataclasses.dataclass(frozen=True)
class LinkSpec:
    """rtt in seconds; conn_rate and link_rate in bytes per second (None: no cap)."""
    rtt: float = 0.0
    conn_rate: float | None = None
    link_rate: float | None = None

    @staticmethod
    def parse(text: str) -> "LinkSpec":
        """'RTT[,PER_CONNECTION_RATE[,LINK_RATE]]', e.g. '50ms,20MB/s,160MB/s'
        or '150ms' or '0ms,inf,100MB/s' (MB = 10^6 bytes, MiB = 2^20)."""
        parts = text.split(",")
        if not 1 <= len(parts) <= 3:
            raise ValueError(f"a link is RTT[,PER_CONNECTION_RATE[,LINK_RATE]], not {text!r}")
        rates = [_parse_rate(p) for p in parts[1:]] + [None] * (3 - len(parts))
        return LinkSpec(_parse_rtt(parts[0]), *rates)

    def __str__(self):
        return f"{self.rtt * 1000:g}ms,{_format_rate(self.conn_rate)},{_format_rate(self.link_rate)}"


class Pacer:
    """Times at which bytes may leave so that they leave at `rate` bytes per
    second at most, in the order they were asked for (thread-safe)."""

    def __init__(self, rate: float, clock=time.monotonic):
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"a pacer needs a finite rate > 0, not {rate}")
        self.rate = rate
        self.clock = clock
        self._next = 0.0  # when the link is free again
        self._lock = threading.Lock()

    def reserve(self, n: int) -> float:
        """When `n` bytes asked for now have passed (the caller sends them then):
        the end of their slot, so that N bytes take N / rate, not less."""
        with self._lock:
            start = max(self._next, self.clock() - CATCH_UP_SECONDS)
            self._next = start + n / self.rate
            return self._next

    def restart(self):
        """Nothing to make up: what comes next is paced from now."""
        with self._lock:
            self._next = self.clock()


class _PacedWriter:
    """The client-bound side of a connection: bytes go out no faster than each
    of its pacers allows (first the connection's, then the link's)."""

    def __init__(self, raw, pacers, sleep):
        self.raw, self.pacers, self.sleep = raw, pacers, sleep

    def write(self, data):
        view = memoryview(data).cast("B")
        for start in range(0, len(view), QUANTUM):
            piece = view[start:start + QUANTUM]
            for pacer in self.pacers:
                wait = pacer.reserve(len(piece)) - time.monotonic()
                if wait > 0:
                    self.sleep(wait)
            self.raw.write(piece)
        return len(view)

    def flush(self):
        self.raw.flush()

    def close(self):
        self.raw.close()

    @property
    def closed(self):
        return self.raw.closed


class _LinkHandler(_Handler):
    def setup(self):
        super().setup()
        link = self.proxy.link
        # The kernel finished the handshake at once; over the path it takes a round trip.
        self.usable_at = time.monotonic() + link.rtt
        self.conn_pacer = Pacer(link.conn_rate) if link.conn_rate else None
        pacers = [p for p in (self.conn_pacer, self.proxy.link_pacer) if p is not None]
        if pacers:
            self.wfile = _PacedWriter(self.wfile, pacers, self.proxy._sleep)

    def _wait_until(self, when):
        wait = when - time.monotonic()
        if wait > 0:
            self.proxy._sleep(wait)

    def _handle(self):
        # Sent just now (loopback delivers at once); it reaches the far end RTT/2 later.
        self._wait_until(max(time.monotonic(), self.usable_at) + self.proxy.link.rtt / 2)
        super()._handle()

    def _start_response(self, status, reason, headers):
        self._wait_until(time.monotonic() + self.proxy.link.rtt / 2)
        if self.conn_pacer is not None:
            self.conn_pacer.restart()
        super()._start_response(status, reason, headers)

    def send_error(self, code, message=None, explain=None):
        # What http.server could not parse (a TLS ClientHello from a client probing
        # for https) is answered over the link too: there and back.
        self._wait_until(max(time.monotonic(), self.usable_at) + self.proxy.link.rtt)
        super().send_error(code, message, explain)


class LinkProxy(FaultProxy):
    """A FaultProxy in front of `upstream_url` that serves its clients over the
    link `link` (a LinkSpec or its text). `log_path`: also append a JSON line
    per finished request and per connection opened or closed."""

    handler_class = _LinkHandler

    def __init__(self, upstream_url: str, link: LinkSpec | str, log_path: str | None = None,
                 **kwargs):
        super().__init__(upstream_url, **kwargs)
        self.link = LinkSpec.parse(link) if isinstance(link, str) else link
        self.link_pacer = Pacer(self.link.link_rate) if self.link.link_rate else None
        # Written under the proxy's lock (see _observe), a line at a time.
        self._log = open(log_path, "a", buffering=1) if log_path else None
        self._t0 = time.monotonic()

    def stop(self):
        super().stop()
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    def _t(self, when):
        return None if when is None else round(when - self._t0, 4)

    def _observe(self, event, what):
        if self._log is None:
            return
        if event == "request":
            line = dict(event=event, seq=what.seq, conn=what.conn, method=what.method,
                        path=what.path, range=what.range, status=what.status,
                        content_range=what.content_range, content_length=what.content_length,
                        bytes=what.bytes_sent, fault=what.fault, error=what.error,
                        started=self._t(what.started), finished=self._t(what.finished))
        else:
            line = dict(event=event, conn=what.id,
                        t=self._t(what.opened if event == "open" else what.closed))
        self._log.write(json.dumps(line) + "\n")


def read_log(path: str, start: int = 0) -> tuple[list[dict], list[Connection], int]:
    """(requests, connections, end offset) from a LinkProxy log, from byte
    offset `start` on (pass the end offset of an earlier call to see only
    what came since). A request is a dict with the keys written above; the
    times are seconds since the emulator started."""
    requests, conns = [], {}
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    complete = data[:data.rfind(b"\n") + 1]  # a line being written is read next time
    for line in complete.decode().splitlines():
        event = json.loads(line)
        if event["event"] == "request":
            requests.append(event)
        elif event["event"] == "open":
            conns[event["conn"]] = Connection(event["conn"], event["t"])
        elif event["conn"] in conns:
            conns[event["conn"]].closed = event["t"]
    return requests, list(conns.values()), start + len(complete)


def main(argv=None):
    ap = argparse.ArgumentParser(description="An emulated network link in front of an HTTP "
                                 "server on loopback (see the module's docstring).")
    ap.add_argument("--upstream", required=True, help="HOST:PORT or http://HOST:PORT")
    ap.add_argument("--link", required=True, type=LinkSpec.parse,
                    help="RTT[,PER_CONNECTION_RATE[,LINK_RATE]], e.g. 50ms,20MB/s,160MB/s")
    ap.add_argument("--listen", default="127.0.0.1:0",
                    help="127.0.0.1:PORT (default: any free port)")
    ap.add_argument("--log", help="append a JSON line per request and connection event here")
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if host != "127.0.0.1" or not port.isdigit():
        ap.error("--listen must be 127.0.0.1:PORT (loopback only)")
    upstream = args.upstream if "://" in args.upstream else "http://" + args.upstream
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    proxy = LinkProxy(upstream, args.link, log_path=args.log, port=int(port)).start()
    print(f"listening on {proxy.host}, link {proxy.link}, upstream {upstream}", flush=True)
    try:
        while not stop.wait(1):
            pass
    finally:
        proxy.stop()
        if proxy.errors:
            print("\n".join(proxy.errors), file=sys.stderr)


if __name__ == "__main__":
    main()
