"""Self-tests of the real-registry harness: the registries, token server,
pushes and fixtures are real (checked with skopeo and raw HTTP)."""

import base64
import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from registry import fixtures
from registry.harness import MANIFEST_ACCEPT, PASSWORD, USER, FLAVOURS, Registry

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

EXPECTED = {  # repo -> (layer count, architecture)
    "single": (1, "amd64"),
    "multi": (3, "amd64"),
    "index": (1, "amd64"),  # skopeo inspect resolves the index to this host's platform
    "v2s2": (1, "amd64"),
}


@pytest.fixture(params=FLAVOURS)
def reg(request):
    return request.getfixturevalue(f"registry_{request.param}")


def test_pushed_fixtures_inspect(reg):
    repos = dict(EXPECTED)
    if reg.flavour == "token":
        repos["public/single"] = EXPECTED["single"]
    assert set(reg.pushed) == {f"{r}:latest" for r in repos}
    for repo, (layers, arch) in repos.items():
        info = reg.skopeo_inspect(f"{repo}:latest")
        assert len(info["Layers"]) == layers, repo
        assert info["Architecture"] == arch and info["Os"] == "linux", repo
        raw = reg.skopeo_inspect(f"{repo}:latest", raw=True)
        assert raw["schemaVersion"] == 2
    single = reg.skopeo_inspect("single:latest")
    assert single["Digest"] == reg.fixtures["single"].info["manifest_digest"]
    assert single["Env"] == ["FIXTURE=single"]
    assert single["Labels"] == {"org.example.fixture": "single"}
    # v2s2 really is Docker schema 2, the others OCI
    assert reg.skopeo_inspect("v2s2:latest", raw=True)["mediaType"] == DOCKER_V2
    status, ctype, digest, body = reg.get_manifest("single", "latest")
    assert (status, ctype) == (200, OCI_MANIFEST)
    assert "mediaType" not in json.loads(body)  # umoci writes none
    status, ctype, digest, body = reg.get_manifest("v2s2", "latest")
    assert (status, ctype) == (200, DOCKER_V2)


def test_index_has_both_platforms(reg):
    status, ctype, digest, body = reg.get_manifest("index", "latest")
    assert (status, ctype) == (200, OCI_INDEX)
    idx = json.loads(body)
    assert digest == reg.pushed["index:latest"] == reg.fixtures["index"].info["index_digest"]
    plats = {(m["platform"]["os"], m["platform"]["architecture"]) for m in idx["manifests"]}
    assert plats == {("linux", "amd64"), ("linux", "arm64")}
    for m in idx["manifests"]:  # each child manifest was pushed too
        st, ct, dg, _ = reg.get_manifest("index", m["digest"])
        assert (st, ct, dg) == (200, OCI_MANIFEST, m["digest"])
    # skopeo picks arm64 when told to
    p = subprocess.run(["/usr/bin/skopeo", "--override-arch", "arm64", "inspect", "--config",
                        *reg.skopeo_flags(), f"docker://{reg.host}/index:latest"],
                       capture_output=True, env=reg.skopeo_env(), check=True)
    assert json.loads(p.stdout)["architecture"] == "arm64"


def test_requests_sees_gets(reg):
    reg.clear_requests()
    info = reg.skopeo_inspect("multi:latest", config=True)
    assert info["architecture"] == "amd64"
    reqs = reg.requests()
    cfg = reg.fixtures["multi"].info["config_digest"]
    assert ("GET", "/v2/multi/manifests/latest", 200) in reqs
    assert reqs.count(("GET", f"/v2/multi/blobs/{cfg}", 200)) == 1
    layer_gets = [r for r in reqs if r.method == "GET" and "/blobs/" in r.path and cfg not in r.path]
    assert layer_gets == []  # --config fetches no layer
    mark = reg.mark()
    st = reg.api("GET", f"/v2/multi/blobs/{reg.fixtures['multi'].info['layer_digests'][0]}")
    assert st.status == 200
    assert [r.path for r in reg.requests(since=mark) if r.status == 200] == \
        [f"/v2/multi/blobs/{reg.fixtures['multi'].info['layer_digests'][0]}"]
    reg.clear_requests()
    assert reg.requests() == []


def test_blob_contents_match_layout(reg):
    fx = reg.fixtures["single"]
    digest = fx.info["layer_digests"][0]
    r = reg.api("GET", f"/v2/single/blobs/{digest}")
    assert r.status == 200
    assert "sha256:" + hashlib.sha256(r.body).hexdigest() == digest
    with open(os.path.join(fx.layout, "blobs", "sha256", digest.split(":")[1]), "rb") as f:
        assert f.read() == r.body


def test_basic_needs_credentials(registry_basic):
    reg = registry_basic
    reg.clear_requests()
    assert reg.api("GET", "/v2/", auth=None).status == 401
    r = reg.api("GET", "/v2/single/manifests/latest", auth=None,
                headers={"Accept": MANIFEST_ACCEPT})
    assert r.status == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic ")
    p = reg.skopeo_inspect("single:latest", creds=False, check=False)
    assert p.returncode != 0
    assert b"401" in p.stderr or b"unauthorized" in p.stderr.lower()
    p = reg.skopeo_inspect("single:latest", creds=(USER, "wrong"), check=False)
    assert p.returncode != 0
    assert all(r.status == 401 for r in reg.requests())
    assert reg.api("GET", "/v2/", auth=(USER, PASSWORD)).status == 200
    assert reg.get_manifest("single", "latest")[0] == 200


def test_token_anonymous_public_only(registry_token):
    reg = registry_token
    ts = reg.token_server
    ts.clear_requests()
    r = reg.api("GET", "/v2/single/manifests/latest", auth=None)
    assert r.status == 401
    chal = r.headers["WWW-Authenticate"]
    assert chal.startswith("Bearer ") and f'realm="{ts.realm}"' in chal
    assert 'scope="repository:single:pull"' in chal
    info = reg.skopeo_inspect("public/single:latest", creds=False)
    assert len(info["Layers"]) == 1
    p = reg.skopeo_inspect("single:latest", creds=False, check=False)
    assert p.returncode != 0
    anon = [t for t in ts.requests() if not t.has_auth]
    assert anon and all(t.user is None and t.method == "GET" for t in anon)
    assert any("repository:public/single:pull" in t.query.get("scope", []) for t in anon)
    # alice can read single
    assert reg.skopeo_inspect("single:latest")["Architecture"] == "amd64"
    assert any(t.user == USER and t.has_auth for t in ts.requests())


def test_token_oauth_post_and_refresh(registry_token):
    reg = registry_token
    ts = reg.token_server

    def post(fields):
        data = urllib.parse.urlencode(fields).encode()
        try:
            with urllib.request.urlopen(ts.realm, data) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    def manifest_with(token, repo):
        return reg.api("GET", f"/v2/{repo}/manifests/latest", auth=None,
                       headers={"Accept": MANIFEST_ACCEPT,
                                "Authorization": f"Bearer {token}"}).status

    st, body = post({"grant_type": "password", "username": USER, "password": PASSWORD,
                     "service": ts.service, "client_id": "imgpull-tests",
                     "access_type": "offline", "scope": "repository:single:pull"})
    assert st == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert manifest_with(body["access_token"], "single") == 200
    assert manifest_with(body["access_token"], "multi") == 401  # scope is per repo
    st, body2 = post({"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                      "service": ts.service, "client_id": "imgpull-tests",
                      "scope": "repository:multi:pull"})
    assert st == 200 and "refresh_token" not in body2
    assert manifest_with(body2["access_token"], "multi") == 200
    assert post({"grant_type": "password", "username": USER, "password": "nope"})[0] == 401
    assert post({"grant_type": "refresh_token", "refresh_token": "bogus"})[0] == 401
    assert post({"grant_type": "magic"})[0] == 400
    last = ts.requests()[-5:]
    assert [t.grant_type for t in last] == ["password", "refresh_token", "password",
                                            "refresh_token", "magic"]
    assert last[0].form["password"] == ["***"] and not last[0].has_auth
    # GET with Basic and offline_token=true also hands out a refresh token
    req = urllib.request.Request(
        ts.realm + "?" + urllib.parse.urlencode(
            {"service": ts.service, "scope": "repository:multi:pull", "offline_token": "true"}),
        headers={"Authorization": "Basic " + base64.b64encode(
            f"{USER}:{PASSWORD}".encode()).decode()})
    with urllib.request.urlopen(req) as resp:
        got = json.load(resp)
    assert got["token"] == got["access_token"] and got["refresh_token"]


def test_token_expiry_controls(registry_token):
    reg = registry_token
    ts = reg.token_server
    good = ts.issue_token(USER, ["repository:single:pull"], expires_in=2)
    old_skew = ts.exp_skew
    ts.exp_skew = -70
    try:
        stale = ts.issue_token(USER, ["repository:single:pull"], expires_in=2)
    finally:
        ts.exp_skew = old_skew
    hdr = {"Accept": MANIFEST_ACCEPT}
    assert reg.api("GET", "/v2/single/manifests/latest", auth=None,
                   headers={**hdr, "Authorization": f"Bearer {good}"}).status == 200
    assert reg.api("GET", "/v2/single/manifests/latest", auth=None,
                   headers={**hdr, "Authorization": f"Bearer {stale}"}).status == 401
    ts.fail_next(1, 503)
    req = urllib.request.Request(ts.realm + "?service=" + ts.service)
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req)
    assert ei.value.code == 503
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200


def test_short_token_lifetime_registry(registry_factory):
    reg = registry_factory("token", push=False, token_expires_in=2)
    assert reg.token_server.expires_in == 2
    fx = fixtures.get("single")
    from registry.harness import push
    assert push(reg, fx.layout, "latest", "single:latest") == fx.info["manifest_digest"]
    st = reg.api("GET", f"/v2/single/blobs/{fx.info['config_digest']}")
    assert st.status == 200


def test_tls_needs_ca(registry_tls):
    reg = registry_tls
    assert reg.url.startswith("https://127.0.0.1:")
    assert os.path.isfile(reg.ca_cert_path)
    p = reg.skopeo_inspect("single:latest", tls_verify=True, check=False)
    assert p.returncode != 0
    assert b"certificate" in p.stderr
    assert reg.skopeo_inspect("single:latest")["Architecture"] == "amd64"
    # and with plain python: the system trust store refuses, the test CA works
    import ssl
    with pytest.raises(urllib.error.URLError) as ei:
        urllib.request.urlopen(reg.url + "/v2/", context=ssl.create_default_context())
    assert isinstance(ei.value.reason, ssl.SSLCertVerificationError)
    ctx = ssl.create_default_context(cafile=reg.ca_cert_path)
    with urllib.request.urlopen(reg.url + "/v2/", context=ctx) as resp:
        assert resp.status == 200
    with urllib.request.urlopen(f"https://localhost:{reg.port}/v2/", context=ctx) as resp:
        assert resp.status == 200
    # plain http to the https port does not work
    with pytest.raises(Exception):
        urllib.request.urlopen(f"http://{reg.host}/v2/", timeout=5).read()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_big_blob(flavour, request):
    reg = request.getfixturevalue(f"registry_{flavour}")
    size = 3 * 1024 * 1024 + 123
    big = fixtures.big_blob(reg, "big", size, tag="small")
    assert big.layer_size == 512 + size + ((-size) % 512) + 1024
    info = reg.skopeo_inspect("big:small")
    assert info["Layers"] == [big.layer_digest]
    st, ctype, digest, body = reg.get_manifest("big", "small")
    assert (st, ctype, digest) == (200, OCI_MANIFEST, big.manifest_digest)
    layer = json.loads(body)["layers"][0]
    assert layer == {"mediaType": "application/vnd.oci.image.layer.v1.tar",
                     "digest": big.layer_digest, "size": big.layer_size}
    r = reg.api("GET", f"/v2/big/blobs/{big.layer_digest}")
    assert r.status == 200 and len(r.body) == big.layer_size
    assert "sha256:" + hashlib.sha256(r.body).hexdigest() == big.layer_digest
    data = r.body[512:512 + size]
    assert hashlib.sha256(data).hexdigest() == big.file_sha256
    assert not [f for f in os.listdir(reg.tmpdir) if f.startswith("bigblob-")]


def test_fixture_contents():
    """What umoci itself extracts from the fixtures (the reference trees)."""
    single = fixtures.get("single")
    root = os.path.join(single.reference, "rootfs")
    with open(os.path.join(root, "hello.txt")) as f:
        assert f.read() == "hello from imgpull fixture single\n"
    assert os.stat(os.path.join(root, "bin/hello.sh")).st_mode & 0o777 == 0o755
    assert os.stat(os.path.join(root, "srv/secret.txt")).st_mode & 0o777 == 0o600
    assert os.readlink(os.path.join(root, "srv/link-to-hello")) == "../hello.txt"
    assert os.path.isfile(os.path.join(root, "srv/dir with space/file.txt"))
    assert single.layers == 1 and single.info["architecture"] == "amd64"

    multi = fixtures.get("multi")
    srv = os.path.join(multi.reference, "rootfs", "srv")
    assert multi.layers == 3
    assert os.path.samefile(f"{srv}/data/a.txt", f"{srv}/data/a-hard.txt")
    assert os.readlink(f"{srv}/data/a-sym") == "a.txt"
    assert not os.path.lexists(f"{srv}/data/gone.txt")
    assert not os.path.lexists(f"{srv}/olddir")
    assert os.path.isdir(f"{srv}/data/config")
    assert sorted(os.listdir(f"{srv}/opq")) == ["new.txt"]
    assert sorted(os.listdir(f"{srv}/data")) == ["a-hard.txt", "a-sym", "a.txt",
                                                 "config", "sub"]
    # the layers hold the real whiteout / opaque entries
    import gzip
    import tarfile
    names = []
    for digest in multi.info["layer_digests"]:
        path = os.path.join(multi.layout, "blobs", "sha256", digest.split(":")[1])
        with gzip.open(path) as g, tarfile.open(fileobj=g) as t:
            names.append({m.name: m for m in t.getmembers()})
    assert "srv/data/.wh.gone.txt" in names[1] and "srv/.wh.olddir" in names[1]
    assert names[1]["srv/data/a.txt"].islnk() and names[1]["srv/data/a-sym"].issym()
    assert "srv/opq/.wh..wh..opq" in names[2] and names[2]["srv/data/config"].isdir()

    index = fixtures.get("index")
    for arch in ("amd64", "arm64"):
        with open(os.path.join(index.reference, arch, "rootfs/etc/fixture-arch")) as f:
            assert f.read() == f"{arch}\n"
        assert index.info["platforms"][arch]["architecture"] == arch


def test_registry_start_failure_reports_log(monkeypatch):
    import tempfile
    from registry import harness
    tmp = tempfile.mkdtemp(prefix="imgpull-registry-broken-")
    reg = Registry("plain", tmp)
    monkeypatch.setattr(harness, "START_TIMEOUT", 5)
    orig = reg._write_config

    def broken():
        orig()
        with open(reg.config_path, "a") as f:
            f.write("storage:\n  nosuchdriver: {}\n")
    reg._write_config = broken
    try:
        with pytest.raises(harness.HarnessError) as ei:
            reg.start()
        assert "registry.log" in str(ei.value)
        assert "exited" in str(ei.value)
        assert reg.proc is None
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


def test_token_shortcuts_and_banned_account(registry_token):
    reg = registry_token
    ts = reg.token_server
    mark = len(reg.token_requests())
    rt = reg.refresh_token_for(USER, PASSWORD)
    assert len(reg.token_requests()) == mark  # minted directly
    data = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": rt,
                                   "service": ts.service,
                                   "scope": "repository:single:pull"}).encode()
    with urllib.request.urlopen(ts.realm, data) as resp:
        assert json.load(resp)["access_token"]
    got = reg.token_requests()[mark:]
    assert [r["method"] for r in got] == ["POST"] and got[0].user == USER
    # banned/banned: right password, refused with 403 on GET and POST
    p = reg.skopeo_inspect("public/single:latest", creds=("banned", "banned"), check=False)
    assert p.returncode != 0
    assert reg.token_requests()[-1]["status"] == 403
    data = urllib.parse.urlencode({"grant_type": "password", "username": "banned",
                                   "password": "banned"}).encode()
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(ts.realm, data)
    assert ei.value.code == 403


@pytest.mark.skipif(os.environ.get("IMGPULL_SKIP_BIG") == "1", reason="IMGPULL_SKIP_BIG=1")
def test_big_image_fixture(registry_plain, big_image):
    """The conftest big_image (1 GiB unless IMGPULL_BIG_BLOB_SIZE says otherwise)."""
    assert str(big_image) == "big:latest" and f"{big_image}" == big_image.ref
    assert big_image.layer_size >= big_image.file_size >= 1 << 20
    mark = registry_plain.mark()
    r = registry_plain.api("HEAD", f"/v2/big/blobs/{big_image.layer_digest}")
    assert r.status == 200
    assert int(r.headers["Content-Length"]) == big_image.layer_size
    st, ctype, digest, _ = registry_plain.get_manifest("big", "latest")
    assert (st, digest) == (200, big_image.manifest_digest)
    assert registry_plain.requests(since=mark) == [
        ("HEAD", f"/v2/big/blobs/{big_image.layer_digest}", 200),
        ("GET", "/v2/big/manifests/latest", 200)]
