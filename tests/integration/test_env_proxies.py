"""HTTPS_PROXY / HTTP_PROXY / NO_PROXY (and lower case), through a recording
forward proxy (tests/registry/connect_proxy.py). The proxy variables are
given to the imgpull process only, never to this test process.

Registries are addressed as registry.localhost:PORT: libcurl resolves
*.localhost to 127.0.0.1, and it is not a loopback name, which imgpull (like
Docker) never proxies."""
from pathlib import Path

import pytest

import imgpull_cli as cli
from registry.connect_proxy import ConnectProxy

PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
              "ALL_PROXY", "all_proxy")


def env_with(**values):
    env = {k: "" for k in PROXY_VARS}  # nothing inherited from the machine
    env.update(values)
    return env


@pytest.fixture
def proxy():
    with ConnectProxy() as p:
        yield p


def tls_certs(tmp_path, registry_tls, host):
    d = Path(tmp_path) / "certs.d" / host
    d.mkdir(parents=True)
    (d / "ca.crt").write_bytes(Path(registry_tls.ca_cert_path).read_bytes())
    return str(d.parent)


def test_https_proxy_tunnels_with_connect(registry_tls, proxy, tmp_path):
    host = f"registry.localhost:{registry_tls.port}"
    certs = tls_certs(tmp_path, registry_tls, host)
    proc = cli.run(["--certs-dir", certs, "pull", f"{host}/single:latest"], tmp_path / "store",
                   env=env_with(HTTPS_PROXY=proxy.url))
    assert proc.returncode == 0, proc.stderr
    assert proxy.connects() and set(proxy.connects()) == {host}, proxy.connects()
    assert proxy.forwarded() == []


def test_lower_case_https_proxy(registry_tls, proxy, tmp_path):
    host = f"registry.localhost:{registry_tls.port}"
    certs = tls_certs(tmp_path, registry_tls, host)
    proc = cli.run(["--certs-dir", certs, "pull", f"{host}/single:latest"], tmp_path / "store",
                   env=env_with(https_proxy=proxy.url))
    assert proc.returncode == 0, proc.stderr
    assert set(proxy.connects()) == {host}


def test_http_proxy_gets_absolute_uri_requests(registry_plain, proxy, tmp_path):
    host = f"registry.localhost:{registry_plain.port}"
    proc = cli.run(["--insecure-registry", host, "pull", f"{host}/single:latest"], tmp_path / "store",
                   env=env_with(HTTP_PROXY=proxy.url))
    assert proc.returncode == 0, proc.stderr
    urls = [f.url for f in proxy.forwarded() if f.method == "GET"]
    assert f"http://{host}/v2/single/manifests/latest" in urls, urls
    assert any(u.startswith(f"http://{host}/v2/single/blobs/sha256:") for u in urls), urls
    # HTTPS_PROXY was not set: the https attempt went direct, no tunnel.
    assert proxy.connects() == []


def test_no_proxy_bypasses(registry_tls, proxy, tmp_path):
    host = f"registry.localhost:{registry_tls.port}"
    certs = tls_certs(tmp_path, registry_tls, host)
    proc = cli.run(["--certs-dir", certs, "pull", f"{host}/single:latest"], tmp_path / "store",
                   env=env_with(HTTPS_PROXY=proxy.url, NO_PROXY="example.com,registry.localhost"))
    assert proc.returncode == 0, proc.stderr
    assert proxy.connects() == [] and proxy.forwarded() == []


def test_loopback_is_never_proxied(registry_plain, proxy, tmp_path):
    # As Docker (Go's net/http): 127.0.0.1 and localhost go direct even with
    # proxies set and no NO_PROXY; libcurl alone would have proxied them.
    proc = cli.run(["pull", f"{registry_plain.host}/single:latest"], tmp_path / "store",
                   env=env_with(HTTPS_PROXY=proxy.url, HTTP_PROXY=proxy.url))
    assert proc.returncode == 0, proc.stderr
    assert proxy.connects() == [] and proxy.forwarded() == []


def test_dead_proxy_is_a_clear_error(registry_tls, tmp_path):
    from registry import harness
    host = f"registry.localhost:{registry_tls.port}"
    certs = tls_certs(tmp_path, registry_tls, host)
    dead = f"http://127.0.0.1:{harness.free_port()}"
    proc = cli.run(["--retries", "0", "--certs-dir", certs, "pull", f"{host}/single:latest"], tmp_path / "store",
                   env=env_with(HTTPS_PROXY=dead))
    assert proc.returncode != 0
    assert host in proc.stderr and f"through proxy {dead}" in proc.stderr, proc.stderr
