"""Which image a reference means, with as few manifest requests as the store
allows, against the real registry: an up-to-date pull of a tag is one HEAD
(Docker Hub counts manifest GETs against its pull rate limit, HEADs not at
all), documents are fetched by the digest the HEAD named, and an index whose
entry is another index (index -> index -> manifest) is followed to the
platform, stored level by level, and kept by prune and save."""
import json
import re
from pathlib import Path

import pytest

import imgpull_cli as cli
from registry import fixtures

MAX_INDEX_DEPTH = 4  # kMaxIndexDepth, src/imgpull/pull/resolve.h


def manifest_requests(registry, since):
    return [(r.method, r.path, r.status) for r in registry.requests(since=since) if "/manifests/" in r.path]


def blob_requests(registry, since):
    return [r for r in registry.requests(since=since) if "/blobs/" in r.path]


def hexes(*digests):
    return {d.split(":")[1] for d in digests}


@pytest.mark.parametrize("repo, platform", [("single", None), ("v2s2", None), ("index", "linux/amd64")])
def test_an_up_to_date_pull_of_a_tag_is_one_head(registry_plain, tmp_path, repo, platform):
    ref = f"{registry_plain.host}/{repo}:latest"
    args = ["--platform", platform] if platform else []
    root = tmp_path / "store"
    mark = registry_plain.mark()
    cli.run(["pull", *args, ref], root, check=True)
    first = manifest_requests(registry_plain, mark)
    # Nothing under the name yet: the tag is fetched with GET at once (a HEAD
    # would only cost a round trip); below it, by digest (for an index: the
    # platform's manifest).
    assert first[0] == ("GET", f"/v2/{repo}/manifests/latest", 200), first
    assert all(re.fullmatch(r"/v2/\S+/manifests/sha256:[0-9a-f]{64}", path) for _, path, _ in first[1:]), first
    assert len(first) == (2 if repo == "index" else 1), first

    mark = registry_plain.mark()
    again = cli.run(["--debug", "pull", *args, ref], root, check=True)
    assert manifest_requests(registry_plain, mark) == [("HEAD", f"/v2/{repo}/manifests/latest", 200)]
    assert blob_requests(registry_plain, mark) == []
    assert f"Status: Image is up to date for {ref}" in again.stdout
    assert f"Digest: {registry_plain.pushed[f'{repo}:latest']}" in again.stdout
    debug = [l for l in again.stderr.splitlines() if l.startswith("DEBUG")]
    assert [l for l in debug if "/manifests/" in l] == \
        [l for l in debug if re.match(rf"DEBUG \+[0-9.]+s HEAD http://\S+/v2/{repo}/manifests/latest -> 200 ", l)], debug
    assert len([l for l in debug if "/manifests/" in l]) == 1, debug


@pytest.fixture(scope="module")
def nested(registry_plain):
    """index:nested, an OCI index with two entries: the arm64 image (with its
    platform) and index:latest, itself an index, with no platform. So the
    amd64 image is one index further down. Made here because no tool writes
    an index of indexes (skopeo and umoci copy only what exists)."""
    status, _, _, body = registry_plain.get_manifest("index", "latest")
    assert status == 200
    inner = {"mediaType": fixtures.OCI_INDEX, "digest": registry_plain.pushed["index:latest"], "size": len(body)}
    entries = json.loads(body)["manifests"]
    arm64 = next(m for m in entries if m["platform"]["architecture"] == "arm64")
    amd64 = next(m for m in entries if m["platform"]["architecture"] == "amd64")
    outer = fixtures.push_index(registry_plain, "index", "nested", [arm64, inner])
    return {"outer": outer["digest"], "inner": inner["digest"], "amd64": amd64["digest"], "arm64": arm64["digest"],
            "fixture": registry_plain.fixtures["index"]}


def test_nested_index_pulls_unpacks_and_stays_whole(registry_plain, nested, tmp_path):
    host = registry_plain.host
    ref = f"{host}/index:nested"
    root, rootfs = tmp_path / "store", tmp_path / "rootfs"
    mark = registry_plain.mark()
    proc = cli.run(["pull", "--platform", "linux/amd64", "--rootfs", str(rootfs), ref], root, check=True)
    assert f"Digest: {nested['outer']}" in proc.stdout
    assert manifest_requests(registry_plain, mark) == [
        ("GET", "/v2/index/manifests/nested", 200),
        ("GET", f"/v2/index/manifests/{nested['inner']}", 200),
        ("GET", f"/v2/index/manifests/{nested['amd64']}", 200),
    ]
    # The amd64 image, as umoci unpacks it.
    reference = Path(nested["fixture"].reference) / "amd64" / "rootfs"
    for name in ("etc/fixture-arch", "hello.txt"):
        assert (rootfs / name).read_bytes() == (reference / name).read_bytes(), name
    # Every level is stored: the repo digest leads down to the image.
    blobs = cli.blobs(root)
    assert hexes(nested["outer"], nested["inner"], nested["amd64"]) <= blobs
    assert not hexes(nested["arm64"]) & blobs

    # Up to date: one HEAD.
    mark = registry_plain.mark()
    again = cli.run(["pull", "--platform", "linux/amd64", ref], root, check=True)
    assert f"Status: Image is up to date for {ref}" in again.stdout
    assert manifest_requests(registry_plain, mark) == [("HEAD", "/v2/index/manifests/nested", 200)]

    # The local commands walk through both index levels.
    images = cli.run(["images", "--digests"], root, check=True).stdout
    assert nested["outer"] in images, images
    [doc] = json.loads(cli.run(["inspect", ref], root, check=True).stdout)
    assert f"{host}/index@{nested['outer']}" in doc["RepoDigests"]
    assert doc["Architecture"] == "amd64"
    assert cli.run(["verify"], root).returncode == 0
    before = cli.blobs(root)
    pruned = cli.run(["prune", "-v"], root, check=True)
    assert "deleted" not in pruned.stdout, pruned.stdout
    assert cli.blobs(root) == before
    layout = tmp_path / "layout"
    cli.run(["save", "--format", "oci", "-o", str(layout), ref], root, check=True)
    assert hexes(nested["outer"], nested["inner"], nested["amd64"]) <= cli.blobs(layout)
    assert json.loads(cli.skopeo("inspect", f"oci:{layout}:{ref}"))["Architecture"] == "amd64"

    # By the top-level digest: from the store alone.
    mark = registry_plain.mark()
    cli.run(["pull", "--platform", "linux/amd64", f"{host}/index@{nested['outer']}"], root, check=True)
    assert registry_plain.requests(since=mark) == []


def test_nested_index_without_the_platform_lists_what_each_level_offers(registry_plain, nested, tmp_path):
    proc = cli.run(["pull", "--platform", "linux/s390x", f"{registry_plain.host}/index:nested"], tmp_path / "store")
    assert proc.returncode != 0
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert (f"no image for platform linux/s390x: index {nested['outer']} offers: linux/arm64/v8, an index with no "
            f"platform ({nested['inner']}); index {nested['inner']} offers: linux/amd64, linux/arm64/v8") in message


def test_indexes_nested_deeper_than_the_limit_are_refused(registry_plain, nested, tmp_path):
    status, _, _, body = registry_plain.get_manifest("index", "latest")
    levels = [{"mediaType": fixtures.OCI_INDEX, "digest": nested["inner"], "size": len(body)}]
    for depth in range(2, MAX_INDEX_DEPTH + 2):
        levels.append(fixtures.push_index(registry_plain, "index", f"depth-{depth}", [levels[-1]]))
    deepest = cli.run(["pull", "--platform", "linux/amd64", "--rootfs", str(tmp_path / "rootfs"),
                       f"{registry_plain.host}/index:depth-{MAX_INDEX_DEPTH}"], tmp_path / "store")
    assert deepest.returncode == 0, deepest.stderr
    assert (tmp_path / "rootfs" / "etc" / "fixture-arch").read_text() == "amd64\n"
    too_deep = cli.run(["pull", "--platform", "linux/amd64", f"{registry_plain.host}/index:depth-{MAX_INDEX_DEPTH + 1}"],
                       tmp_path / "store")
    assert too_deep.returncode != 0
    assert f"indexes nest deeper than {MAX_INDEX_DEPTH} levels" in too_deep.stderr, too_deep.stderr
    assert all(level["digest"] in too_deep.stderr for level in levels), too_deep.stderr
