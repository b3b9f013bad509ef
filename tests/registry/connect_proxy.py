"""A small forward HTTP proxy for tests: CONNECT tunnels (https through a
proxy) and absolute-URI requests (plain http through a proxy), each recorded.

    with ConnectProxy() as proxy:
        env = {"HTTPS_PROXY": proxy.url}
        ... run imgpull with env ...
        assert proxy.connects() == ["registry.localhost:5000", ...]
        assert any(r.method == "GET" for r in proxy.forwarded())

Host names ending in ".localhost" (and "localhost") are resolved to
127.0.0.1 by the proxy itself, so a test can give a registry on 127.0.0.1 a
name that is not loopback to the client (clients never proxy loopback
addresses) without touching /etc/hosts. Anything else is refused with 502:
the proxy never reaches outside 127.0.0.1.

Listens on 127.0.0.1 only; runs in threads of the test process.
"""

from __future__ import annotations

import collections
import socket
import socketserver
import threading
import urllib.parse

Forwarded = collections.namedtuple("Forwarded", "method url")
Forwarded.__doc__ = "A plain-http request sent through the proxy: method and absolute URL."


def _resolve(host: str) -> str | None:
    if host == "localhost" or host.endswith(".localhost") or host.startswith("127."):
        return "127.0.0.1"
    return None


def _read_head(sock) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
        if len(data) > 1 << 20:
            return b""
    return data


def _pipe(src, dst):
    try:
        while True:
            chunk = src.recv(1 << 16)
            if not chunk:
                break
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        proxy = self.server.proxy
        client = self.request
        head = _read_head(client)
        if not head:
            return
        header_bytes, _, rest = head.partition(b"\r\n\r\n")
        lines = header_bytes.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            proxy._record_connect(target)
            address = _resolve(host)
            if address is None:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            try:
                upstream = socket.create_connection((address, int(port)), timeout=10)
            except OSError:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            self._tunnel(client, upstream)
            return
        # An absolute-URI request: forward it with Connection: close, so
        # that each request on the client's connection is seen (and recorded)
        # on its own.
        url = urllib.parse.urlsplit(target)
        proxy._record_forward(Forwarded(method, target))
        address = _resolve(url.hostname or "")
        if url.scheme != "http" or address is None:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        headers = [h for h in lines[1:]
                   if h and not h.lower().startswith(("proxy-", "connection:", "keep-alive:"))]
        out = f"{method} {path} {version}\r\n" + "".join(f"{h}\r\n" for h in headers)
        out += "Connection: close\r\n\r\n"
        try:
            upstream = socket.create_connection((address, url.port or 80), timeout=10)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        upstream.sendall(out.encode("latin-1") + rest)
        length = 0
        for h in headers:
            name, _, value = h.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        remaining = length - len(rest)
        while remaining > 0:
            chunk = client.recv(min(remaining, 1 << 16))
            if not chunk:
                break
            upstream.sendall(chunk)
            remaining -= len(chunk)
        _pipe(upstream, client)
        upstream.close()

    @staticmethod
    def _tunnel(a, b):
        t = threading.Thread(target=_pipe, args=(b, a), daemon=True)
        t.start()
        _pipe(a, b)
        t.join(timeout=30)
        b.close()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class ConnectProxy:
    """The proxy; a context manager. Attributes after start(): port, url."""

    def __init__(self):
        self._lock = threading.Lock()
        self._connects = []
        self._forwarded = []
        self._server = None
        self._thread = None
        self.port = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _record_connect(self, target):
        with self._lock:
            self._connects.append(target)

    def _record_forward(self, forwarded):
        with self._lock:
            self._forwarded.append(forwarded)

    def connects(self) -> list[str]:
        """CONNECT targets ("host:port") in arrival order."""
        with self._lock:
            return list(self._connects)

    def forwarded(self) -> list[Forwarded]:
        """Plain-http requests proxied, in arrival order."""
        with self._lock:
            return list(self._forwarded)

    def clear(self):
        with self._lock:
            self._connects.clear()
            self._forwarded.clear()
