"""A small Docker-registry token server for tests (docker "token auth" spec).

It runs an ``http.server`` in a daemon thread on a free 127.0.0.1 port and
issues ES256-signed JWTs that Debian's ``docker-registry`` (distribution 2.8)
accepts when its config has::

    auth:
      token:
        realm: <TokenServer.realm>
        service: <TokenServer.service>
        issuer: <TokenServer.issuer>
        rootcertbundle: <TokenServer.cert_path>

Every token carries an ``x5c`` header holding the (self-signed) signing
certificate; that same certificate is the registry's ``rootcertbundle``.

Endpoints (both on ``/token``, the realm):

* ``GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...]``
  - anonymous: grants ``pull`` on repositories whose name starts with
    ``public/``; nothing else (the token is still issued, with an empty or
    partial ``access`` list, as real token servers do).
  - ``Authorization: Basic`` alice/wonderland: grants the requested actions out
    of ``pull``/``push`` on every repository (and ``*`` on ``registry:catalog``).
  - wrong Basic credentials: 401; a banned account (``banned``/``banned``
    by default) with its right password: 403 (a denial, not a bad password).
  - ``offline_token=true`` with credentials adds a ``refresh_token``.
  Answer: ``{"token", "access_token", "expires_in", "issued_at"[, "refresh_token"]}``.
* ``POST /token`` (OAuth2 form, what docker does with identity tokens):
  ``grant_type=password`` (``username``, ``password``) or
  ``grant_type=refresh_token`` (``refresh_token``), plus ``service``,
  ``scope`` (space separated), ``client_id``, ``access_type=offline`` (returns
  a ``refresh_token``). Bad credentials / unknown refresh token: 401;
  banned account: 403; a missing or unknown grant_type: 400.
  Answer: ``{"access_token", "token_type": "Bearer", "expires_in", "issued_at",
  "scope"[, "refresh_token"]}``.

``expires_in`` (default 300 s) is settable at any time (``server.expires_in =
2``); tokens get ``exp = now + expires_in + exp_skew``. Note distribution 2.8
accepts a token for 60 s past its ``exp`` (clock-skew leeway, verified), so a
registry keeps accepting a "2 s" token for about a minute. To get tokens the
registry rejects at once while the client is still told they live
``expires_in`` seconds, set ``server.exp_skew = -(server.expires_in + 61)``
(e.g. -70 with expires_in 2; keep the margin above 61 s). ``server.fail_next(n, status)`` makes the
next n token requests fail with the given status.

Every request is recorded (``requests()``): method, path, query (dict of
lists), form (dict of lists, with passwords replaced by ``"***"``), whether an
Authorization header arrived, the authenticated user (or None), grant_type,
and the HTTP status sent back.
"""

from __future__ import annotations

import base64
import collections
import datetime
import http.server
import json
import os
import secrets
import socketserver
import threading
import time
import urllib.parse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEFAULT_USERS = {"alice": "wonderland"}
# Accounts whose correct credentials are refused with 403 (a denial, not a
# bad password): {user: password}.
DEFAULT_BANNED = {"banned": "banned"}
DEFAULT_SERVICE = "imgpull-test-registry"
DEFAULT_ISSUER = "imgpull-test-token-issuer"

_TokenRequestBase = collections.namedtuple(
    "TokenRequest",
    "method path query form has_auth user grant_type status",
)


class TokenRequest(_TokenRequestBase):
    """One request the token server got; fields by attribute or by name
    (``r.method`` or ``r["method"]``)."""
    __slots__ = ()

    def __getitem__(self, key):
        if isinstance(key, str):
            return getattr(self, key)
        return super().__getitem__(key)


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def make_signing_material(workdir: str):
    """Create an EC P-256 key and a self-signed cert in workdir.

    Returns (key_object, cert_der, cert_path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imgpull test token signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(workdir, "token-signer.crt")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(workdir, "token-signer.key"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return key, cert.public_bytes(serialization.Encoding.DER), cert_path


def parse_scope(scope: str):
    """'repository:a/b:pull,push' -> ('repository', 'a/b', ['pull', 'push']).

    The name may hold ':' (e.g. a host:port), so split type off the left and
    actions off the right. Returns None for a malformed scope."""
    parts = scope.split(":")
    if len(parts) < 3:
        return None
    typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
    return typ, name, [a for a in actions.split(",") if a]


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "imgpull-test-token/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        self.server.owner._handle(self, "GET")

    def do_POST(self):
        self.server.owner._handle(self, "POST")


class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class TokenServer:
    """Token server; use as a context manager or call start()/stop()."""

    def __init__(self, workdir: str, service: str = DEFAULT_SERVICE,
                 issuer: str = DEFAULT_ISSUER, expires_in: int = 300,
                 users: dict | None = None, banned: dict | None = None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.service = service
        self.issuer = issuer
        self.expires_in = expires_in
        self.exp_skew = 0  # seconds added to the exp claim (negative: already stale)
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.banned = dict(DEFAULT_BANNED if banned is None else banned)
        self._key, self._cert_der, self.cert_path = make_signing_material(workdir)
        self._lock = threading.Lock()
        self._log: list[TokenRequest] = []
        self._refresh: dict[str, str] = {}  # refresh token -> user
        self._fail: list[int] = []
        self._httpd = None
        self._thread = None
        self.port = None

    # --- lifecycle -------------------------------------------------------
    def start(self):
        self._httpd = _ThreadingServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="token-server", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    # --- inspection ------------------------------------------------------
    def requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._log)

    def clear_requests(self):
        with self._lock:
            self._log.clear()

    def fail_next(self, count: int = 1, status: int = 503):
        """Answer the next `count` token requests with `status` (no token)."""
        with self._lock:
            self._fail.extend([status] * count)

    # --- token making ----------------------------------------------------
    def grant(self, user, scopes):
        """Access list (registry's `access` claim) for user (None=anonymous)."""
        access = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            typ, name, actions = parsed
            if user is not None:
                if typ == "repository":
                    allowed = [a for a in actions if a in ("pull", "push")]
                elif typ == "registry" and name == "catalog":
                    allowed = [a for a in actions if a == "*"]
                else:
                    allowed = []
            else:
                allowed = ([a for a in actions if a == "pull"]
                           if typ == "repository" and name.startswith("public/") else [])
            if allowed:
                access.append({"type": typ, "name": name, "actions": allowed})
        return access

    def issue_token(self, user, scopes, expires_in=None) -> str:
        """A signed JWT for user (None = anonymous) and scope strings."""
        now = int(time.time())
        lifetime = self.expires_in if expires_in is None else expires_in
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": now + int(lifetime) + int(self.exp_skew),
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": self.grant(user, scopes),
        }
        return jwt.encode(claims, self._key, algorithm="ES256",
                          headers={"x5c": [_b64(self._cert_der)], "typ": "JWT"})

    # --- request handling ------------------------------------------------
    def new_refresh_token(self, user: str, password: str) -> str:
        """A refresh token (docker's "identity token") for user, minted
        directly (not through HTTP, so not in requests())."""
        if self.users.get(user) != password:
            raise ValueError(f"bad credentials for {user!r}")
        rt = secrets.token_urlsafe(24)
        with self._lock:
            self._refresh[rt] = user
        return rt

    def _check(self, user, password):
        """'ok', 'banned' or 'bad'."""
        if user in self.banned and self.banned[user] == password:
            return "banned"
        return "ok" if self.users.get(user) == password else "bad"

    def _basic_user(self, header):
        """(user or None, 'ok' | 'bad' | 'banned')."""
        if not header:
            return None, "ok"
        if not header.lower().startswith("basic "):
            return None, "ok"  # e.g. a Bearer header: treat as anonymous
        try:
            raw = base64.b64decode(header.split(None, 1)[1]).decode()
            user, _, password = raw.partition(":")
        except Exception:
            return None, "bad"
        verdict = self._check(user, password)
        return (user if verdict == "ok" else None), verdict

    def _handle(self, h, method):
        url = urllib.parse.urlsplit(h.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        form = {}
        if method == "POST":
            length = int(h.headers.get("Content-Length") or 0)
            body = h.rfile.read(length).decode("utf-8", "replace")
            form = urllib.parse.parse_qs(body, keep_blank_values=True)
        auth_header = h.headers.get("Authorization")
        has_auth = auth_header is not None
        logged_form = {k: (["***"] if k == "password" else v) for k, v in form.items()}
        grant_type = (form.get("grant_type") or [None])[0]
        user = None

        def reply(status, payload):
            data = json.dumps(payload).encode()
            with self._lock:  # record first: the client may look as soon as it has the answer
                self._log.append(TokenRequest(method, url.path, query, logged_form,
                                              has_auth, user, grant_type, status))
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            if status == 401:
                h.send_header("WWW-Authenticate", 'Basic realm="imgpull-test-token"')
            h.end_headers()
            h.wfile.write(data)

        with self._lock:
            forced = self._fail.pop(0) if self._fail else None
        if forced is not None:
            return reply(forced, {"errors": [{"code": "UNAVAILABLE",
                                              "message": "forced failure"}]})
        if url.path != "/token":
            return reply(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})

        now_iso = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if method == "GET":
            user, verdict = self._basic_user(auth_header)
            if verdict == "bad":
                return reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                               "message": "bad credentials"}]})
            if verdict == "banned":
                return reply(403, {"errors": [{"code": "DENIED",
                                               "message": "account is banned"}]})
            scopes = query.get("scope", [])
            scopes = [s for sc in scopes for s in sc.split(" ") if s]
            token = self.issue_token(user, scopes)
            payload = {"token": token, "access_token": token,
                       "expires_in": self.expires_in, "issued_at": now_iso}
            if user is not None and (query.get("offline_token") or [""])[0] == "true":
                rt = secrets.token_urlsafe(24)
                with self._lock:
                    self._refresh[rt] = user
                payload["refresh_token"] = rt
            return reply(200, payload)

        # POST: OAuth2
        if grant_type == "password":
            name = (form.get("username") or [""])[0]
            password = (form.get("password") or [""])[0]
            verdict = self._check(name, password)
            if verdict == "banned":
                return reply(403, {"error": "access_denied",
                                   "error_description": "account is banned"})
            if verdict != "ok":
                return reply(401, {"error": "invalid_grant",
                                   "error_description": "bad credentials"})
            user = name
        elif grant_type == "refresh_token":
            rt = (form.get("refresh_token") or [""])[0]
            with self._lock:
                user = self._refresh.get(rt)
            if user is None:
                return reply(401, {"error": "invalid_grant",
                                   "error_description": "unknown refresh token"})
        else:
            return reply(400, {"error": "unsupported_grant_type",
                               "error_description": str(grant_type)})
        scope_str = " ".join(form.get("scope", []))
        scopes = [s for s in scope_str.split(" ") if s]
        token = self.issue_token(user, scopes)
        payload = {"access_token": token, "token_type": "Bearer",
                   "expires_in": self.expires_in, "issued_at": now_iso,
                   "scope": scope_str}
        if (form.get("access_type") or [""])[0] == "offline":
            if grant_type == "refresh_token":
                payload["refresh_token"] = (form.get("refresh_token") or [""])[0]
            else:
                rt = secrets.token_urlsafe(24)
                with self._lock:
                    self._refresh[rt] = user
                payload["refresh_token"] = rt
        return reply(200, payload)


if __name__ == "__main__":  # manual use: python3 token_server.py DIR
    import sys
    with TokenServer(sys.argv[1] if len(sys.argv) > 1 else ".") as ts:
        print("realm", ts.realm, "cert", ts.cert_path, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
