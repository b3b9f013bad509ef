"""Resume across processes: a pull stopped by SIGINT or killed with SIGKILL
leaves its partial blob in ingest/, and the next `imgpull pull` re-hashes it
and fetches only the rest (Range). Wrong bytes are fetched once more from zero."""
import hashlib
import os
import signal
import subprocess
import re
import time
from pathlib import Path

import pytest

import imgpull_cli as cli
import synth_images
from faults.proxy import Fault, FaultProxy
from registry.harness import Registry

LAYER_BYTES = 32 * 1024 * 1024
RATE = 8 * 1024 * 1024  # throttled: a whole layer takes 4 s, so a signal lands mid-transfer
FAST = ["--retries", "3", "--retry-max-wait", "0.2"]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    with Registry("plain", str(tmp_path_factory.mktemp("resume-registry"))) as reg:
        yield reg, synth_images.push_image(reg, "resume", [LAYER_BYTES])


@pytest.fixture
def proxy(image):
    reg, _ = image
    with FaultProxy(reg.url) as p:
        yield p


def pull_args(proxy, img, root, *extra):
    return [cli.binary(), "--root", str(root), *FAST, "pull", *extra, f"{proxy.host}/{img.ref}"]


def start(proxy, img, root, *extra):
    env = dict(os.environ, DOCKER_CONFIG=str(Path(root).parent / "no-docker-config"))
    return subprocess.Popen(pull_args(proxy, img, root, *extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


# A blob carried whole by one connection resumes from its first missing byte
# with an open-ended Range; one fetched in pieces resumes each missing range
# with a closed one.
MODES = {"one-connection": ["--max-connections", "1"], "pieces": []}
# Bytes sent for a layer pulled once, over its size: one connection wastes
# nothing; pieces cut short (another connection took the rest, or the pull
# stopped) waste what was on its way to them when they stopped.
WASTE = {"one-connection": 1.05, "pieces": 1.15}


def partial_size(root):
    """The bytes of the layer the partial file holds (its record's ranges, for pieces)."""
    sizes = [cli.held_bytes(p) for p in (Path(root) / "ingest").glob("*.partial")]
    return max(sizes, default=0)


def check_resumed_gets(gets, kept, mode, size):
    """After an interruption: one connection asks for the rest with bytes=kept-;
    pieces ask only closed ranges, for no byte already held."""
    assert gets[0].range is None or mode == "pieces", gets
    if mode == "one-connection":
        assert [g.range for g in gets] == [None, f"bytes={kept}-"], gets
        return
    for g in gets:
        assert re.fullmatch(r"bytes=\d+-\d+", g.range or ""), f"not a closed range: {g!r}"


def wait_for_partial(proc, root, at_least, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if partial_size(root) >= at_least:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"no partial of {at_least} bytes within {timeout}s")


def layer(img):
    return img.layers[0]


@pytest.mark.parametrize("mode", MODES)
def test_sigint_stops_cleanly_and_the_next_pull_resumes(proxy, image, tmp_path, mode):
    _, img = image
    root = tmp_path / "store"
    proxy.add(Fault.throttle(RATE), path=layer(img), times=None)
    proc = start(proxy, img, root, *MODES[mode])
    wait_for_partial(proc, root, 8 * 1024 * 1024)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    stopped_in = time.monotonic() - t0
    print(f"SIGINT -> exit {proc.returncode} in {stopped_in:.2f}s; stderr: {err.strip()}")
    assert proc.returncode == 130, err
    assert "interrupted by SIGINT" in err and str(root / "ingest") in err, err
    assert stopped_in < 3, stopped_in
    kept = partial_size(root)
    assert kept >= 8 * 1024 * 1024
    assert layer(img).split(":")[1] not in cli.blobs(root)
    assert cli.index_names(root) == []

    proxy.clear_rules()
    t0 = time.monotonic()
    done = cli.run([*FAST, "pull", *MODES[mode], f"{proxy.host}/{img.ref}"], root)
    resumed_in = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    assert f"Resuming from byte {kept} of {img.layer_sizes[0]}" in done.stdout, done.stdout
    gets = synth_images.blob_gets(proxy, layer(img))
    check_resumed_gets(gets, kept, mode, img.layer_sizes[0])
    sent = proxy.bytes_sent(path=layer(img))
    print(f"partial kept {kept} B; bytes sent in all {sent} B for a {img.layer_sizes[0]} B layer; "
          f"resumed pull took {resumed_in:.2f}s")
    assert sent < WASTE[mode] * img.layer_sizes[0]
    assert cli.ingest_leftovers(root) == []
    cli.run(["verify"], root, check=True)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rootfs", [False, True], ids=["store", "rootfs"])
def test_sigkill_leaves_a_partial_the_next_pull_continues(proxy, image, tmp_path, rootfs, mode):
    _, img = image
    root = tmp_path / "store"
    proxy.add(Fault.throttle(RATE), path=layer(img), times=None)
    extra = ["--rootfs", str(tmp_path / "rootfs-killed")] if rootfs else []
    proc = start(proxy, img, root, *MODES[mode], *extra)
    wait_for_partial(proc, root, 6 * 1024 * 1024)
    proc.kill()
    proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGKILL
    kept = partial_size(root)

    proxy.clear_rules()
    extra = ["--rootfs", str(tmp_path / "rootfs")] if rootfs else []
    done = cli.run([*FAST, "pull", *MODES[mode], *extra, f"{proxy.host}/{img.ref}"], root)
    assert done.returncode == 0, done.stderr
    gets = synth_images.blob_gets(proxy, layer(img))
    check_resumed_gets(gets, kept, mode, img.layer_sizes[0])
    sent = proxy.bytes_sent(path=layer(img))
    print(f"killed with {kept} B on disk; {sent} B sent in all for {img.layer_sizes[0]} B")
    assert sent < WASTE[mode] * img.layer_sizes[0]
    assert cli.ingest_leftovers(root) == []
    if rootfs:
        for path, sha in img.files.items():
            data = (tmp_path / "rootfs" / path.lstrip("/")).read_bytes()
            assert hashlib.sha256(data).hexdigest() == sha


@pytest.mark.parametrize("mode", MODES)
def test_a_wrong_byte_is_fetched_once_more_from_zero(proxy, image, tmp_path, mode):
    _, img = image
    root = tmp_path / "store"
    proxy.add(Fault.flip_byte(offset=12345), path=layer(img), times=1)
    done = cli.run([*FAST, "pull", *MODES[mode], f"{proxy.host}/{img.ref}"], root)
    assert done.returncode == 0, done.stderr
    assert "Checksum mismatch, downloading again" in done.stdout, done.stdout
    gets = synth_images.blob_gets(proxy, layer(img))
    if mode == "one-connection":
        assert [(g.range, g.status) for g in gets] == [(None, 200), (None, 200)], gets
    else:
        check_resumed_gets(gets, 0, mode, img.layer_sizes[0])
        assert proxy.bytes_sent(path=layer(img)) < 2 * WASTE[mode] * img.layer_sizes[0]
    cli.run(["verify"], root, check=True)


@pytest.mark.parametrize("mode", MODES)
def test_wrong_twice_fails_naming_blob_expected_and_actual(proxy, image, tmp_path, mode):
    _, img = image
    root = tmp_path / "store"
    proxy.add(Fault.flip_byte(offset=12345), path=layer(img), times=None)
    done = cli.run([*FAST, "pull", *MODES[mode], f"{proxy.host}/{img.ref}"], root)
    assert done.returncode == 1
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1, message
    for needle in (f"layer {layer(img)}", f"expected {layer(img)}", "got sha256:", "wrong both times"):
        assert needle in message, message
    if mode == "one-connection":
        assert len(synth_images.blob_gets(proxy, layer(img))) == 2
    assert layer(img).split(":")[1] not in cli.blobs(root)
    assert cli.ingest_leftovers(root) == []


@pytest.mark.parametrize("mode", MODES)
def test_a_mangled_partial_is_discarded_and_refetched(proxy, image, tmp_path, mode):
    """What a power cut may leave: a partial whose bytes are not the blob's."""
    _, img = image
    root = tmp_path / "store"
    (root / "ingest").mkdir(parents=True)
    partial = root / "ingest" / (layer(img).split(":")[1] + ".partial")
    partial.write_bytes(os.urandom(1_000_000))
    done = cli.run([*FAST, "pull", *MODES[mode], f"{proxy.host}/{img.ref}"], root)
    assert done.returncode == 0, done.stderr
    gets = synth_images.blob_gets(proxy, layer(img))
    if mode == "one-connection":
        assert [g.range for g in gets] == ["bytes=1000000-", None], gets
    else:
        check_resumed_gets(gets, 1_000_000, mode, img.layer_sizes[0])
        starts = [int(g.range.split("=")[1].split("-")[0]) for g in gets]
        assert starts[0] == 1_000_000 and 0 in starts, gets  # the rest, then all of it again
    cli.run(["verify"], root, check=True)


@pytest.mark.parametrize("mode", MODES)
def test_with_a_rootfs_a_wrong_blob_already_applied_is_not_refetched(proxy, image, tmp_path, mode):
    _, img = image
    root = tmp_path / "store"
    # Slowed (4 s for the layer on one connection, 1 s a piece), so that the applier has read (and applied) bytes of
    # the layer before its end shows the digest wrong, however slow the build.
    proxy.add(Fault.flip_byte(offset=12345) + Fault.throttle(LAYER_BYTES / 4), path=layer(img), times=1)
    proxy.add(Fault.throttle(LAYER_BYTES / 4), path=layer(img), times=None)  # the other pieces too
    done = cli.run([*FAST, "pull", *MODES[mode], "--rootfs", str(tmp_path / "rootfs"), f"{proxy.host}/{img.ref}"],
                   root)
    assert done.returncode == 1, done.stdout + done.stderr
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert f"expected {layer(img)}" in message and "already applied to the rootfs" in message, message
    assert cli.index_names(root) == [] and cli.ingest_leftovers(root) == []
    # A new pull (a fresh rootfs directory) gets it right.
    again = cli.run([*FAST, "pull", "--rootfs", str(tmp_path / "rootfs2"), f"{proxy.host}/{img.ref}"], root)
    assert again.returncode == 0, again.stderr
