"""Round trips on the critical path of a pull: what a registry sees, in order.
Over a real network every sequential request costs a round trip (50-150 ms
from a cloud VM to a CDN), so a request that is not needed is time lost.
(The link benchmark, bench/run.sh --link, measures the time itself.)"""
from pathlib import Path

import imgpull_cli as cli


def https_only(tmp_path, reg):
    """certs.d/<host>/hosts.toml naming the registry https:// explicitly, with its CA."""
    d = Path(tmp_path) / "certs.d" / reg.host
    d.mkdir(parents=True)
    (d / "hosts.toml").write_text(f'server = "https://{reg.host}"\nca = "{reg.ca_cert_path}"\n')
    return str(d.parent)


def test_an_https_registry_is_not_pinged(registry_tls, tmp_path):
    """The first request is the manifest's: it says as much as GET /v2/ would
    (reachable, which authentication), so no ping precedes it."""
    certs = https_only(tmp_path, registry_tls)
    registry_tls.clear_requests()
    proc = cli.run(["--certs-dir", certs, "pull", f"{registry_tls.host}/single:latest"], tmp_path / "store")
    assert proc.returncode == 0, proc.stderr
    seen = [(r.method, r.path) for r in registry_tls.requests()]
    assert ("GET", "/v2/") not in seen, seen
    assert seen[0] == ("GET", "/v2/single/manifests/latest"), seen


def test_an_https_registry_asking_for_credentials_gets_them_on_the_second_request(registry_basic, tmp_path):
    """Without a ping the challenge comes with the manifest's 401; the same
    request is sent once more, with the credentials, and the pull goes on."""
    import base64

    from registry import harness
    auth = base64.b64encode(f"{harness.USER}:{harness.PASSWORD}".encode()).decode()
    env = cli.docker_config(tmp_path, {registry_basic.host: {"auth": auth}})
    registry_basic.clear_requests()
    proc = cli.run(["pull", f"{registry_basic.host}/single:latest"], tmp_path / "store", env=env)
    assert proc.returncode == 0, proc.stderr
    statuses = [r.status for r in registry_basic.requests()]
    assert statuses.count(401) == 1, statuses
