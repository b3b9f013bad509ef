"""Local image commands against images pulled from a real registry: inspect,
history, tag, images (filter, --format json), rmi, prune (gc) and verify."""
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

import imgpull_cli as cli
from faults.proxy import Fault, FaultProxy






def hexes(digests):
    return {d.split(":")[1] for d in digests}


def image_blobs(manifest):
    return hexes([manifest["config"]["digest"]] + [l["digest"] for l in manifest["layers"]])


@pytest.fixture
def store(registry_plain, tmp_path):
    """A store holding single, v2s2 (the same image pushed as Docker schema 2:
    same config and layer) and multi (3 layers)."""
    root = tmp_path / "store"
    for repo in ("single", "v2s2", "multi"):
        cli.run(["pull", "-q", f"{registry_plain.host}/{repo}:latest"], root, check=True)
    return root


def test_inspect_is_docker_image_inspect(registry_plain, store):
    host = registry_plain.host
    proc = cli.run(["inspect", f"{host}/single"], store, check=True)
    [doc] = json.loads(proc.stdout)
    manifest = registry_plain.skopeo_inspect("single:latest", raw=True)
    config = registry_plain.skopeo_inspect("single:latest", config=True)
    assert list(doc)[:8] == ["Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created",
                             "DockerVersion", "Author"]
    assert doc["Id"] == manifest["config"]["digest"]
    # single and v2s2 share their config: one image ID, two names, two repo digests.
    assert doc["RepoTags"] == [f"{host}/single:latest", f"{host}/v2s2:latest"]
    assert doc["RepoDigests"] == [f"{host}/single@{registry_plain.skopeo_inspect('single:latest')['Digest']}",
                                  f"{host}/v2s2@{registry_plain.skopeo_inspect('v2s2:latest')['Digest']}"]
    assert doc["Created"] == config["created"]
    assert doc["Author"] == "imgpull tests"
    assert doc["Config"] == config["config"]
    assert (doc["Architecture"], doc["Os"]) == ("amd64", "linux")
    assert doc["RootFS"] == {"Type": "layers", "Layers": config["rootfs"]["diff_ids"]}
    assert doc["Size"] == manifest["config"]["size"] + sum(l["size"] for l in manifest["layers"])
    # By image ID (short, as `images` prints it) it is the same image.
    by_id = cli.run(["inspect", doc["Id"].split(":")[1][:12]], store, check=True)
    assert json.loads(by_id.stdout)[0]["Id"] == doc["Id"]


def test_inspect_of_a_missing_image_says_so_after_what_it_found(registry_plain, store):
    proc = cli.run(["inspect", f"{registry_plain.host}/multi", "nosuch:1"], store)
    assert proc.returncode == 1
    docs = json.loads(proc.stdout)
    assert [d["RepoTags"] for d in docs] == [[f"{registry_plain.host}/multi:latest"]]
    assert proc.stderr == "Error: No such image: nosuch:1\n"
    alone = cli.run(["inspect", "nosuch"], store)
    assert (alone.returncode, json.loads(alone.stdout), alone.stderr) == (1, [], "Error: No such image: nosuch\n")


def test_history_is_docker_history(registry_plain, store):
    ref = f"{registry_plain.host}/multi"
    config = registry_plain.skopeo_inspect("multi:latest", config=True)
    manifest = registry_plain.skopeo_inspect("multi:latest", raw=True)
    lines = cli.run(["history", ref], store, check=True).stdout.splitlines()
    assert re.fullmatch(r"IMAGE +CREATED +CREATED BY +SIZE +COMMENT", lines[0])
    rows = lines[1:]
    history = list(reversed(config["history"]))
    assert len(rows) == len(history)
    image_id = manifest["config"]["digest"].split(":")[1][:12]
    assert rows[0].startswith(image_id + " ")
    assert all(r.startswith("<missing> ") for r in rows[1:])
    # Non-empty entries carry their layer's size, bottom layer last.
    layer_sizes = [l["size"] for l in manifest["layers"]]
    expected = []
    for h in config["history"]:
        expected.append("0B" if h.get("empty_layer") else human_size(layer_sizes.pop(0)))
    expected.reverse()
    for row, h, size in zip(rows, history, expected):
        assert h["created_by"] in row, row
        assert f"   {size}   " in row, (row, size)
        if h.get("comment"):
            assert row.endswith(h["comment"]), row
        assert re.search(r" (ago|N/A) ", row), row

    quiet = cli.run(["history", "-q", ref], store, check=True).stdout.split()
    assert quiet == [image_id] + ["<missing>"] * (len(rows) - 1)
    full = cli.run(["history", "--no-trunc", "-q", ref], store, check=True).stdout.split()
    assert full[0] == manifest["config"]["digest"]
    missing = cli.run(["history", "nosuch"], store)
    assert (missing.returncode, missing.stderr) == (1, "Error: No such image: nosuch\n")


def human_size(n):
    """go-units HumanSize, as docker (and imgpull) print sizes."""
    units = ["B", "kB", "MB", "GB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000
        i += 1
    return f"{n:.3g}{units[i]}"


def test_tag_adds_a_name_that_images_and_oci_tools_see(registry_plain, store):
    host = registry_plain.host
    assert cli.run(["tag", f"{host}/single", "mine/app:1"], store, check=True).stdout == ""
    cli.run(["tag", f"{host}/single", "mine/app"], store, check=True)  # :latest, as docker
    rows = [json.loads(l) for l in cli.run(["images", "--format", "json", "mine/app"], store,
                                           check=True).stdout.splitlines()]
    assert sorted(r["Tag"] for r in rows) == ["1", "latest"]
    single = json.loads(cli.run(["images", "--format", "{{json .}}", f"{host}/single"], store,
                                check=True).stdout)
    for r in rows:
        assert r["Repository"] == "mine/app"
        assert r["ID"] == single["ID"]
        assert r["Size"] == single["Size"]
        assert r["Digest"] == "<none>", "mine/app's registry never served it"
    assert set(single) >= {"Repository", "Tag", "ID", "CreatedSince", "CreatedAt", "Size", "Digest"}
    assert single["Digest"] == registry_plain.skopeo_inspect("single:latest")["Digest"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC", single["CreatedAt"])
    assert single["CreatedSince"].endswith(" ago")
    # The tag is an index.json record like any other: skopeo reads the image under it.
    assert "docker.io/mine/app:1" in cli.index_names(store)
    layers = json.loads(cli.skopeo("inspect", f"oci:{store}:docker.io/mine/app:1"))["Layers"]
    assert layers == [l["digest"] for l in registry_plain.skopeo_inspect("single:latest", raw=True)["layers"]]
    refused = cli.run(["tag", f"{host}/single", "mine/app@sha256:" + "a" * 64], store)
    assert refused.returncode == 1 and "digest" in refused.stderr
    missing = cli.run(["tag", "nosuch", "mine/app:2"], store)
    assert (missing.returncode, missing.stderr) == (1, "Error: No such image: nosuch\n")


def test_images_filters_by_repository_and_tag(registry_plain, store):
    host = registry_plain.host

    def repos(*args):
        out = cli.run(["images", *args], store, check=True).stdout.splitlines()
        return sorted(l.split()[0] + ":" + l.split()[1] for l in out[1:])

    assert repos(f"{host}/multi") == [f"{host}/multi:latest"]
    assert repos(f"{host}/multi:latest") == [f"{host}/multi:latest"]
    assert repos(f"{host}/multi:other") == []
    assert repos(f"{host}/*") == sorted(f"{host}/{r}:latest" for r in ("single", "v2s2", "multi"))
    assert repos(f"{host}/s*") == [f"{host}/single:latest"]
    assert len(repos()) == 3
    json_lines = cli.run(["images", "--format", "json", f"{host}/*"], store, check=True).stdout.splitlines()
    assert len(json_lines) == 3 and all(json.loads(l)["Tag"] == "latest" for l in json_lines)
    assert cli.run(["images", "--format", "yaml"], store).returncode != 0


def test_rmi_untags_and_deletes_like_docker(registry_plain, store):
    host = registry_plain.host
    config = registry_plain.skopeo_inspect("single:latest", raw=True)["config"]["digest"]
    cli.run(["tag", f"{host}/single", "mine/app:1"], store, check=True)
    # The image has three names (single, v2s2, mine/app): by ID it is ambiguous.
    by_id = cli.run(["rmi", config.split(":")[1][:12]], store)
    assert by_id.returncode == 1 and "conflict" in by_id.stderr
    first = cli.run(["rmi", "mine/app:1"], store, check=True)
    assert first.stdout == "Untagged: mine/app:1\n"
    second = cli.run(["rmi", f"{host}/v2s2"], store, check=True)
    assert second.stdout == f"Untagged: {host}/v2s2:latest\n"
    last = cli.run(["rmi", f"{host}/single:latest", "nosuch"], store)
    assert last.returncode == 1
    assert last.stdout == (f"Untagged: {host}/single:latest\n"
                           f"Untagged: {host}/single@{registry_plain.skopeo_inspect('single:latest')['Digest']}\n"
                           f"Deleted: {config}\n")
    assert last.stderr == "Error: No such image: nosuch\n"
    assert cli.index_names(store) == [f"{host}/multi:latest"]
    # Blobs stay until prune.
    assert image_blobs(registry_plain.skopeo_inspect("single:latest", raw=True)) <= cli.blobs(store)


def test_prune_frees_the_removed_image_and_keeps_what_is_shared(registry_plain, store):
    host = registry_plain.host
    single = registry_plain.skopeo_inspect("single:latest", raw=True)
    multi = registry_plain.skopeo_inspect("multi:latest", raw=True)
    v2s2_digest = registry_plain.skopeo_inspect("v2s2:latest")["Digest"]
    before = cli.blobs(store)
    assert cli.run(["prune"], store, check=True).stdout == "Total reclaimed space: 0B\n"
    assert cli.blobs(store) == before

    # v2s2 shares single's config and layer: only its own manifests go.
    cli.run(["rmi", f"{host}/v2s2"], store, check=True)
    proc = cli.run(["prune", "-v"], store, check=True)
    deleted = re.findall(r"^deleted: sha256:([0-9a-f]{64}) \(\S+\)$", proc.stdout, re.M)
    assert v2s2_digest.split(":")[1] in deleted  # the registry's Docker manifest
    assert len(deleted) == 2  # and the OCI manifest imgpull made beside it
    assert image_blobs(single) <= cli.blobs(store)
    assert before - cli.blobs(store) == set(deleted)
    assert re.search(r"^Total reclaimed space: [0-9.]+(B|kB)$", proc.stdout, re.M)

    # Without single, its blobs go too; multi's stay untouched.
    cli.run(["rmi", f"{host}/single"], store, check=True)
    proc = cli.run(["gc", "-v"], store, check=True)
    remaining = cli.blobs(store)
    assert not (image_blobs(single) & remaining)
    assert image_blobs(multi) <= remaining
    assert registry_plain.skopeo_inspect("multi:latest")["Digest"].split(":")[1] in remaining
    assert len(remaining) == len(image_blobs(multi)) + 1  # + its manifest
    freed = sum(l["size"] for l in single["layers"]) + single["config"]["size"]
    assert f"Total reclaimed space: {human_size(freed + len(cli.raw_manifest(registry_plain, 'single:latest')))}" \
        in proc.stdout
    verify = cli.run(["verify"], store)
    assert verify.returncode == 0, verify.stdout
    # OCI tools still read what is left.
    cli.skopeo("inspect", f"oci:{store}:{host}/multi:latest")



def test_prune_deletes_stale_partial_downloads_only(store):
    ingest = Path(store) / "ingest"
    stale = ingest / ("a" * 64 + ".partial")
    fresh = ingest / ("b" * 64 + ".partial")
    stale.write_bytes(b"x" * 2000)
    fresh.write_bytes(b"y" * 10)
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    proc = cli.run(["prune", "-v"], store, check=True)
    assert f"deleted: ingest/{stale.name} (2kB)" in proc.stdout
    assert "Total reclaimed space: 2kB" in proc.stdout
    assert not stale.exists() and fresh.exists()


def test_prune_waits_for_a_pull_in_progress(registry_plain, tmp_path):
    """A pull commits layers before it records the image: a prune run in the
    middle must wait for it rather than delete them as unreachable."""
    root = tmp_path / "store"
    manifest = registry_plain.skopeo_inspect("multi:latest", raw=True)
    first, last = manifest["layers"][0]["digest"], manifest["layers"][-1]["digest"]
    with FaultProxy(registry_plain.url) as proxy:
        proxy.add(Fault.delay(3), path=last, method="GET")
        pull = subprocess.Popen([cli.binary(), "--root", str(root), "pull", "--max-concurrent-downloads", "1",
                                 f"{proxy.host}/multi:latest"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while first.split(":")[1] not in cli.blobs(root):
                assert pull.poll() is None, pull.communicate()
                assert time.monotonic() < deadline, "the first layer never arrived"
                time.sleep(0.05)
            assert cli.index_names(root) == [], "not recorded yet: its blobs are unreachable"
            prune = cli.run(["prune", "-v"], root)
            out, err = pull.communicate(timeout=60)
        finally:
            if pull.poll() is None:
                pull.kill()
    assert pull.returncode == 0, err
    assert prune.returncode == 0, prune.stderr
    assert "Waiting for the other imgpull processes" in prune.stderr
    assert "deleted:" not in prune.stdout
    assert image_blobs(manifest) <= cli.blobs(root)
    verify = cli.run(["verify"], root)
    assert verify.returncode == 0, verify.stdout


def test_verify_catches_a_flipped_byte_and_a_missing_blob(registry_plain, store):
    clean = cli.run(["verify"], store)
    assert clean.returncode == 0, clean.stdout
    assert re.fullmatch(r"Verified \d+ blobs \(\S+\) and 3 images: no problems\n", clean.stdout)

    multi = registry_plain.skopeo_inspect("multi:latest", raw=True)
    layer = multi["layers"][1]["digest"]
    path = Path(store) / "blobs" / "sha256" / layer.split(":")[1]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    import hashlib
    actual = "sha256:" + hashlib.sha256(bytes(data)).hexdigest()
    proc = cli.run(["verify"], store)
    assert proc.returncode == 1
    assert f"corrupt: {layer} hashes to {actual}\n" in proc.stdout
    assert proc.stdout.endswith(": 1 problem\n")

    single_config = registry_plain.skopeo_inspect("single:latest", raw=True)["config"]["digest"]
    (Path(store) / "blobs" / "sha256" / single_config.split(":")[1]).unlink()
    proc = cli.run(["verify"], store)
    assert proc.returncode == 1
    assert f"missing: {single_config} (config of {registry_plain.host}/single:latest)" in proc.stdout
    assert f"missing: {single_config} (config of {registry_plain.host}/v2s2:latest)" in proc.stdout
    assert proc.stdout.endswith(": 3 problems\n")


def test_every_new_command_has_help_with_an_example(store):
    for command in ("inspect", "history", "tag", "rmi", "prune", "verify", "save", "images"):
        proc = cli.run([command, "--help"], store)
        assert proc.returncode == 0, proc.stderr
        assert "Example" in proc.stdout, (command, proc.stdout)
