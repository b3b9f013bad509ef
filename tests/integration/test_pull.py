"""The pull, end to end, against Debian's docker-registry (plain HTTP flavour)."""
import json
import re
import subprocess
from pathlib import Path

import pytest

import imgpull_cli as cli


def skopeo_raw(registry, repo_tag):
    out = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{registry.host}/{repo_tag}"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def blob_gets(requests):
    return [r for r in requests if r[0] == "GET" and "/blobs/" in r[1]]


def test_pull_prints_what_docker_prints_and_stores_an_oci_layout(registry_plain, tmp_path):
    root = tmp_path / "store"
    ref = f"{registry_plain.host}/single:latest"
    proc = cli.run(["pull", ref], root, check=True)
    manifest = skopeo_raw(registry_plain, "single:latest")
    layer_ids = [l["digest"].split(":")[1][:12] for l in manifest["layers"]]
    lines = proc.stdout.splitlines()
    assert lines[0] == "latest: Pulling from single"
    for layer_id in layer_ids:
        assert f"{layer_id}: Pulling fs layer" in lines
        assert f"{layer_id}: Download complete" in lines
        assert f"{layer_id}: Pull complete" in lines
    assert re.fullmatch(r"Digest: sha256:[0-9a-f]{64}", lines[-3])
    assert lines[-2] == f"Status: Downloaded newer image for {ref}"
    assert lines[-1] == ref
    # The digest printed is the registry's digest of what it serves for the tag.
    raw = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
                         capture_output=True, text=True, check=True).stdout
    assert lines[-3] == "Digest: " + json.loads(raw)["Digest"]

    # Every blob is in the store; nothing is left in ingest/.
    stored = cli.blobs(root)
    for d in [manifest["config"]["digest"]] + [l["digest"] for l in manifest["layers"]]:
        assert d.split(":")[1] in stored
    assert cli.ingest_leftovers(root) == []
    assert cli.index_names(root) == [ref]

    # OCI tools read the store as it is.
    inspect = subprocess.run(["skopeo", "inspect", f"oci:{root}:{ref}"], capture_output=True,
                             text=True, check=True).stdout
    assert json.loads(inspect)["Layers"] == [l["digest"] for l in manifest["layers"]]
    stat = subprocess.run(["umoci", "stat", "--image", f"{root}:{ref}"], capture_output=True,
                          text=True, check=True).stdout
    assert "LAYER" in stat


def test_second_pull_fetches_no_blobs(registry_plain, tmp_path):
    root = tmp_path / "store"
    ref = f"{registry_plain.host}/multi:latest"
    cli.run(["pull", ref], root, check=True)
    mark = len(registry_plain.requests())
    proc = cli.run(["pull", ref], root, check=True)
    after = registry_plain.requests()[mark:]
    assert blob_gets(after) == [], after
    assert "Status: Image is up to date for " + ref in proc.stdout
    assert proc.stdout.count("Already exists") == len(skopeo_raw(registry_plain, "multi:latest")["layers"])


def test_image_sharing_layers_fetches_only_what_is_missing(registry_plain, tmp_path):
    root = tmp_path / "store"
    cli.run(["pull", f"{registry_plain.host}/single:latest"], root, check=True)
    mark = len(registry_plain.requests())
    # The same image pushed as Docker schema 2: same layer blobs, another manifest.
    proc = cli.run(["pull", f"{registry_plain.host}/v2s2:latest"], root, check=True)
    after = registry_plain.requests()[mark:]
    layers = [l["digest"] for l in skopeo_raw(registry_plain, "v2s2:latest")["layers"]]
    for layer in layers:
        assert not any(layer in path for _, path, _ in blob_gets(after)), after
        assert f"{layer.split(':')[1][:12]}: Already exists" in proc.stdout


def test_docker_schema2_image_is_readable_by_oci_tools(registry_plain, tmp_path):
    root = tmp_path / "store"
    ref = f"{registry_plain.host}/v2s2:latest"
    proc = cli.run(["pull", ref], root, check=True)
    served = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
                            capture_output=True, text=True, check=True).stdout
    assert "Digest: " + json.loads(served)["Digest"] in proc.stdout
    inspect = json.loads(subprocess.run(["skopeo", "inspect", f"oci:{root}:{ref}"],
                                        capture_output=True, text=True, check=True).stdout)
    assert inspect["Layers"] == json.loads(served)["Layers"]
    images = cli.run(["images", "--digests"], root, check=True).stdout
    assert json.loads(served)["Digest"] in images


def test_pull_by_digest_verifies_and_names_by_digest(registry_plain, tmp_path):
    root = tmp_path / "store"
    first = cli.run(["pull", f"{registry_plain.host}/single:latest"], root, check=True)
    digest = re.search(r"Digest: (sha256:[0-9a-f]{64})", first.stdout).group(1)
    by_digest = f"{registry_plain.host}/single@{digest}"
    fresh = tmp_path / "fresh"
    proc = cli.run(["pull", by_digest], fresh, check=True)
    assert proc.stdout.splitlines()[-1] == by_digest
    assert cli.index_names(fresh) == [by_digest]
    # Everything is local now: a second pull by digest needs no registry at all.
    mark = len(registry_plain.requests())
    again = cli.run(["pull", by_digest], fresh, check=True)
    assert registry_plain.requests()[mark:] == []
    assert "Image is up to date" in again.stdout
    # tag@digest: the digest wins.
    both = cli.run(["pull", f"{registry_plain.host}/single:nonexistent@{digest}"], tmp_path / "both",
                   check=True)
    assert digest in both.stdout


def test_pull_by_wrong_digest_fails_cleanly(registry_plain, tmp_path):
    root = tmp_path / "store"
    wrong = "sha256:" + "0" * 64
    proc = cli.run(["pull", f"{registry_plain.host}/single@{wrong}"], root)
    assert proc.returncode != 0
    assert f"{registry_plain.host}/single@{wrong}" in proc.stderr
    assert "unknown" in proc.stderr.lower()
    assert len(proc.stderr.strip().splitlines()) == 1
    assert cli.blobs(root) == set() and cli.index_names(root) == []


def test_index_follows_the_platform(registry_plain, tmp_path):
    index = skopeo_raw(registry_plain, "index:latest")
    by_arch = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    for arch in ("amd64", "arm64"):
        root = tmp_path / arch
        cli.run(["pull", "--platform", f"linux/{arch}", f"{registry_plain.host}/index:latest"], root,
                check=True)
        assert by_arch[arch].split(":")[1] in cli.blobs(root)
        other = "arm64" if arch == "amd64" else "amd64"
        assert by_arch[other].split(":")[1] not in cli.blobs(root)
        doc = json.loads((root / "index.json").read_text())
        assert doc["manifests"][0]["platform"]["architecture"] == arch
    # The default is this machine's platform.
    host_arch = {"x86_64": "amd64", "aarch64": "arm64"}[subprocess.run(
        ["uname", "-m"], capture_output=True, text=True).stdout.strip()]
    root = tmp_path / "default"
    cli.run(["pull", f"{registry_plain.host}/index:latest"], root, check=True)
    assert by_arch[host_arch].split(":")[1] in cli.blobs(root)


def test_no_matching_platform_lists_what_is_offered(registry_plain, tmp_path):
    proc = cli.run(["pull", "--platform", "linux/s390x", f"{registry_plain.host}/index:latest"],
                   tmp_path / "store")
    assert proc.returncode != 0
    assert "linux/s390x" in proc.stderr
    assert "linux/amd64" in proc.stderr and "linux/arm64" in proc.stderr


def test_images_lists_like_docker(registry_plain, tmp_path):
    root = tmp_path / "store"
    cli.run(["pull", f"{registry_plain.host}/single:latest"], root, check=True)
    cli.run(["pull", f"{registry_plain.host}/multi:latest"], root, check=True)
    out = cli.run(["images"], root, check=True).stdout.splitlines()
    assert re.fullmatch(r"REPOSITORY +TAG +IMAGE ID +CREATED +SIZE", out[0])
    rows = {line.split()[0]: line.split() for line in out[1:]}
    single = rows[f"{registry_plain.host}/single"]
    config = skopeo_raw(registry_plain, "single:latest")["config"]["digest"]
    assert single[1] == "latest"
    assert single[2] == config.split(":")[1][:12]
    assert re.search(r"(ago|N/A)", " ".join(single[3:]))
    assert re.fullmatch(r"[0-9.]+(B|kB|MB|GB)", single[-1])
    assert [l for l in cli.run(["images", "-q"], root, check=True).stdout.split()] == \
        [r.split()[2] for r in out[1:]]


def test_debug_logs_every_exchange_and_no_secret(registry_plain, tmp_path):
    proc = cli.run(["--debug", "pull", f"{registry_plain.host}/single:latest"], tmp_path / "store",
                   check=True)
    debug = [l for l in proc.stderr.splitlines() if l.startswith("DEBUG")]
    assert debug, proc.stderr
    for line in debug:
        assert cli.DEBUG_LINE.match(line), line
    # A first pull GETs the tag; the next one asks it with HEAD (free where
    # manifest GETs are counted) and, up to date, GETs nothing.
    assert any(re.search(r"GET http://\S+/v2/single/manifests/latest -> 200", l) for l in debug)
    again = cli.run(["--debug", "pull", f"{registry_plain.host}/single:latest"], tmp_path / "store", check=True)
    manifest_lines = [l for l in again.stderr.splitlines() if l.startswith("DEBUG") and "/manifests/" in l]
    assert len(manifest_lines) == 1 and re.search(r"HEAD http://\S+/v2/single/manifests/latest -> 200",
                                                  manifest_lines[0]), manifest_lines


def test_concurrency_flag_is_honoured(registry_plain, tmp_path):
    for n in ("1", "3", "8"):
        cli.run(["pull", "--max-concurrent-downloads", n, f"{registry_plain.host}/multi:latest"],
                tmp_path / n, check=True)
    a, b = cli.blobs(tmp_path / "1"), cli.blobs(tmp_path / "8")
    assert a == b and len(a) >= 4
    bad = cli.run(["pull", "--max-concurrent-downloads", "0", f"{registry_plain.host}/multi:latest"],
                  tmp_path / "0")
    assert bad.returncode != 0


def test_one_gib_layer_streams_in_bounded_memory(registry_plain, tmp_path, big_image):
    ref = f"{registry_plain.host}/{big_image}"
    # A fresh interpreter whose only child is imgpull, so ru_maxrss is imgpull's peak.
    proc = subprocess.run(["/usr/bin/env", "python3", "-c",
                           "import resource,subprocess,sys;"
                           "r=subprocess.run(sys.argv[1:]).returncode;"
                           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
                           "sys.exit(r)",
                           cli.binary(), "--root", str(tmp_path / "store"), "pull", "-q", ref],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    peak_kib = int(proc.stdout.strip().splitlines()[-1])
    assert peak_kib < 100 * 1024, f"peak RSS {peak_kib} KiB"
    sizes = [p.stat().st_size for p in (tmp_path / "store" / "blobs" / "sha256").iterdir()]
    assert max(sizes) >= 1 << 30
