"""How `imgpull pull` shows progress: on a real terminal (tmux), to a pipe, with
--json and with -q.

The terminal tests run imgpull in a detached tmux session of a fixed size on
its own server socket, pull an image whose layer downloads the fault proxy
pauses part-way (Fault.stall ... then="continue"), and read the screen with
capture-pane while the layers are paused and after the pull.
"""
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time

import pytest

import imgpull_cli as cli
from faults.proxy import Fault, FaultProxy
from registry import fixtures
from registry.harness import Registry

LAYER_SIZES = (3_000_000, 5_000_000, 4_000_000)
STALL_AT = 0.4       # pause each layer after this share of its bytes ...
STALL_SECONDS = 4.0  # ... for this long

ID = r"[0-9a-f]{12}"
BAR = r"\[=*>\s*\]"
SIZE = r"[\d.]+[kMG]?B"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Image:
    def __init__(self, repo, tag, manifest_digest, layers):
        self.repo, self.tag, self.manifest_digest, self.layers = repo, tag, manifest_digest, layers

    @property
    def ids(self):
        return [d.split(":")[1][:12] for d, _ in self.layers]


def push_layered(reg, repo, sizes):
    """An image of len(sizes) uncompressed tar layers of random bytes."""
    layers = []
    for i, size in enumerate(sizes):
        fd, path = tempfile.mkstemp(prefix="layer-", suffix=".tar", dir=reg.tmpdir)
        os.close(fd)
        try:
            tar_hex, tar_size, _ = fixtures._write_random_tar(path, size)
            fixtures._upload_blob(reg, repo, path, "sha256:" + tar_hex, tar_size)
        finally:
            os.unlink(path)
        layers.append(("sha256:" + tar_hex, tar_size))
    config = {"architecture": "amd64", "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layers]}}
    cfg = json.dumps(config).encode()
    cfg_digest = fixtures._upload_bytes(reg, repo, cfg)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": fixtures.OCI_MANIFEST,
        "config": {"mediaType": fixtures.OCI_CONFIG, "digest": cfg_digest, "size": len(cfg)},
        "layers": [{"mediaType": fixtures.OCI_LAYER_TAR, "digest": d, "size": s} for d, s in layers],
    }).encode()
    r = reg.api("PUT", f"/v2/{repo}/manifests/latest", body=manifest,
                headers={"Content-Type": fixtures.OCI_MANIFEST, "Content-Length": str(len(manifest))})
    assert r.status == 201, r.body
    return Image(repo, "latest", "sha256:" + hashlib.sha256(manifest).hexdigest(), layers)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with Registry("plain", str(tmp_path_factory.mktemp("progress-registry"))) as reg:
        reg.image = push_layered(reg, "slow", LAYER_SIZES)
        yield reg


@pytest.fixture
def slow_proxy(registry):
    """The registry behind a proxy that pauses every layer download once."""
    with FaultProxy(registry.url) as proxy:
        for digest, size in registry.image.layers:
            proxy.add(Fault.stall(after=int(size * STALL_AT), seconds=STALL_SECONDS, then="continue"),
                      path=digest, times=1)
        yield proxy


class Tmux:
    """A detached tmux session on a server socket of its own."""

    def __init__(self, tmp_path, width, height):
        self.socket = f"imgpull-test-{os.getpid()}-{time.monotonic_ns()}"
        self.width, self.height = width, height
        self.tmp_path = tmp_path

    def tmux(self, *args, check=True):
        return subprocess.run(["tmux", "-f", "/dev/null", "-L", self.socket, *args],
                              capture_output=True, text=True, check=check)

    def start(self, argv, env, raw_log=None):
        """Runs argv in the session; raw_log: a file that gets every byte it writes to the terminal."""
        envs = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command = f"env {envs} {shlex.join(argv)}; echo EXIT=$?; sleep 600"
        if raw_log:
            command = "sleep 0.5; " + command  # time to attach pipe-pane first
        self.tmux("new-session", "-d", "-s", "pull", "-x", str(self.width), "-y", str(self.height), command)
        if raw_log:
            self.tmux("pipe-pane", "-o", "-t", "pull", f"cat >> {shlex.quote(str(raw_log))}")

    def screen(self, join=False):
        """The visible rows, trailing blanks stripped, trailing empty rows dropped;
        join=True: rows the terminal wrapped joined into the line they were."""
        args = ["capture-pane", "-p", "-t", "pull"] + (["-J"] if join else [])
        rows = [r.rstrip() for r in self.tmux(*args).stdout.split("\n")]
        while rows and not rows[-1]:
            rows.pop()
        return rows

    def wait_for(self, predicate, timeout=30.0, what="a screen"):
        deadline = time.monotonic() + timeout
        screen = []
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; screen:\n" + "\n".join(screen))

    def resize(self, width, height):
        self.tmux("resize-window", "-t", "pull", "-x", str(width), "-y", str(height))
        self.width, self.height = width, height

    def stop(self):
        self.tmux("kill-server", check=False)


@pytest.fixture
def tmux(tmp_path):
    sessions = []

    def make(width, height):
        t = Tmux(tmp_path, width, height)
        sessions.append(t)
        return t

    yield make
    for t in sessions:
        t.stop()


def pull_argv(root, ref, *extra):
    return [cli.binary(), "--root", str(root), "pull", *extra, ref]


def pull_env(tmp_path):
    return {"DOCKER_CONFIG": str(tmp_path / "no-docker-config"), "TERM": "xterm"}


def exited(screen):
    return any(row.startswith("EXIT=") for row in screen)


def layer_rows(screen, layer_id):
    return [row for row in screen if row.startswith(layer_id + ":")]


def paused_mid_transfer(image, min_downloading):
    """A screen where at least `min_downloading` layers show a progress bar."""
    def check(screen):
        bars = [i for i in image.ids
                if any(re.fullmatch(rf"{i}: Downloading {BAR}\s+{SIZE}/{SIZE}", r) for r in screen)]
        return len(bars) >= min_downloading
    return check


def assert_clean_final_screen(t, image, ref, skip=0):
    """One row per layer, each `Pull complete`; nothing else but docker's lines
    (after `skip` rows printed above the progress)."""
    screen = t.screen()[skip:]
    frame = 1 + len(image.ids) + 1
    assert all(len(row) < t.width for row in screen[:frame]), screen
    # The lines printed after the progress may wrap, as any output does.
    screen = screen[:frame] + t.screen(join=True)[-4:]
    assert screen[-1] == "EXIT=0", screen
    assert screen[0] == "latest: Pulling from slow", screen
    for layer_id in image.ids:
        assert layer_rows(screen, layer_id) == [f"{layer_id}: Pull complete"], screen
    assert re.fullmatch(rf"Downloaded {SIZE} in [\d.]+s \({SIZE}/s\)", screen[1 + len(image.ids)]), screen
    assert screen[-4] == f"Digest: {image.manifest_digest}", screen
    assert screen[-3] == f"Status: Downloaded newer image for {ref}", screen
    assert screen[-2] == ref, screen
    assert len(screen) == frame + 4, screen


def test_terminal_shows_docker_like_progress_redrawn_in_place(registry, slow_proxy, tmux, tmp_path):
    image = registry.image
    ref = f"{slow_proxy.host}/slow:latest"
    t = tmux(100, 30)
    raw_log = tmp_path / "terminal.raw"
    started = time.monotonic()
    # Two at a time: the third layer waits for a slot.
    t.start(pull_argv(tmp_path / "store", ref, "--max-concurrent-downloads", "2"), pull_env(tmp_path), raw_log)

    mid = t.wait_for(paused_mid_transfer(image, 2), what="two layers paused mid-transfer")
    assert mid[0] == "latest: Pulling from slow", mid
    for layer_id in image.ids:
        assert len(layer_rows(mid, layer_id)) == 1, mid
    downloading = [r for r in mid if " Downloading [" in r]
    assert len(downloading) == 2, mid
    for row in downloading:
        # Paused at 40%: the bar is part-way, the numbers below the total.
        assert re.fullmatch(rf"{ID}: Downloading \[=+>\s+\]\s+{SIZE}/{SIZE}", row), row
    assert layer_rows(mid, image.ids[2]) == [f"{image.ids[2]}: Waiting"], mid
    total = mid[1 + len(image.ids)]
    assert re.fullmatch(rf"Total: {SIZE}/{SIZE}(  {SIZE}/s(  ETA \S+)?)?", total), mid
    assert len(mid) == 1 + len(image.ids) + 1, mid
    assert all(len(row) < 100 for row in mid), mid

    t.wait_for(exited, timeout=60, what="the pull to end")
    elapsed = time.monotonic() - started
    assert_clean_final_screen(t, image, ref)

    # What was written: at most ~10 frames a second, each one moving the cursor
    # up once to the first changed line; no whole-screen clears; the header,
    # which never changes, written once.
    raw = raw_log.read_bytes()
    frames = len(re.findall(rb"\x1b\[\d+A", raw))
    assert 10 <= frames <= 10 * elapsed + 2, (frames, elapsed)
    assert b"\x1b[J" not in raw and b"\x1b[2K" not in raw and b"\x1b[2J" not in raw
    assert raw.count(b"latest: Pulling from slow") == 1


def test_terminal_resized_mid_pull_keeps_one_row_per_line(registry, slow_proxy, tmux, tmp_path):
    image = registry.image
    ref = f"{slow_proxy.host}/slow:latest"
    t = tmux(120, 30)
    t.start(pull_argv(tmp_path / "store", ref), pull_env(tmp_path))
    wide = t.wait_for(paused_mid_transfer(image, 3), what="three layers paused mid-transfer")
    assert max(len(r) for r in wide) > 60, wide  # lines tmux will have to rewrap

    t.resize(60, 30)
    narrow = t.wait_for(lambda s: paused_mid_transfer(image, 3)(s) and all(len(r) < 60 for r in s),
                        timeout=STALL_SECONDS, what="the frame redrawn at 60 columns")
    # No fragments of the wider lines: every row is one of the frame's lines.
    assert narrow[0] == "latest: Pulling from slow", narrow
    for layer_id in image.ids:
        assert len(layer_rows(narrow, layer_id)) == 1, narrow
    assert re.fullmatch(r"Total: .*", narrow[-1]), narrow
    assert len(narrow) == 1 + len(image.ids) + 1, narrow

    t.wait_for(exited, timeout=60, what="the pull to end")
    assert_clean_final_screen(t, image, ref)


def test_terminal_log_lines_go_above_the_progress(registry, slow_proxy, tmux, tmp_path):
    image = registry.image
    ref = f"{slow_proxy.host}/slow:latest"
    t = tmux(100, 40)
    argv = pull_argv(tmp_path / "store", ref, "--rootfs", str(tmp_path / "rootfs"))
    argv.insert(1, "-D")  # a DEBUG line for every HTTP exchange, some while the layers download
    t.start(argv, pull_env(tmp_path))
    t.wait_for(exited, timeout=60, what="the pull to end")
    rows = t.screen()
    header = rows.index("latest: Pulling from slow")
    logged = t.screen(join=True)[:-(1 + len(image.ids) + 1 + 4)]
    assert all(row.startswith("DEBUG ") for row in logged), logged
    for digest, _ in image.layers:  # the layer GETs, logged as each finished
        assert any(f"/blobs/{digest} -> 200" in row for row in logged), logged
    assert_clean_final_screen(t, image, ref, skip=header)
    assert (tmp_path / "rootfs" / "random.bin").is_file()


def test_terminal_quiet_prints_only_the_reference(registry, tmux, tmp_path):
    ref = f"{registry.host}/slow:latest"
    t = tmux(100, 30)
    t.start(pull_argv(tmp_path / "store", ref, "-q"), pull_env(tmp_path))
    assert t.wait_for(exited, what="the pull to end") == [ref, "EXIT=0"]


def test_pipe_gets_dockers_plain_lines(registry, tmp_path):
    image = registry.image
    ref = f"{registry.host}/slow:latest"
    proc = cli.run(["pull", ref], tmp_path / "store", check=True)
    assert "\x1b" not in proc.stdout and "\r" not in proc.stdout
    lines = proc.stdout.splitlines()
    assert lines[0] == "latest: Pulling from slow"
    for layer_id in image.ids:
        # One line per state change, in order; no progress messages, as docker to a pipe.
        assert layer_rows(lines, layer_id) == [f"{layer_id}: {s}" for s in
                                               ("Pulling fs layer", "Verifying Checksum",
                                                "Download complete", "Pull complete")], lines
    assert lines[-3:] == [f"Digest: {image.manifest_digest}",
                          f"Status: Downloaded newer image for {ref}", ref]
    assert len(lines) == 1 + 4 * len(image.ids) + 3, lines


def test_pipe_quiet_prints_only_the_reference(registry, tmp_path):
    ref = f"{registry.host}/slow:latest"
    proc = cli.run(["pull", "-q", ref], tmp_path / "store", check=True)
    assert proc.stdout == ref + "\n"
    proc = cli.run(["pull", "-q", ref], tmp_path / "store", check=True)  # up to date: the same
    assert proc.stdout == ref + "\n"


def json_lines(stdout):
    lines = stdout.splitlines()
    assert lines, stdout
    return [json.loads(line) for line in lines]


def test_json_is_one_object_per_line_ending_with_a_summary(registry, tmp_path):
    image = registry.image
    ref = f"{registry.host}/slow:latest"
    proc = cli.run(["pull", "--json", "--rootfs", str(tmp_path / "rootfs"), ref], tmp_path / "store", check=True)
    events = json_lines(proc.stdout)
    assert events[0] == {"event": "resolved",
                         "layers": [{"digest": d, "size": s} for d, s in image.layers]}
    for digest, size in image.layers:
        mine = [e for e in events[1:-1] if e["layer"] == digest]
        assert all(e["total"] == size and 0 <= e["current"] <= size for e in mine), mine
        kinds = [e["event"] for e in mine]
        assert kinds[0] == "waiting" and kinds[-1] == "complete", kinds
        assert {"downloading", "verifying", "downloaded", "extracting"} <= set(kinds), kinds
        downloaded = [e["current"] for e in mine if e["event"] == "downloading"]
        assert downloaded == sorted(downloaded) and downloaded[-1] > 0, downloaded
        extracted = [e["current"] for e in mine if e["event"] == "extracting"]
        assert extracted[-1] == size, extracted
    assert events[-1] == {"event": "pulled", "name": ref, "reference": ref,
                          "digest": image.manifest_digest, "manifest": image.manifest_digest,
                          "config": events[-1]["config"], "up_to_date": False,
                          "bytes_downloaded": sum(s for _, s in image.layers)}

    again = json_lines(cli.run(["pull", "--json", ref], tmp_path / "store", check=True).stdout)
    assert [e["event"] for e in again] == ["resolved"] + ["exists"] * len(image.layers) + ["pulled"]
    assert again[-1]["up_to_date"] is True


def test_json_reports_an_error_as_an_event(registry, tmp_path):
    proc = cli.run(["pull", "--json", f"{registry.host}/slow:no-such-tag"], tmp_path / "store")
    assert proc.returncode == 1
    events = json_lines(proc.stdout)
    assert events[-1]["event"] == "error" and events[-1]["code"] == "not found", events
    assert "no-such-tag" in events[-1]["message"], events
    assert proc.stderr.startswith("Error: "), proc.stderr


def test_json_and_quiet_exclude_each_other(registry, tmp_path):
    proc = cli.run(["pull", "--json", "-q", f"{registry.host}/slow:latest"], tmp_path / "store")
    assert proc.returncode != 0 and "excludes" in proc.stderr, proc.stderr
