"""Real-registry test harness: Debian's docker-registry (distribution 2.8) in
four flavours, driven from pytest.

    with Registry("token", tmpdir) as reg:
        push(reg, layout_dir, "latest", "single:latest")
        reg.clear_requests()
        ... run imgpull against reg.host ...
        gets = [r for r in reg.requests() if r.method == "GET" and "/blobs/" in r.path]

Flavours:
  plain  http, no auth
  basic  http, htpasswd (bcrypt) auth, user USER / PASSWORD
  token  http, bearer token auth from a TokenServer (token_server.py) on
         its own port; anonymous pull on ``public/*`` only, USER gets
         pull,push on everything
  tls    https with a test CA (``reg.ca_cert_path``; ``reg.cert_dir`` is a
         directory holding only ``ca.crt`` for skopeo/docker style
         ``--cert-dir``), no auth. With ``mtls=True`` the registry also
         demands a client certificate signed by the test CA
         (``http.tls.clientcas``): ``reg.client_cert_path`` /
         ``reg.client_key_path``, also in ``reg.cert_dir`` as
         ``client.cert`` / ``client.key`` (docker's names).

All servers listen on 127.0.0.1 only. Files (config.yml, storage/, logs,
certs) live under the tmpdir given; the caller owns (and removes) it.
The registry's stdout (the access log, Apache combined format) goes to
``access.log``; its stderr (application log) to ``registry.log``.
"""

from __future__ import annotations

import atexit
import base64
import collections
import http.client
import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse

try:  # imported as registry.harness (tests/ on sys.path, the normal way)
    from .token_server import TokenServer
except ImportError:  # run or imported from inside tests/registry
    from token_server import TokenServer

DOCKER_REGISTRY = os.environ.get("IMGPULL_DOCKER_REGISTRY", "/usr/bin/docker-registry")
SKOPEO = os.environ.get("IMGPULL_SKOPEO", "/usr/bin/skopeo")
HTPASSWD = "/usr/bin/htpasswd"
OPENSSL = "/usr/bin/openssl"

USER = "alice"
PASSWORD = "wonderland"
FLAVOURS = ("plain", "basic", "token", "tls")

# Accept header to use when probing manifests yourself: without it
# distribution 2.8 down-converts schema 2 to schema 1 and 404s OCI ones.
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])

START_TIMEOUT = 20.0

Request = collections.namedtuple("Request", "method path status")
Request.__doc__ = "One access-log line: method, path (query string removed), HTTP status."

Response = collections.namedtuple("Response", "status headers body")

# 127.0.0.1 - - [28/Nov/2026:05:40:00 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"
_ACCESS_RE = re.compile(r'^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) ')


class HarnessError(RuntimeError):
    pass


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (racy by nature; Registry retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd, **kw):
    """Run a command; raise HarnessError with its output when it fails."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    p = subprocess.run(cmd, **kw)
    if p.returncode != 0:
        out = (p.stdout or b"").decode(errors="replace") if isinstance(p.stdout, bytes) else (p.stdout or "")
        err = (p.stderr or b"").decode(errors="replace") if isinstance(p.stderr, bytes) else (p.stderr or "")
        raise HarnessError(f"command failed ({p.returncode}): {' '.join(map(str, cmd))}\n"
                           f"stdout:\n{out[-4000:]}\nstderr:\n{err[-4000:]}")
    return p


def _tail(path, lines=40) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"<{e}>"


def _yaml(obj, indent=0) -> str:
    """Minimal YAML writer for nested dicts/lists of str/int/bool (JSON-quoted scalars)."""
    pad = "  " * indent
    out = []
    for k, v in obj.items():
        if isinstance(v, dict):
            out.append(f"{pad}{k}:\n{_yaml(v, indent + 1)}")
        elif isinstance(v, list):
            out.append(f"{pad}{k}: [{', '.join(json.dumps(x) for x in v)}]")
        else:
            out.append(f"{pad}{k}: {json.dumps(v)}")
    return "\n".join(out)


def make_client_cert(certdir: str, ca_crt: str, ca_key: str, name: str = "client"):
    """A client certificate (clientAuth) signed by the test CA; (cert, key) paths."""
    key, csr, crt = (os.path.join(certdir, f"{name}.{ext}") for ext in ("key", "csr", "cert"))
    ext = os.path.join(certdir, f"{name}.ext")
    _run([OPENSSL, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
          "-keyout", key, "-out", csr, "-subj", f"/CN=imgpull test {name}"])
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\n")
    _run([OPENSSL, "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
          "-CAcreateserial", "-out", crt, "-days", "3650", "-sha256", "-extfile", ext])
    return crt, key


def _merge(base: dict, extra: dict) -> dict:
    """extra merged into base, nested dicts merged key by key."""
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


def make_tls_material(certdir: str):
    """Test CA + server cert for 127.0.0.1/localhost, made with openssl.

    Returns (ca_cert, server_cert, server_key) paths."""
    os.makedirs(certdir, exist_ok=True)
    ca_key, ca_crt = os.path.join(certdir, "ca.key"), os.path.join(certdir, "ca.crt")
    key, csr, crt = (os.path.join(certdir, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(certdir, "server.ext")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run([OPENSSL, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_crt, "-days", "3650",
          "-subj", "/CN=imgpull test CA",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    _run([OPENSSL, "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"])
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:registry.localhost\n"
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    _run([OPENSSL, "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
          "-CAcreateserial", "-out", crt, "-days", "3650", "-sha256", "-extfile", ext])
    return ca_crt, crt, key


_RUNNING = set()  # registries started here and not yet stopped


@atexit.register
def _stop_leftovers():
    """Stop registries a crashed/interrupted test run left running."""
    for reg in list(_RUNNING):
        try:
            reg.stop()
        except Exception:
            pass


class Registry:
    """A docker-registry process of one flavour; a context manager.

    Attributes after start(): host ("127.0.0.1:PORT"), port, url
    ("http[s]://127.0.0.1:PORT"), scheme, flavour, tmpdir, storage_dir,
    config_path, access_log, log_path; for tls: ca_cert_path, cert_dir; for
    token: token_server (a TokenServer; realm, expires_in, requests() ...).
    creds is (USER, PASSWORD) for basic/token, None otherwise.
    """

    def __init__(self, flavour: str, tmpdir: str, token_expires_in: int = 300,
                 extra_config: dict | None = None, mtls: bool = False):
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {FLAVOURS}, not {flavour!r}")
        self.flavour = flavour
        self.tmpdir = os.path.abspath(str(tmpdir))
        os.makedirs(self.tmpdir, exist_ok=True)
        self.storage_dir = os.path.join(self.tmpdir, "storage")
        self.config_path = os.path.join(self.tmpdir, "config.yml")
        self.access_log = os.path.join(self.tmpdir, "access.log")
        self.log_path = os.path.join(self.tmpdir, "registry.log")
        self.scheme = "https" if flavour == "tls" else "http"
        self.creds = (USER, PASSWORD) if flavour in ("basic", "token") else None
        self.ca_cert_path = None
        self.cert_dir = None
        if mtls and flavour != "tls":
            raise ValueError("mtls needs the tls flavour")
        self.mtls = mtls
        self.client_cert_path = self.client_key_path = None
        self.htpasswd_path = None
        self.token_server = None
        self._token_expires_in = token_expires_in
        # Merged into config.yml at top level, e.g. {"middleware": {...}}.
        self._extra_config = dict(extra_config or {})
        self._server_cert = self._server_key = None
        self.port = None
        self.proc = None
        self._mark = 0
        self._tokens = {}  # (scope, creds) -> (bearer token, expiry), for api()
        self._challenges = {}  # (repo, creds) -> last challenge, for api()
        self.authfile = os.path.join(self.tmpdir, "auth.json")

    # --- properties ----------------------------------------------------
    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    # --- lifecycle -----------------------------------------------------
    def _prepare(self):
        os.makedirs(self.storage_dir, exist_ok=True)
        with open(self.authfile, "w") as f:  # keeps skopeo away from ~/.docker etc.
            f.write('{"auths": {}}\n')
        if self.flavour == "basic":
            p = _run([HTPASSWD, "-Bbn", USER, PASSWORD])
            self.htpasswd_path = os.path.join(self.tmpdir, "htpasswd")
            with open(self.htpasswd_path, "wb") as f:
                f.write(p.stdout.strip() + b"\n")
        elif self.flavour == "token":
            self.token_server = TokenServer(os.path.join(self.tmpdir, "token"),
                                            expires_in=self._token_expires_in).start()
        elif self.flavour == "tls":
            certs = os.path.join(self.tmpdir, "certs")
            self.ca_cert_path, self._server_cert, self._server_key = make_tls_material(certs)
            self.cert_dir = os.path.join(self.tmpdir, "cert.d")
            os.makedirs(self.cert_dir, exist_ok=True)
            with open(self.ca_cert_path, "rb") as src, \
                    open(os.path.join(self.cert_dir, "ca.crt"), "wb") as dst:
                dst.write(src.read())
            if self.mtls:
                self.client_cert_path, self.client_key_path = make_client_cert(
                    certs, self.ca_cert_path, os.path.join(certs, "ca.key"))
                for src_path, name in ((self.client_cert_path, "client.cert"),
                                       (self.client_key_path, "client.key")):
                    with open(src_path, "rb") as src, \
                            open(os.path.join(self.cert_dir, name), "wb") as dst:
                        dst.write(src.read())

    def _write_config(self):
        http_cfg = {"addr": self.host, "secret": secrets.token_hex(16),
                    "headers": {"X-Content-Type-Options": ["nosniff"]}}
        if self.flavour == "tls":
            http_cfg["tls"] = {"certificate": self._server_cert, "key": self._server_key}
            if self.mtls:
                http_cfg["tls"]["clientcas"] = [self.ca_cert_path]
        cfg = {
            "version": "0.1",
            "log": {"level": "info", "formatter": "text",
                    "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": self.storage_dir},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http_cfg,
        }
        if self.flavour == "basic":
            cfg["auth"] = {"htpasswd": {"realm": "imgpull-test", "path": self.htpasswd_path}}
        elif self.flavour == "token":
            ts = self.token_server
            cfg["auth"] = {"token": {"realm": ts.realm, "service": ts.service,
                                     "issuer": ts.issuer, "rootcertbundle": ts.cert_path}}
        _merge(cfg, self._extra_config)
        with open(self.config_path, "w") as f:
            f.write(_yaml(cfg) + "\n")

    def start(self):
        self._prepare()
        last_err = None
        for _attempt in range(5):
            self.port = free_port()
            self._write_config()
            out = open(self.access_log, "ab")
            err = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen([DOCKER_REGISTRY, "serve", self.config_path],
                                             stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                             cwd=self.tmpdir, start_new_session=True)
            finally:
                out.close()
                err.close()
            _RUNNING.add(self)
            try:
                self._wait_ready()
                self.clear_requests()
                return self
            except HarnessError as e:
                last_err = e
                self._kill()
                if "address already in use" not in _tail(self.log_path, 20):
                    break
        self.stop()
        raise last_err

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(
                    f"docker-registry ({self.flavour}) exited with {self.proc.returncode} "
                    f"during start-up; {self.log_path} ends with:\n{_tail(self.log_path)}")
            try:
                status = self.api("GET", "/v2/", auth=None, timeout=1).status
                if status in (200, 401):
                    return
                last = f"status {status}"
            except (OSError, http.client.HTTPException) as e:
                last = repr(e)
            time.sleep(0.05)
        raise HarnessError(
            f"docker-registry ({self.flavour}) did not answer {self.url}/v2/ within "
            f"{START_TIMEOUT}s (last: {last}); {self.log_path} ends with:\n{_tail(self.log_path)}")

    def _kill(self):
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        try:
            os.kill(p.pid, signal.SIGTERM)
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=5)
        except ProcessLookupError:
            pass

    def stop(self):
        """Stop the registry (SIGTERM, SIGKILL after 5 s) and the token server."""
        self._kill()
        if self.token_server is not None:
            self.token_server.stop()
        _RUNNING.discard(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- token flavour shortcuts -------------------------------------------
    def token_requests(self):
        """The token server's recorded requests (TokenRequest: method, path,
        query, form, has_auth, user, grant_type, status; also r["method"])."""
        if self.token_server is None:
            raise HarnessError(f"{self.flavour} registry has no token server")
        return self.token_server.requests()

    def refresh_token_for(self, user: str = USER, password: str = PASSWORD) -> str:
        """A refresh ("identity") token the token server accepts for
        grant_type=refresh_token; minted directly, not recorded."""
        if self.token_server is None:
            raise HarnessError(f"{self.flavour} registry has no token server")
        return self.token_server.new_refresh_token(user, password)

    def log_tail(self, lines=40) -> str:
        return _tail(self.log_path, lines)

    # --- access log ------------------------------------------------------
    def _log_size(self) -> int:
        try:
            return os.path.getsize(self.access_log)
        except OSError:
            return 0

    def _settle(self, timeout=0.5):
        """The access log line is written after the response went out; wait
        until the file stops growing for a moment."""
        deadline = time.monotonic() + timeout
        size = self._log_size()
        while time.monotonic() < deadline:
            time.sleep(0.03)
            now = self._log_size()
            if now == size:
                return
            size = now

    def mark(self) -> int:
        """A marker (access-log offset) for requests(since=...)."""
        self._settle()
        return self._log_size()

    def clear_requests(self):
        """Forget the requests seen so far (requests() starts after this)."""
        self._mark = self.mark()

    def requests(self, since: int | None = None) -> list[Request]:
        """Requests the registry logged since clear_requests() (or the marker
        `since`), as Request(method, path-without-query, status)."""
        self._settle()
        start = self._mark if since is None else since
        out = []
        with open(self.access_log, "rb") as f:
            f.seek(start)
            for line in f.read().decode(errors="replace").splitlines():
                m = _ACCESS_RE.match(line)
                if m:
                    out.append(Request(m.group(1), m.group(2).split("?", 1)[0],
                                       int(m.group(3))))
        return out

    # --- a tiny registry client -----------------------------------------
    def ssl_context(self):
        if self.flavour != "tls":
            return None
        ctx = ssl.create_default_context(cafile=self.ca_cert_path)
        if self.mtls:
            ctx.load_cert_chain(self.client_cert_path, self.client_key_path)
        return ctx

    def _connection(self, timeout):
        if self.scheme == "https":
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=self.ssl_context(),
                                               blocksize=1 << 20)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                          blocksize=1 << 20)

    def _answer(self, challenge: dict, creds) -> str:
        if challenge["scheme"] == "basic":
            return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        return "Bearer " + self._bearer(challenge, creds)

    def _bearer(self, challenge: dict, creds) -> str:
        scope = challenge.get("scope", "")
        key = (scope, creds)
        cached = self._tokens.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        realm = urllib.parse.urlsplit(challenge["realm"])
        q = {"service": challenge.get("service", "")}
        if scope:
            q["scope"] = scope
        conn = http.client.HTTPConnection(realm.hostname, realm.port, timeout=10)
        headers = {}
        if creds:
            headers["Authorization"] = "Basic " + base64.b64encode(
                f"{creds[0]}:{creds[1]}".encode()).decode()
        conn.request("GET", realm.path + "?" + urllib.parse.urlencode(q), headers=headers)
        r = conn.getresponse()
        body = r.read()
        conn.close()
        if r.status != 200:
            raise HarnessError(f"token request failed: {r.status} {body[:200]!r}")
        data = json.loads(body)
        tok = data.get("token") or data["access_token"]
        lifetime = int(data.get("expires_in") or 60)
        self._tokens[key] = (tok, time.monotonic() + lifetime - 1)
        return tok

    def api(self, method: str, path: str, body=None, headers=None, auth=True,
            timeout=60) -> Response:
        """One registry API call with auth handled the way clients do it.

        path is e.g. "/v2/single/manifests/latest" (absolute URLs from a
        Location header are accepted too). body: bytes or a binary file
        object (streamed in 1 MiB reads; give Content-Length in headers).
        auth: True = answer a 401 challenge with the flavour's creds (Basic,
        or a token from the realm fetched with Basic creds), a (user,
        password) tuple = the same with those creds, False = anonymous (a
        Bearer challenge is still answered with an anonymous token, as
        clients do; a Basic one is not), None = never answer a challenge.
        Returns Response(status, headers (an http.client.HTTPMessage), body bytes).
        """
        creds = self.creds if auth is True else (tuple(auth) if auth else None)
        answer = auth is not None
        if path.startswith("http://") or path.startswith("https://"):
            u = urllib.parse.urlsplit(path)
            path = u.path + ("?" + u.query if u.query else "")
        hdrs = dict(headers or {})
        start_pos = body.tell() if hasattr(body, "read") else None
        m = re.match(r"/v2/(.+?)/(?:blobs|manifests|tags)/", path)
        repo_key = (m.group(1) if m else None, creds)
        # Answer a challenge seen before for this repository up front, so a
        # streamed body is not cut off by an early 401.
        if answer and "Authorization" not in hdrs and repo_key in self._challenges:
            hdrs["Authorization"] = self._answer(self._challenges[repo_key], creds)
        for attempt in range(2):
            conn = self._connection(timeout)
            try:
                conn.request(method, path, body=body, headers=hdrs)
                r = conn.getresponse()
                data = r.read()
            finally:
                conn.close()
            if r.status != 401 or attempt == 1 or not answer:
                return Response(r.status, r.headers, data)
            challenge = r.headers.get("WWW-Authenticate", "")
            scheme, _, params = challenge.partition(" ")
            fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
            fields["scheme"] = scheme.lower()
            if fields["scheme"] not in ("basic", "bearer") or \
                    (fields["scheme"] == "basic" and not creds):
                return Response(r.status, r.headers, data)
            hdrs["Authorization"] = self._answer(fields, creds)
            self._challenges[repo_key] = fields
            if start_pos is not None:
                body.seek(start_pos)
        raise AssertionError("unreachable")

    def get_manifest(self, repo: str, ref: str, auth=True):
        """(status, content-type, docker-content-digest, body bytes) of a
        manifest GET with an Accept header for OCI and Docker schema 2 types."""
        r = self.api("GET", f"/v2/{repo}/manifests/{ref}",
                     headers={"Accept": MANIFEST_ACCEPT}, auth=auth)
        return (r.status, r.headers.get("Content-Type"),
                r.headers.get("Docker-Content-Digest"), r.body)

    # --- skopeo ------------------------------------------------------------
    def skopeo_env(self) -> dict:
        env = dict(os.environ)
        env["REGISTRY_AUTH_FILE"] = self.authfile
        return env

    def skopeo_flags(self, prefix: str = "", creds=True, tls_verify=None) -> list[str]:
        """skopeo flags to reach this registry. prefix is "" (inspect),
        "src-" or "dest-" (copy). creds: True = the flavour's creds, False =
        none, or a (user, password) tuple. tls_verify=None: the flavour's
        default (off for http; cert dir for tls); False forces it off."""
        flags = []
        if self.scheme == "http" or tls_verify is False:
            flags.append(f"--{prefix}tls-verify=false")
        elif tls_verify is None:
            flags += [f"--{prefix}cert-dir", self.cert_dir]
        # tls_verify=True on https: use system roots only (fails for the test CA)
        c = self.creds if creds is True else (tuple(creds) if creds else None)
        if c:
            flags += [f"--{prefix}creds", f"{c[0]}:{c[1]}"]
        return flags

    def skopeo_inspect(self, repo_and_tag: str, raw=False, config=False, creds=True,
                       tls_verify=None, check=True):
        """`skopeo inspect` of docker://HOST/REPO:TAG. Returns the parsed JSON
        when check (raises HarnessError on failure), else the CompletedProcess."""
        cmd = [SKOPEO, "inspect", "--retry-times", "0"]
        if raw:
            cmd.append("--raw")
        if config:
            cmd.append("--config")
        cmd += self.skopeo_flags("", creds, tls_verify)
        cmd.append(f"docker://{self.host}/{repo_and_tag}")
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=self.skopeo_env(), timeout=120)
        if not check:
            return p
        if p.returncode != 0:
            raise HarnessError(f"{' '.join(cmd)} failed:\n{p.stderr.decode(errors='replace')}")
        return json.loads(p.stdout)


def push(registry: Registry, oci_layout_dir: str, tag_in_layout: str, repo_and_tag: str,
         fmt: str | None = None, all_: bool = False, creds=True) -> str:
    """skopeo copy oci:DIR:TAG docker://HOST/REPO:TAG for any flavour.

    fmt: None (keep OCI), "v2s2" (Docker schema 2) or "oci". all_: copy a whole
    index (--all). Returns the digest of the pushed top-level manifest/index
    ("sha256:...")."""
    digestfile = os.path.join(registry.tmpdir, f"push-{secrets.token_hex(4)}.digest")
    cmd = [SKOPEO, "--insecure-policy", "copy", "--retry-times", "0", "--quiet",
           "--digestfile", digestfile]
    if fmt:
        cmd += ["--format", fmt]
    else:
        # Copy the layout as it is: without this, containers/image may push another
        # compression of a layer that its blob-info cache (shared by every skopeo and
        # podman run on the machine) says the registry already has -- a zstd image
        # would arrive with its gzip twin's layers.
        cmd.append("--preserve-digests")
    if all_:
        cmd.append("--all")
    cmd += registry.skopeo_flags("dest-", creds)
    cmd += [f"oci:{oci_layout_dir}:{tag_in_layout}", f"docker://{registry.host}/{repo_and_tag}"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=registry.skopeo_env(), timeout=300)
    if p.returncode != 0:
        raise HarnessError(f"push failed: {' '.join(cmd)}\n{p.stderr.decode(errors='replace')}"
                           f"\nregistry log:\n{registry.log_tail(15)}")
    with open(digestfile) as f:
        digest = f.read().strip()
    os.unlink(digestfile)
    return digest
