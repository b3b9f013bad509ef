"""Failures: each is one line naming the image and the reason, a non-zero exit, and a clean store."""
import socket

import pytest

import imgpull_cli as cli


def assert_clean_failure(proc, root, *needles):
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle.lower() in lines[0].lower(), lines[0]
    assert cli.blobs(root) == set()
    assert cli.ingest_leftovers(root) == []
    assert cli.index_names(root) == []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_registry_down(tmp_path):
    ref = f"127.0.0.1:{free_port()}/x:latest"
    proc = cli.run(["pull", ref], tmp_path / "store")
    assert_clean_failure(proc, tmp_path / "store", ref, "connect")


def test_unresolvable_host(tmp_path):
    ref = "registry.invalid/x:latest"  # .invalid never resolves (RFC 2606)
    proc = cli.run(["pull", ref], tmp_path / "store", timeout=120)
    assert_clean_failure(proc, tmp_path / "store", ref, "resolve")


def test_unknown_tag(registry_plain, tmp_path):
    ref = f"{registry_plain.host}/single:no-such-tag"
    proc = cli.run(["pull", ref], tmp_path / "store")
    assert_clean_failure(proc, tmp_path / "store", ref, "manifest unknown")


def test_unknown_repository(registry_plain, tmp_path):
    ref = f"{registry_plain.host}/no/such/repo:latest"
    proc = cli.run(["pull", ref], tmp_path / "store")
    assert_clean_failure(proc, tmp_path / "store", ref, "unknown")


@pytest.mark.parametrize("bad,reason", [
    ("Upper/Case:x", "lowercase"),
    ("a//b", "empty path component"),
    ("x@sha256:abc", "64 hex"),
    ("x:" + "t" * 129, "longer than 128"),
    ("x@md5:d41d8cd98f00b204e9800998ecf8427e", "md5"),
])
def test_invalid_reference(tmp_path, bad, reason):
    proc = cli.run(["pull", bad], tmp_path / "store")
    assert proc.returncode != 0
    assert reason in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_denied_by_the_token_server(registry_token, tmp_path):
    # The token server answers 403 for this account: a refusal, not a bad password.
    env = cli.docker_config(tmp_path, {registry_token.host: {"auth": "YmFubmVkOmJhbm5lZA=="}})  # banned:banned
    ref = f"{registry_token.host}/single:latest"
    proc = cli.run(["pull", ref], tmp_path / "store", env=env)
    assert_clean_failure(proc, tmp_path / "store", ref)
