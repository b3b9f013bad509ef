"""Certificates: certs.d client certificates (Docker's client.cert/client.key)
and hosts.toml `client`, against a registry that demands one
(http.tls.clientcas); plain http only for loopback or --insecure-registry."""
import shutil
from pathlib import Path

import pytest

import imgpull_cli as cli


@pytest.fixture(scope="module")
def registry_mtls(fixture_cache, tmp_path_factory):
    # One mTLS registry for the module (registry_factory is per test).
    import conftest
    reg, tmp = conftest._start("tls", fixture_cache, mtls=True)
    try:
        yield reg
    finally:
        conftest._finish(reg, tmp)


def certs_dir(tmp_path, host, files):
    d = Path(tmp_path) / "certs.d" / host
    d.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        shutil.copyfile(src, d / name)
    return str(Path(tmp_path) / "certs.d")


def test_client_certificate_from_certs_d(registry_mtls, tmp_path):
    certs = certs_dir(tmp_path, registry_mtls.host, {
        "ca.crt": registry_mtls.ca_cert_path,
        "client.cert": registry_mtls.client_cert_path,
        "client.key": registry_mtls.client_key_path,
    })
    proc = cli.run(["--certs-dir", certs, "pull", f"{registry_mtls.host}/single:latest"], tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    assert "Downloaded newer image" in proc.stdout


def test_without_client_certificate_is_a_clear_error(registry_mtls, tmp_path):
    certs = certs_dir(tmp_path, registry_mtls.host, {"ca.crt": registry_mtls.ca_cert_path})
    ref = f"{registry_mtls.host}/single:latest"
    proc = cli.run(["--certs-dir", certs, "pull", ref], tmp_path / "store")
    assert proc.returncode != 0
    assert "client certificate" in proc.stderr and "client.cert" in proc.stderr, proc.stderr
    assert ref in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert cli.blobs(tmp_path / "store") == set()


def test_client_cert_without_key_is_refused(registry_mtls, tmp_path):
    certs = certs_dir(tmp_path, registry_mtls.host, {
        "ca.crt": registry_mtls.ca_cert_path,
        "client.cert": registry_mtls.client_cert_path,
    })
    proc = cli.run(["--certs-dir", certs, "pull", f"{registry_mtls.host}/single:latest"], tmp_path / "store")
    assert proc.returncode != 0
    assert "has no key client.key" in proc.stderr, proc.stderr


def test_client_certificate_from_hosts_toml(registry_mtls, tmp_path):
    d = Path(tmp_path) / "certs.d" / registry_mtls.host
    d.mkdir(parents=True)
    shutil.copyfile(registry_mtls.client_cert_path, d / "me.pem")
    shutil.copyfile(registry_mtls.client_key_path, d / "me-key.pem")
    (d / "hosts.toml").write_text(f'''
server = "https://{registry_mtls.host}"
ca = "{registry_mtls.ca_cert_path}"
client = [["me.pem", "me-key.pem"]]
''')
    proc = cli.run(["--certs-dir", str(d.parent), "pull", f"{registry_mtls.host}/single:latest"],
                   tmp_path / "store")
    assert proc.returncode == 0, proc.stderr


def test_plain_http_only_for_loopback_or_insecure(registry_plain, tmp_path):
    # registry.localhost resolves to 127.0.0.1 (libcurl does it for *.localhost)
    # but is not a loopback name to imgpull: plain http needs --insecure-registry.
    host = f"registry.localhost:{registry_plain.port}"
    proc = cli.run(["pull", f"{host}/single:latest"], tmp_path / "store")
    assert proc.returncode != 0
    assert "TLS" in proc.stderr, proc.stderr
    proc = cli.run(["--insecure-registry", host, "pull", f"{host}/single:latest"], tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    # 127.0.0.1 itself is loopback: no flag needed.
    proc = cli.run(["pull", f"{registry_plain.host}/single:latest"], tmp_path / "store2")
    assert proc.returncode == 0, proc.stderr
