"""Authentication and TLS against real registries: htpasswd Basic, Bearer tokens, a test CA."""
import base64
import json
import os
import stat
from pathlib import Path

import imgpull_cli as cli
from registry import harness


def auth_entry(user, password):
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


# ---- Basic ----

def test_basic_auth_with_docker_config(registry_basic, tmp_path):
    env = cli.docker_config(tmp_path, {registry_basic.host: auth_entry(harness.USER, harness.PASSWORD)})
    proc = cli.run(["pull", f"{registry_basic.host}/single:latest"], tmp_path / "store", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Downloaded newer image" in proc.stdout


def test_basic_auth_url_form_key(registry_basic, tmp_path):
    env = cli.docker_config(tmp_path, {f"http://{registry_basic.host}/v1/": auth_entry(harness.USER, harness.PASSWORD)})
    proc = cli.run(["pull", f"{registry_basic.host}/single:latest"], tmp_path / "store", env=env)
    assert proc.returncode == 0, proc.stderr


def test_basic_auth_without_credentials_fails_clearly(registry_basic, tmp_path):
    ref = f"{registry_basic.host}/single:latest"
    proc = cli.run(["pull", ref], tmp_path / "store")
    assert proc.returncode != 0
    assert ref in proc.stderr and "login" in proc.stderr.lower()
    assert len(proc.stderr.strip().splitlines()) == 1
    assert cli.blobs(tmp_path / "store") == set()


def test_basic_auth_with_bad_password_fails_clearly(registry_basic, tmp_path):
    env = cli.docker_config(tmp_path, {registry_basic.host: auth_entry(harness.USER, "wrong")})
    proc = cli.run(["pull", f"{registry_basic.host}/single:latest"], tmp_path / "store", env=env)
    assert proc.returncode != 0
    assert "unauthorized" in proc.stderr.lower() or "authentication" in proc.stderr.lower()
    assert "wrong" not in proc.stderr  # never a secret in a message
    assert cli.blobs(tmp_path / "store") == set()


def test_credential_helper_is_run(registry_basic, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-imgpulltest"
    helper.write_text("#!/bin/sh\nread url\n"
                      f"printf '{{\"ServerURL\":\"%s\",\"Username\":\"{harness.USER}\",\"Secret\":\"{harness.PASSWORD}\"}}' \"$url\"\n")
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    env = cli.docker_config(tmp_path, credHelpers={registry_basic.host: "imgpulltest"})
    env["PATH"] = f"{bindir}:{os.environ['PATH']}"
    proc = cli.run(["pull", f"{registry_basic.host}/single:latest"], tmp_path / "store", env=env)
    assert proc.returncode == 0, proc.stderr


def test_debug_log_carries_no_secret(registry_basic, tmp_path):
    env = cli.docker_config(tmp_path, {registry_basic.host: auth_entry(harness.USER, harness.PASSWORD)})
    proc = cli.run(["--debug", "pull", f"{registry_basic.host}/single:latest"], tmp_path / "store", env=env)
    assert proc.returncode == 0, proc.stderr
    encoded = base64.b64encode(f"{harness.USER}:{harness.PASSWORD}".encode()).decode()
    assert harness.PASSWORD not in proc.stderr and encoded not in proc.stderr
    assert "Authorization" not in proc.stderr


# ---- Bearer tokens ----

def test_anonymous_token_for_public_repository(registry_token, tmp_path):
    proc = cli.run(["pull", f"{registry_token.host}/public/single:latest"], tmp_path / "store")
    assert proc.returncode == 0, proc.stderr


def test_anonymous_token_denied_for_private_repository(registry_token, tmp_path):
    ref = f"{registry_token.host}/single:latest"
    proc = cli.run(["pull", ref], tmp_path / "store")
    assert proc.returncode != 0
    assert ref in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert cli.blobs(tmp_path / "store") == set()


def test_token_with_credentials_is_fetched_once_per_pull(registry_token, tmp_path):
    env = cli.docker_config(tmp_path, {registry_token.host: auth_entry(harness.USER, harness.PASSWORD)})
    mark = len(registry_token.token_requests())
    proc = cli.run(["pull", f"{registry_token.host}/multi:latest"], tmp_path / "store", env=env)
    assert proc.returncode == 0, proc.stderr
    got = registry_token.token_requests()[mark:]
    # One token for the repository's pull scope serves the manifest and every blob.
    assert len(got) == 1, got


def test_token_with_bad_credentials_fails(registry_token, tmp_path):
    env = cli.docker_config(tmp_path, {registry_token.host: auth_entry(harness.USER, "nope")})
    proc = cli.run(["pull", f"{registry_token.host}/single:latest"], tmp_path / "store", env=env)
    assert proc.returncode != 0
    assert "authentication" in proc.stderr.lower() or "unauthorized" in proc.stderr.lower()
    assert "nope" not in proc.stderr


def test_identity_token_uses_the_oauth2_refresh_grant(registry_token, tmp_path):
    refresh = registry_token.refresh_token_for(harness.USER, harness.PASSWORD)
    env = cli.docker_config(tmp_path, {registry_token.host: {"identitytoken": refresh}})
    mark = len(registry_token.token_requests())
    proc = cli.run(["pull", f"{registry_token.host}/single:latest"], tmp_path / "store", env=env)
    assert proc.returncode == 0, proc.stderr
    assert any(r["method"] == "POST" for r in registry_token.token_requests()[mark:])


# ---- TLS ----

def test_tls_with_test_ca(registry_tls, tmp_path):
    certs = tmp_path / "certs.d" / registry_tls.host
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes(Path(registry_tls.ca_cert_path).read_bytes())
    proc = cli.run(["--certs-dir", str(tmp_path / "certs.d"), "--debug", "pull",
                    f"{registry_tls.host}/single:latest"], tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    assert f"GET https://{registry_tls.host}/v2/single/manifests/latest -> 200" in proc.stderr


def test_tls_without_the_ca_is_a_clear_error(registry_tls, tmp_path):
    ref = f"{registry_tls.host}/single:latest"
    proc = cli.run(["pull", ref], tmp_path / "store")
    assert proc.returncode != 0
    assert "TLS" in proc.stderr and "certs.d" in proc.stderr and ref in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_insecure_registry_skips_verification(registry_tls, tmp_path):
    proc = cli.run(["--insecure-registry", registry_tls.host, "pull", f"{registry_tls.host}/single:latest"],
                   tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
