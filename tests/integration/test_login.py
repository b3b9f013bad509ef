"""imgpull login / logout against real registries (htpasswd Basic, Bearer
tokens), stored as docker login stores them: config.json auths, or a
credential helper (a fake docker-credential-* script here)."""
import base64
import json
import os
import stat
import subprocess
from pathlib import Path

import imgpull_cli as cli
from registry import harness


def login(args, tmp_path, password=harness.PASSWORD, env=None):
    full_env = dict(os.environ)
    full_env["DOCKER_CONFIG"] = str(tmp_path / "dc")
    full_env.update(env or {})
    return subprocess.run([cli.binary(), "login", *args], input=password, capture_output=True, text=True,
                          env=full_env, timeout=60)


def logout(args, tmp_path, env=None):
    full_env = dict(os.environ)
    full_env["DOCKER_CONFIG"] = str(tmp_path / "dc")
    full_env.update(env or {})
    return subprocess.run([cli.binary(), "logout", *args], capture_output=True, text=True, env=full_env,
                          timeout=60, stdin=subprocess.DEVNULL)


def config(tmp_path):
    return tmp_path / "dc" / "config.json"


def seed_config(tmp_path, doc):
    config(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    config(tmp_path).write_text(json.dumps(doc))
    os.chmod(config(tmp_path), 0o600)


OTHER = {"currentContext": "desktop-linux",
         "auths": {"other.example": {"auth": base64.b64encode(b"bob:secret").decode()}},
         "proxies": {"default": {"httpProxy": "http://proxy.example:3128"}},
         "x-unknown-key": [1, 2, 3]}


def test_login_basic_stores_auth_and_pull_uses_it(registry_basic, tmp_path):
    seed_config(tmp_path, OTHER)
    proc = login(["-u", harness.USER, "--password-stdin", registry_basic.host], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Login Succeeded"
    assert "stored unencrypted" in proc.stderr
    doc = json.loads(config(tmp_path).read_text())
    expected = base64.b64encode(f"{harness.USER}:{harness.PASSWORD}".encode()).decode()
    assert doc["auths"][registry_basic.host] == {"auth": expected}
    for key in ("currentContext", "proxies", "x-unknown-key"):
        assert doc[key] == OTHER[key]
    assert doc["auths"]["other.example"] == OTHER["auths"]["other.example"]
    assert stat.S_IMODE(config(tmp_path).stat().st_mode) == 0o600
    assert [p.name for p in config(tmp_path).parent.iterdir()] == ["config.json"]  # no temp file left

    pulled = cli.run(["pull", f"{registry_basic.host}/single:latest"], tmp_path / "store",
                     env={"DOCKER_CONFIG": str(tmp_path / "dc")})
    assert pulled.returncode == 0, pulled.stderr

    out = logout([registry_basic.host], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"Removing login credentials for {registry_basic.host}"
    doc = json.loads(config(tmp_path).read_text())
    assert registry_basic.host not in doc["auths"]
    assert doc["auths"]["other.example"] == OTHER["auths"]["other.example"]
    assert doc["x-unknown-key"] == OTHER["x-unknown-key"]
    again = logout([registry_basic.host], tmp_path)
    assert again.returncode == 0 and again.stdout.strip() == f"Not logged in to {registry_basic.host}"


def test_login_creates_the_file_with_mode_0600(registry_basic, tmp_path):
    proc = login(["-u", harness.USER, "-p", harness.PASSWORD, f"http://{registry_basic.host}/"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "--password-stdin" in proc.stderr  # the warning for -p
    assert stat.S_IMODE(config(tmp_path).stat().st_mode) == 0o600
    assert list(json.loads(config(tmp_path).read_text())["auths"]) == [registry_basic.host]


def test_wrong_password_is_refused_and_the_file_untouched(registry_basic, tmp_path):
    seed_config(tmp_path, OTHER)
    before = config(tmp_path).read_bytes()
    mtime = config(tmp_path).stat().st_mtime_ns
    proc = login(["-u", harness.USER, "--password-stdin", registry_basic.host], tmp_path, password="nope\n")
    assert proc.returncode != 0
    assert "wrong username or password" in proc.stderr, proc.stderr
    assert registry_basic.host in proc.stderr
    assert "nope" not in proc.stderr
    assert config(tmp_path).read_bytes() == before and config(tmp_path).stat().st_mtime_ns == mtime


def test_login_token_registry(registry_token, tmp_path):
    proc = login(["-u", harness.USER, "--password-stdin", registry_token.host], tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(config(tmp_path).read_text())
    assert base64.b64decode(doc["auths"][registry_token.host]["auth"]).decode() == \
        f"{harness.USER}:{harness.PASSWORD}"
    bad = login(["-u", harness.USER, "--password-stdin", registry_token.host], tmp_path / "x", password="nope")
    assert bad.returncode != 0
    assert "authentication as alice failed" in bad.stderr, bad.stderr
    assert not (tmp_path / "x" / "dc" / "config.json").exists()


def test_login_with_credential_helper(registry_basic, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "helper.log"
    helper = bindir / "docker-credential-imgpulltest"
    # Records each call: the verb, then its stdin.
    helper.write_text(f"#!/bin/sh\n{{ echo \"$1\"; cat; echo; }} >> {log}\n"
                      "if [ \"$1\" = get ]; then "
                      f"printf '{{\"ServerURL\":\"x\",\"Username\":\"{harness.USER}\",\"Secret\":\"{harness.PASSWORD}\"}}'; fi\n")
    helper.chmod(0o755)
    seed_config(tmp_path, {"credsStore": "imgpulltest", "x-unknown-key": True})
    env = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    proc = login(["-u", harness.USER, "--password-stdin", registry_basic.host], tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "unencrypted" not in proc.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "store"
    assert json.loads(calls[1]) == {"ServerURL": registry_basic.host, "Username": harness.USER,
                                    "Secret": harness.PASSWORD}
    doc = json.loads(config(tmp_path).read_text())
    assert doc["auths"][registry_basic.host] == {}  # docker keeps an entry without secrets
    assert doc["credsStore"] == "imgpulltest" and doc["x-unknown-key"] is True
    assert harness.PASSWORD not in config(tmp_path).read_text()

    out = logout([registry_basic.host], tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert "erase" in log.read_text().splitlines()
    assert registry_basic.host in log.read_text().split("erase\n", 1)[1]
    assert registry_basic.host not in json.loads(config(tmp_path).read_text())["auths"]


def test_non_tty_without_password_is_an_error(registry_basic, tmp_path):
    full_env = dict(os.environ, DOCKER_CONFIG=str(tmp_path / "dc"))
    proc = subprocess.run([cli.binary(), "login", "-u", harness.USER, registry_basic.host], capture_output=True,
                          text=True, env=full_env, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert "non TTY" in proc.stderr
