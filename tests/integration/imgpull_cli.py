"""Running the real imgpull binary from integration tests."""
import json
import os
import re
import subprocess
from pathlib import Path

# "DEBUG +0.052s GET URL -> 200 (1.2 KiB, 14 ms)" (when it started, since the client was made),
# then the rate-limit headers when the
# registry sent any: " [ratelimit-limit: 100;w=21600, ratelimit-remaining: 99;w=21600]".
DEBUG_LINE = re.compile(r"^DEBUG \+\d+\.\d{3}s (GET|HEAD|POST) (\S+) -> (\d{3}|error: .+) \((\d+ B|\d+\.\d [KMGT]iB), \d+ ms\)"
                        r"( \[((docker-)?ratelimit(-[a-z]+)?: [^,\]]*(, )?)+\])?$")


def binary():
    path = os.environ.get("IMGPULL_BIN")
    if not path or not Path(path).is_file():
        raise RuntimeError("IMGPULL_BIN must name the built imgpull binary (ctest sets it)")
    return path


def run(args, root, env=None, timeout=600, check=False):
    """Runs `imgpull --root ROOT ARGS...`; returns the CompletedProcess."""
    full_env = dict(os.environ)
    full_env.setdefault("DOCKER_CONFIG", str(Path(root).parent / "no-docker-config"))
    if env:
        full_env.update(env)
    proc = subprocess.run([binary(), "--root", str(root), *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"imgpull {' '.join(args)} failed ({proc.returncode}):\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def docker_config(tmp_path, auths=None, **extra):
    """Writes a docker config.json into a fresh directory; returns env for DOCKER_CONFIG."""
    d = Path(tmp_path) / "docker-config"
    d.mkdir(parents=True, exist_ok=True)
    doc = dict(extra)
    if auths is not None:
        doc["auths"] = auths
    (d / "config.json").write_text(json.dumps(doc))
    return {"DOCKER_CONFIG": str(d)}


def blobs(root):
    """The set of blob hex digests in a store."""
    d = Path(root) / "blobs" / "sha256"
    return {p.name for p in d.iterdir()} if d.exists() else set()


def ingest_leftovers(root):
    d = Path(root) / "ingest"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def recorded_ranges(partial):
    """The byte ranges [(start, end)] a blob fetched in pieces holds, from the
    record beside its partial file (<hex>.ranges); None without one (the
    partial is then a prefix of the blob)."""
    record = Path(partial).with_suffix(".ranges")
    if not record.exists():
        return None
    lines = record.read_text().splitlines()
    assert lines and lines[0] == "imgpull-ranges 1", lines
    return [tuple(int(x) for x in line.split()) for line in lines[1:]]


def held_bytes(partial):
    """Bytes of its blob a partial file holds: its recorded ranges, else its size."""
    held = recorded_ranges(partial)
    return Path(partial).stat().st_size if held is None else sum(e - s for s, e in held)


def index_names(root):
    p = Path(root) / "index.json"
    if not p.exists():
        return []
    doc = json.loads(p.read_text())
    return [m.get("annotations", {}).get("org.opencontainers.image.ref.name") for m in doc["manifests"]]


def skopeo(*args):
    """Runs skopeo on local images (oci:, docker-archive:); returns its stdout."""
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, check=True).stdout


def raw_manifest(registry, repo_tag) -> bytes:
    """The manifest bytes the registry serves for REPO:TAG, as skopeo fetches them."""
    proc = registry.skopeo_inspect(repo_tag, raw=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def staging_dirs(parent):
    """The staging directories (.<DIR>.imgpull-staging-<id>) of root filesystems in PARENT."""
    return sorted(n for n in os.listdir(parent) if ".imgpull-staging-" in n)


def staging_records(root):
    """The store's records of staging directories (ROOT/staging/<id>)."""
    d = Path(root) / "staging"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []
