"""Mirrors from containerd's hosts.toml: a real pull-through cache (Debian's
docker-registry with `proxy: remoteurl:`) in front of another registry,
fallback to the upstream, capabilities, and a config without fallback."""
import re
from pathlib import Path

import pytest

import imgpull_cli as cli
from registry import harness

UA = re.compile(r'"([^"]*)"\s*$')


def access_lines(reg, since):
    """Raw access-log lines after the marker `since` (query strings kept)."""
    reg.mark()  # lets the log settle
    with open(reg.access_log, "rb") as f:
        f.seek(since)
        return [l for l in f.read().decode(errors="replace").splitlines() if '"' in l]


def by_imgpull(lines):
    return [l for l in lines if "imgpull/" in l]


def write_hosts(tmp_path, namespace_dir, text):
    d = Path(tmp_path) / "certs.d" / namespace_dir
    d.mkdir(parents=True, exist_ok=True)
    (d / "hosts.toml").write_text(text)
    return str(Path(tmp_path) / "certs.d")


def dead_port():
    return harness.free_port()  # nothing listens there (racy, but only for a moment)


@pytest.fixture
def upstream_and_mirror(registry_factory):
    upstream = registry_factory("plain")
    mirror = registry_factory("plain", push=False,
                              extra_config={"proxy": {"remoteurl": upstream.url}})
    return upstream, mirror


def test_pull_goes_through_the_pull_through_cache(upstream_and_mirror, tmp_path):
    upstream, mirror = upstream_and_mirror
    certs = write_hosts(tmp_path, upstream.host, f'''
server = "{upstream.url}"
[host."{mirror.url}"]
  capabilities = ["pull", "resolve"]
''')
    up0, mi0 = upstream.mark(), mirror.mark()
    proc = cli.run(["--certs-dir", certs, "pull", f"{upstream.host}/single:latest"], tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    mirror_lines = by_imgpull(access_lines(mirror, mi0))
    assert any("/v2/single/manifests/latest?ns=127.0.0.1%3A" in l for l in mirror_lines), mirror_lines
    assert any("/v2/single/blobs/sha256:" in l and '" 200 ' in l for l in mirror_lines), mirror_lines
    # The upstream saw the mirror fetching, never imgpull itself.
    upstream_lines = access_lines(upstream, up0)
    assert any("/v2/single/manifests/latest" in l for l in upstream_lines), upstream_lines
    assert any("/v2/single/blobs/sha256:" in l for l in upstream_lines), upstream_lines
    assert by_imgpull(upstream_lines) == []

    # A second machine of the fleet: the cache serves it, the upstream sees
    # no blob request at all.
    up1 = upstream.mark()
    proc = cli.run(["--certs-dir", certs, "pull", f"{upstream.host}/single:latest"], tmp_path / "store2")
    assert proc.returncode == 0, proc.stderr
    assert not any("/blobs/" in l for l in access_lines(upstream, up1))


def test_mirror_down_falls_back_to_upstream(registry_factory, tmp_path):
    upstream = registry_factory("plain")
    port = dead_port()
    certs = write_hosts(tmp_path, upstream.host.replace(":", "_") + "_", f'''
server = "{upstream.url}"
[host."http://127.0.0.1:{port}"]
  capabilities = ["pull", "resolve"]
''')
    up0 = upstream.mark()
    proc = cli.run(["--certs-dir", certs, "pull", f"{upstream.host}/single:latest"], tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    lines = by_imgpull(access_lines(upstream, up0))
    assert any("/v2/single/manifests/latest" in l for l in lines)
    assert any("/blobs/" in l for l in lines)
    assert not any("ns=" in l for l in lines)  # the upstream is asked as itself


def test_mirror_without_the_image_falls_back(registry_factory, tmp_path):
    upstream = registry_factory("plain")
    empty = registry_factory("plain", push=False)
    certs = write_hosts(tmp_path, upstream.host, f'''
[host."{empty.url}"]
''')
    em0 = empty.mark()
    proc = cli.run(["--certs-dir", certs, "pull", f"{upstream.host}/single:latest"], tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    assert any("/manifests/latest" in l and '" 404 ' in l for l in access_lines(empty, em0))


def test_pull_only_mirror_serves_blobs_not_tags(upstream_and_mirror, tmp_path):
    upstream, mirror = upstream_and_mirror
    certs = write_hosts(tmp_path, upstream.host, f'''
server = "{upstream.url}"
[host."{mirror.url}"]
  capabilities = ["pull"]
''')
    up0, mi0 = upstream.mark(), mirror.mark()
    proc = cli.run(["--certs-dir", certs, "pull", f"{upstream.host}/single:latest"], tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    mirror_lines = by_imgpull(access_lines(mirror, mi0))
    upstream_lines = by_imgpull(access_lines(upstream, up0))
    assert not any("/manifests/latest" in l for l in mirror_lines), mirror_lines
    assert any("/v2/single/manifests/latest" in l for l in upstream_lines), upstream_lines
    assert any("/blobs/sha256:" in l for l in mirror_lines), mirror_lines
    assert not any("/blobs/" in l for l in upstream_lines), upstream_lines


def test_no_fallback_when_server_is_the_mirror(registry_factory, tmp_path):
    upstream = registry_factory("plain")
    port_a, port_b = dead_port(), dead_port()
    # containerd's way to say "only the mirrors": server names a mirror too.
    certs = write_hosts(tmp_path, upstream.host, f'''
server = "http://127.0.0.1:{port_b}"
[host."http://127.0.0.1:{port_a}"]
  capabilities = ["pull", "resolve"]
''')
    up0 = upstream.mark()
    proc = cli.run(["--retries", "0", "--certs-dir", certs, "pull", f"{upstream.host}/single:latest"],
                   tmp_path / "store")
    assert proc.returncode != 0
    err = proc.stderr
    assert f"mirror http://127.0.0.1:{port_a}/v2" in err, err
    assert f"http://127.0.0.1:{port_b}/v2" in err, err
    assert "hosts.toml" in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert by_imgpull(access_lines(upstream, up0)) == []


def test_broken_hosts_toml_is_an_error_naming_the_file(registry_plain, tmp_path):
    certs = write_hosts(tmp_path, registry_plain.host, '[host."http://x"]\ncapabilities = ["fetch"]\n')
    proc = cli.run(["--certs-dir", certs, "pull", f"{registry_plain.host}/single:latest"], tmp_path / "store")
    assert proc.returncode != 0
    assert "hosts.toml" in proc.stderr and 'unknown capability "fetch"' in proc.stderr, proc.stderr
