#!/usr/bin/python3
"""imgpull against its peers and against the floors of the machine.

    bash bench/run.sh                       # everything, 3 rounds
    BENCH_RUNS=5 bash bench/run.sh
    bash bench/run.sh --images big --tools 'imgpull|floor'
    BENCH_RUNS=1 bash bench/run.sh --images big,minbase --link 50ms,20MB/s,160MB/s

What it does:
 1. installs the peers from Debian when missing (skopeo, umoci, podman,
    containerd/ctr, docker.io, isal's igzip, pigz, zstd, curl, mmdebstrap,
    docker-registry), as root;
 2. builds the benchmark images once (bench/images.py; cached in
    $IMGPULL_BENCH_CACHE, default /tmp/imgpull-bench) and pushes them to a
    plain-http docker-registry on 127.0.0.1 (tests/registry/harness.py);
 3. for every image, rounds of one run of every tool, each from an empty
    store / empty directory, the order of the tools rotating from round to
    round; the median of the rounds is reported.

With --link RTT,PER_CONNECTION_RATE,LINK_RATE every tool pulls through the link
emulator (tests/link/emulator.py, a process of its own in front of the
registry) and only the network tools run: imgpull pull and pull --rootfs,
skopeo copy, podman pull (overlay), containerd, docker pull, against the floor
of the link: curl of every layer blob at once, each large one as 8 closed byte
ranges. The table adds each tool's wall time over the floor's, what went over
the wire (requests, connections and how many were open at once, from the
emulator's log, kept as link-*.jsonl in the cache) and the emulator's own CPU.

Measured per run: wall time; user+sys CPU time of the whole process tree
(wait4's rusage, which includes every reaped descendant; for containerd and
docker the CPU of the daemon and its children during the pull is added from
/proc); peak RSS as the largest resident set of any one process of the tree
(ru_maxrss as /usr/bin/time -f %M reports it; for containerd and docker the
largest of the client's and the daemon tree's VmHWM; the daemon is started
fresh for every run so its high-water mark is that pull's, plus its start-up).

The page cache cannot be dropped here (and the registry serves from it): all
blobs and tars are read once before every round, so every tool reads warm
data. Written data is synced (untimed) after every run so that one tool's
write-back does not land in the next one's time; no tool here fsyncs its
files, so the times are those of writing into the page cache.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

from link.emulator import LinkSpec  # noqa: E402
from link_process import RANGES, Emulator, ranged_curl  # noqa: E402
from procs import start_time, tree, tree_cpu, tree_hwm_kib  # noqa: E402

CACHE = os.environ.get("IMGPULL_BENCH_CACHE", "/tmp/imgpull-bench")
# Where the tools write (a tmpfs is mounted there by default; see --fs).
WORK = os.environ.get("BENCH_WORKDIR", os.path.join(CACHE, "run"))
RUN_TIMEOUT = 1800

# command -> Debian package
PEERS = {
    "skopeo": "skopeo", "umoci": "umoci", "podman": "podman", "containerd": "containerd",
    "ctr": "containerd", "igzip": "isal", "pigz": "pigz", "zstd": "zstd", "curl": "curl",
    "openssl": "openssl", "mmdebstrap": "mmdebstrap", "docker-registry": "docker-registry",
    "/usr/sbin/dockerd": "docker.io", "/usr/bin/docker": "docker.io",
}


def log(msg):
    print(f"[bench] {msg}", flush=True)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def ensure_peers():
    missing = sorted({pkg for cmd, pkg in PEERS.items() if shutil.which(cmd) is None})
    if not missing:
        return
    if os.geteuid() != 0:
        log(f"not root: cannot install {' '.join(missing)}; the tools needing them are skipped")
        return
    log(f"installing from Debian: {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    p = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, stdout=subprocess.DEVNULL)
        p = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        log(f"apt-get install failed:\n{p.stdout[-2000:]}")


# --- measuring one run ---------------------------------------------------------

class Measure:
    def __init__(self, wall, cpu, rss_kib, rc, out):
        self.wall, self.cpu, self.rss_kib, self.rc, self.out = wall, cpu, rss_kib, rc, out


def run_measured(cmd: str, env=None, cwd=None, timeout=RUN_TIMEOUT) -> Measure:
    """Runs `cmd` with bash in its own process group; wall, user+sys of the tree, max RSS."""
    logf = open(os.path.join(CACHE, f"last-run-{os.getpid()}.log"), "w+b")
    rss_file = os.path.join(CACHE, f"last-run-{os.getpid()}.rss")
    t0 = time.monotonic()
    # /usr/bin/time reports the peak RSS of its own child tree: the rusage of a
    # process forked from this (large) python would include python's pages.
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file, "bash", "-c", cmd], stdout=logf, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True)
    timer = threading.Timer(timeout, lambda: os.killpg(p.pid, signal.SIGKILL))
    timer.daemon = True
    timer.start()
    try:
        _, status, ru = os.wait4(p.pid, 0)
    except BaseException:
        os.killpg(p.pid, signal.SIGKILL)  # interrupted: the tool goes too
        raise
    finally:
        timer.cancel()
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    logf.seek(0)
    out = logf.read().decode(errors="replace")
    logf.close()
    try:
        with open(rss_file) as f:
            rss = int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        rss = ru.ru_maxrss
    return Measure(wall, ru.ru_utime + ru.ru_stime, rss, p.returncode, out)


def unmount_below(path):
    """Unmounts whatever a tool left mounted at or below `path`, deepest first."""
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].encode().decode("unicode_escape") for line in f]
    for m in sorted((m for m in points if m == path or m.startswith(path + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def rm_rf(path):
    if not os.path.lexists(path):
        return
    unmount_below(path)
    # chattr'd or read-only dirs (umoci rootless, vfs) are made writable first
    subprocess.run(["rm", "-rf", "--one-file-system", path], stderr=subprocess.DEVNULL)
    if os.path.lexists(path):
        subprocess.run(["chmod", "-R", "u+rwx", path], stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", path])


# --- tools ---------------------------------------------------------------------

class Tool:
    """One way of getting an image: `command(ctx)` is the timed shell command."""
    name = ""
    kind = "rootfs"      # rootfs | store; what it is compared with
    floor = False

    def unsupported(self, ctx) -> str | None:
        return None

    def setup(self, ctx):
        pass

    def command(self, ctx) -> str:
        raise NotImplementedError

    def after(self, ctx, m: Measure):
        pass

    def teardown(self, ctx):
        pass


class Ctx:
    def __init__(self, image, registry, workdir, imgpull):
        self.image, self.registry, self.dir, self.imgpull = image, registry, workdir, imgpull

    @property
    def ref(self):
        return f"{self.registry.host}/{self.image.repo_tag}"

    @property
    def repo(self):
        return self.image.repo_tag.split(":", 1)[0]


def q(s) -> str:
    return "'" + str(s).replace("'", "'\\''") + "'"


CONTAINERS_CACHE = "/var/lib/containers/cache"


def private_cache(ctx, cmd: str) -> str:
    """Runs `cmd` with a blob-info cache of its own. skopeo and podman (containers/image)
    share one for the whole machine; what a pull records there (which compressed blob
    is which uncompressed layer) makes later pushes substitute one compression for
    another, so runs of the benchmark would change what the tests push."""
    cache = ctx.dir + "/containers-cache"
    inner = f"mount --bind {q(cache)} {CONTAINERS_CACHE} && {cmd}"
    return (f"mkdir -p {q(cache)} {CONTAINERS_CACHE} && "
            f"unshare --mount --propagation private bash -c {q(inner)}")


class ImgpullRootfs(Tool):
    name = "imgpull pull --rootfs"

    def __init__(self, binary=None, label=None):
        self.binary = binary  # None: the imgpull under test
        if label:
            self.name = f"{self.name} [{label}]"

    def command(self, ctx):
        return (f"{q(self.binary or ctx.imgpull)} --root {q(ctx.dir + '/store')} pull -q "
                f"--rootfs {q(ctx.dir + '/rootfs')} {q(ctx.ref)}")


class ImgpullStore(Tool):
    name = "imgpull pull"
    kind = "store"

    def __init__(self, binary=None, label=None):
        self.binary = binary
        if label:
            self.name = f"{self.name} [{label}]"

    def command(self, ctx):
        return f"{q(self.binary or ctx.imgpull)} --root {q(ctx.dir + '/store')} pull -q {q(ctx.ref)}"


def skopeo_copy(ctx) -> str:
    return (f"skopeo --insecure-policy copy --quiet --src-tls-verify=false "
            f"docker://{q(ctx.ref)} oci:{q(ctx.dir + '/oci')}:{ctx.image.tag}")


class Skopeo(Tool):
    name = "skopeo copy docker:// oci:"
    kind = "store"

    def command(self, ctx):
        return private_cache(ctx, skopeo_copy(ctx))


class SkopeoUmoci(Tool):
    name = "skopeo copy + umoci unpack"

    def unsupported(self, ctx):
        if ctx.image.compression == "zstd":
            return "umoci 0.4.7 cannot unpack zstd layers"
        return None

    def command(self, ctx):
        return private_cache(ctx, skopeo_copy(ctx) + f" && umoci unpack --image "
                             f"{q(ctx.dir + '/oci')}:{ctx.image.tag} {q(ctx.dir + '/bundle')} >/dev/null")


class Podman(Tool):
    kind = "rootfs"

    def __init__(self, driver):
        self.driver = driver
        self.name = f"podman pull ({driver})"
        self.broken = None

    def unsupported(self, ctx):
        return self.broken

    def runroot(self, ctx):
        # containers/storage refuses an overlay runroot longer than 50 characters
        return f"/tmp/ipb-{self.driver}-{os.getpid()}"

    def setup(self, ctx):
        conf = os.path.join(ctx.dir, "registries.conf")
        os.makedirs(os.path.join(ctx.dir, "tmp"), exist_ok=True)
        with open(conf, "w") as f:
            f.write(f'unqualified-search-registries = []\n[[registry]]\nlocation = "{ctx.registry.host}"\n'
                    f'insecure = true\n')
        storage = os.path.join(ctx.dir, "storage.conf")
        with open(storage, "w") as f:
            f.write(f'[storage]\ndriver = "{self.driver}"\nrunroot = "{self.runroot(ctx)}"\n'
                    f'graphroot = "{ctx.dir}/root"\n')

    def command(self, ctx):
        d = ctx.dir
        return private_cache(ctx, f"CONTAINERS_REGISTRIES_CONF={q(d + '/registries.conf')} "
                f"CONTAINERS_STORAGE_CONF={q(d + '/storage.conf')} TMPDIR={q(d + '/tmp')} "
                f"podman --root {q(d + '/root')} --runroot {q(self.runroot(ctx))} "
                f"--storage-driver {self.driver} --events-backend none --cgroup-manager cgroupfs "
                f"pull -q --tls-verify=false {q(ctx.ref)}")

    def teardown(self, ctx):
        d = ctx.dir
        reset = (f"CONTAINERS_STORAGE_CONF={q(d + '/storage.conf')} podman --root {q(d + '/root')} "
                 f"--runroot {q(self.runroot(ctx))} --storage-driver {self.driver} system reset -f")
        subprocess.run(["bash", "-c", private_cache(ctx, reset)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rm_rf(self.runroot(ctx))


class DaemonTool(Tool):
    """A peer whose pulls a daemon does: the daemon is started fresh for every run (so
    its memory high-water mark is that pull's, plus its start-up) and its CPU during
    the run, with that of its children, is added to the client's."""

    def __init__(self):
        self.daemon = None
        self.broken = None
        self.cpu0 = 0.0

    def unsupported(self, ctx):
        return self.broken

    def daemon_command(self, ctx) -> list[str]:
        raise NotImplementedError

    def ready_command(self, ctx) -> list[str]:
        """Succeeds once the daemon answers."""
        raise NotImplementedError

    def setup(self, ctx):
        os.makedirs(ctx.dir, exist_ok=True)
        self.logf = open(os.path.join(ctx.dir, "daemon.log"), "wb")
        self.daemon = subprocess.Popen(self.daemon_command(ctx), stdout=self.logf,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError(f"{self.daemon.args[0]} exited ({self.daemon.returncode}) at start-up")
            p = subprocess.run(self.ready_command(ctx), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            if p.returncode == 0:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{self.daemon.args[0]} did not answer within 30 s")
        self.cpu0 = tree_cpu(self.daemon.pid)

    def after(self, ctx, m):
        m.cpu += tree_cpu(self.daemon.pid) - self.cpu0
        m.rss_kib = max(m.rss_kib, tree_hwm_kib(self.daemon.pid))

    def teardown(self, ctx):
        if self.daemon is None:
            return
        # Its children (dockerd's containerd) go too, each only if still the process it was.
        family = [(pid, start_time(pid)) for pid in tree(self.daemon.pid)[1:]]
        if self.daemon.poll() is None:
            os.kill(self.daemon.pid, signal.SIGTERM)
            try:
                self.daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.daemon.pid, signal.SIGKILL)
                self.daemon.wait()
        for pid, started in family:
            if started is not None and start_time(pid) == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass  # ended just now
        self.daemon = None
        self.logf.close()


class Containerd(DaemonTool):
    name = "containerd: ctr image pull"

    def daemon_command(self, ctx):
        d = ctx.dir
        self.sock = os.path.join(d, "c.sock")
        with open(os.path.join(d, "config.toml"), "w") as f:
            f.write(f'version = 2\nroot = "{d}/root"\nstate = "{d}/state"\n'
                    f'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                    f'[grpc]\n  address = "{self.sock}"\n[ttrpc]\n  address = "{d}/t.sock"\n'
                    f'[debug]\n  address = ""\n[metrics]\n  address = ""\n')
        return ["containerd", "--config", os.path.join(d, "config.toml")]

    def ready_command(self, ctx):
        return ["ctr", "--address", self.sock, "version"]

    def command(self, ctx):
        return f"ctr --address {q(self.sock)} -n bench image pull --plain-http {q(ctx.ref)} >/dev/null"


# Debian's docker.io, by path: another docker CLI may come first in PATH.
DOCKER = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"


class Docker(DaemonTool):
    """docker pull with a dockerd of the benchmark's own (no iptables, no bridge, its own
    data and exec roots and socket); registries on 127.0.0.0/8 are plain http to it."""
    name = "docker pull"

    def daemon_command(self, ctx):
        d = ctx.dir
        self.sock = os.path.join(d, "docker.sock")
        with open(os.path.join(d, "daemon.json"), "w") as f:
            f.write("{}\n")  # not the machine's /etc/docker/daemon.json
        return [DOCKERD, "--config-file", os.path.join(d, "daemon.json"), "--iptables=false",
                "--bridge=none", "--data-root", os.path.join(d, "root"),
                "--exec-root", os.path.join(d, "exec"), "--pidfile", os.path.join(d, "docker.pid"),
                "--host", f"unix://{self.sock}"]

    def ready_command(self, ctx):
        return [DOCKER, "-H", f"unix://{self.sock}", "version"]

    def command(self, ctx):
        return f"{DOCKER} -H unix://{q(self.sock)} pull -q {q(ctx.ref)} >/dev/null"


class FloorCurl(Tool):
    name = "floor: parallel curl of the blobs"
    kind = "store"
    floor = True

    def command(self, ctx):
        base = f"http://{ctx.registry.host}/v2/{ctx.repo}/blobs/"
        parts = [f"mkdir -p {q(ctx.dir)}; pids=()"]
        for i, d in enumerate(ctx.image.layer_digests):
            parts.append(f"curl -sfL -o {q(ctx.dir + f'/{i}')} {q(base + d)} & pids+=($!)")
        parts.append('for p in "${pids[@]}"; do wait $p || exit 1; done')
        return "; ".join(parts)


class FloorRangedCurl(Tool):
    """What the link allows: every layer blob at once, each large one as byte ranges on
    connections of their own (link_process.ranged_curl)."""
    name = f"floor: curl, every blob as {RANGES} parallel byte ranges"
    kind = "store"
    floor = True

    def command(self, ctx):
        base = f"http://{ctx.registry.host}/v2/{ctx.repo}/blobs/"
        blobs = [(base + d, os.path.getsize(b), f"{ctx.dir}/{i}")
                 for i, (d, b) in enumerate(zip(ctx.image.layer_digests, ctx.image.layer_blobs))]
        return " ".join(q(a) for a in ranged_curl(blobs))


class FloorSha(Tool):
    floor = True
    kind = "store"

    def __init__(self, what):
        self.what = what
        self.name = f"floor: sha256 of the {what} (openssl)"

    def command(self, ctx):
        files = ctx.image.layer_blobs if self.what == "blobs" else ctx.image.tars
        return "openssl dgst -sha256 " + " ".join(q(f) for f in files) + " >/dev/null"


class FloorUnpack(Tool):
    floor = True

    def __init__(self, decompress: bool):
        self.decompress = decompress
        self.name = ("floor: igzip|zstd -dc | tar -x per layer" if decompress
                     else "floor: tar -xf of the uncompressed tars")

    def command(self, ctx):
        r = q(ctx.dir + "/rootfs")
        parts = [f"mkdir -p {r}"]
        if self.decompress:
            tool = "igzip -dc" if ctx.image.compression == "gzip" else "zstd -dcq"
            parts += [f"{tool} {q(b)} | tar -C {r} -xf -" for b in ctx.image.layer_blobs]
        else:
            parts += [f"tar -C {r} -xf {q(t)}" for t in ctx.image.tars]
        return " && ".join(parts)


def all_tools(compare=(), link=False):
    """The tools on loopback, or over the emulated link (the network ones only)."""
    extra = []
    for spec in compare:
        label, _, path = spec.partition("=")
        extra += [ImgpullRootfs(path, label), ImgpullStore(path, label)]
    if link:
        return [ImgpullStore(), ImgpullRootfs(), *extra, Skopeo(), Podman("overlay"), Containerd(),
                Docker(), FloorRangedCurl()]
    return [ImgpullRootfs(), ImgpullStore(), *extra, Skopeo(), SkopeoUmoci(), Podman("overlay"),
            Podman("vfs"), Containerd(), Docker(), FloorCurl(), FloorSha("blobs"), FloorSha("tars"),
            FloorUnpack(True), FloorUnpack(False)]


# --- registry ------------------------------------------------------------------

def start_registry(images):
    from registry.harness import Registry, push, MANIFEST_ACCEPT
    reg = Registry("plain", os.path.join(CACHE, "registry")).start()
    for img in images:
        repo, tag = img.repo_tag.split(":", 1)
        r = reg.api("HEAD", f"/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT})
        if r.status != 200:
            t = time.monotonic()
            push(reg, img.layout, img.tag, img.repo_tag)
            log(f"pushed {img.repo_tag} in {time.monotonic() - t:.0f}s")
    return reg


def registry_blob_files():
    root = os.path.join(CACHE, "registry", "storage")
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f == "data":
                yield os.path.join(dirpath, f)


def warm(images):
    files = list(registry_blob_files())
    for img in images:
        files += img.layer_blobs + img.tars
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 22):
                pass


# --- the runs ------------------------------------------------------------------

def probe(tool, ctx) -> str | None:
    """Runs a tool once on the small image to see whether it works here at all."""
    rm_rf(ctx.dir)
    os.makedirs(ctx.dir)
    try:
        tool.setup(ctx)
        m = run_measured(tool.command(ctx), timeout=300)
        if m.rc != 0:
            return f"fails here (exit {m.rc}): " + " | ".join(m.out.strip().splitlines()[-3:])[-400:]
        return None
    except Exception as e:  # noqa: BLE001
        return f"cannot run here: {e}"
    finally:
        try:
            tool.teardown(ctx)
        finally:
            rm_rf(ctx.dir)


def bench_image(img, tools, registry, imgpull, rounds, results, emulator=None):
    """registry: where the tools pull from (the registry or the emulator in front of it)."""
    work = WORK
    log(f"== {img.name}: {img.repo_tag}, {len(img.layer_blobs)} layers, "
        f"{img.compressed_bytes / 1e6:.0f} MB {img.compression}, {img.uncompressed_bytes / 1e6:.0f} MB tar")
    active = []
    for t in tools:
        why = t.unsupported(Ctx(img, registry, work, imgpull))
        if why:
            log(f"skip {t.name}: {why}")
            results.append({"image": img.name, "tool": t.name, "skipped": why})
        else:
            active.append(t)
    samples = {t.name: [] for t in active}
    for r in range(rounds):
        warm([img])
        order = active[r % len(active):] + active[:r % len(active)] if active else []
        for t in order:
            ctx = Ctx(img, registry, os.path.join(work, re.sub(r"[^a-z0-9]+", "-", t.name.lower())), imgpull)
            rm_rf(ctx.dir)
            os.makedirs(ctx.dir)
            subprocess.run(["sync"])
            try:
                t.setup(ctx)
                la = loadavg()
                if emulator:
                    mark, emu_cpu = emulator.mark(), emulator.cpu_seconds()
                m = run_measured(t.command(ctx))
                t.after(ctx, m)
            finally:
                t.teardown(ctx)
            wire = None
            if emulator:  # after teardown: a daemon's last requests are logged by now
                wire = emulator.wire(mark)
                wire["emulator_cpu"] = emulator.cpu_seconds() - emu_cpu
            if m.rc != 0:
                tail = " | ".join(m.out.strip().splitlines()[-3:])[-300:]
                log(f"  round {r + 1} {t.name}: FAILED (exit {m.rc}): {tail}")
                samples[t.name].append(None)
            else:
                over = (f"; {wire['requests']} requests on {wire['connections']} connections "
                        f"(at most {wire['peak_connections']} at once), emulator "
                        f"{wire['emulator_cpu']:.2f}s cpu" if wire else "")
                log(f"  round {r + 1} {t.name}: {m.wall:.2f}s wall, {m.cpu:.2f}s cpu, "
                    f"{m.rss_kib / 1024:.0f} MiB, load {la}{over}")
                samples[t.name].append((m.wall, m.cpu, m.rss_kib, la, wire))
            subprocess.run(["sync"])
            rm_rf(ctx.dir)
    for t in active:
        ok = [s for s in samples[t.name] if s]
        row = {"image": img.name, "tool": t.name, "kind": t.kind, "floor": t.floor,
               "runs": len(ok), "failed": len(samples[t.name]) - len(ok),
               "gb": img.compressed_bytes / 1e9}
        if ok:
            row.update(wall=statistics.median(s[0] for s in ok), cpu=statistics.median(s[1] for s in ok),
                       rss_mib=max(s[2] for s in ok) / 1024, walls=[round(s[0], 2) for s in ok],
                       loads=[s[3] for s in ok])
            if emulator:
                wires = [s[4] for s in ok]
                row["wire"] = {k: statistics.median(w[k] for w in wires)
                               for k in ("requests", "connections", "emulator_cpu")}
                row["wire"]["peak_connections"] = max(w["peak_connections"] for w in wires)
        results.append(row)


def print_table(results, out, link=None):
    """Markdown tables, an image each; over a link (its text) with the floor, what went
    over the wire and the ratios the link targets use."""
    by_image = {}
    for r in results:
        by_image.setdefault(r["image"], []).append(r)
    lines = []
    for image, rows in by_image.items():
        wall = {r["tool"]: r.get("wall") for r in rows}
        base = {"rootfs": wall.get(ImgpullRootfs.name), "store": wall.get(ImgpullStore.name)}
        floor = wall.get(FloorRangedCurl.name) if link else None
        lines.append(f"\n### {image}" + (f" over the link {link}" if link else "") + "\n")
        head = ["tool", "wall s (median)", "user+sys s", "CPU s per GB pulled", "peak RSS MiB",
                "vs imgpull"]
        if link:
            head += ["vs floor", "requests", "connections (most at once)", "emulator CPU s"]
        head.append("runs (wall s)")
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|---|" + "---:|" * (len(head) - 2) + "---|")
        for r in rows:
            if "skipped" in r or not r.get("wall"):
                why = f"skipped: {r['skipped']}" if "skipped" in r else f"failed in all {r['failed']} runs"
                lines.append(f"| {r['tool']} | {why} |" + " |" * (len(head) - 2))
                continue
            b = base.get(r["kind"])
            ref = "pull --rootfs" if r["kind"] == "rootfs" else "pull"
            cells = [r["tool"], f"{r['wall']:.2f}", f"{r['cpu']:.2f}", f"{r['cpu'] / r['gb']:.2f}",
                     f"{r['rss_mib']:.0f}", f"{r['wall'] / b:.2f}x of {ref}" if b else ""]
            if link:
                w = r["wire"]
                cells += [f"{r['wall'] / floor:.2f}x" if floor else "", f"{w['requests']:.0f}",
                          f"{w['connections']:.0f} ({w['peak_connections']})", f"{w['emulator_cpu']:.2f}"]
            fails = f", {r['failed']} failed" if r["failed"] else ""
            cells.append(", ".join(map(str, r["walls"])) + fails)
            lines.append("| " + " | ".join(cells) + " |")
        if link:
            ratios = [(label, wall.get(a), wall.get(b)) for label, a, b in (
                ("imgpull pull / floor", ImgpullStore.name, FloorRangedCurl.name),
                ("imgpull pull --rootfs / floor", ImgpullRootfs.name, FloorRangedCurl.name),
                ("skopeo copy / imgpull pull", Skopeo.name, ImgpullStore.name))]
            known = [f"{name} = {x / y:.2f}" for name, x, y in ratios if x and y]
            if known:
                lines.append("\nratios: " + "; ".join(known))
    text = "\n".join(lines)
    print(text)
    with open(out, "w") as f:
        f.write(text + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")),
                    help="rounds per image (default $BENCH_RUNS or 3); the median is reported")
    ap.add_argument("--images", default=os.environ.get("BENCH_IMAGES", "big,big-zstd,minbase,minbase-zstd"),
                    help="comma-separated: big, big-zstd, minbase, minbase-zstd")
    ap.add_argument("--tools", default=os.environ.get("BENCH_TOOLS", ""),
                    help="regular expression on tool names (default: all)")
    ap.add_argument("--imgpull", default=os.environ.get("IMGPULL_BIN", os.path.join(REPO, "build", "imgpull")))
    ap.add_argument("--compare", action="append", default=[], metavar="LABEL=PATH",
                    help="also run another imgpull binary (before/after measurements); repeatable")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get install missing peers")
    ap.add_argument("--link", default=os.environ.get("BENCH_LINK") or None, metavar="RTT,CONN_RATE,LINK_RATE",
                    help="pull through the link emulator, e.g. 50ms,20MB/s,160MB/s (default $BENCH_LINK; "
                         "none: loopback)")
    ap.add_argument("--fs", choices=("tmpfs", "disk"), default=os.environ.get("BENCH_FS", "tmpfs"),
                    help="where the stores and root filesystems are written: a tmpfs mounted for the "
                         "run (default, $BENCH_FS; size $BENCH_TMPFS_SIZE, default 12g), or the disk "
                         "under the cache directory")
    args = ap.parse_args()
    if args.link:
        try:
            args.link = str(LinkSpec.parse(args.link))
        except ValueError as e:
            ap.error(str(e))
    # SIGTERM unwinds like Ctrl-C, so the registry and daemons started here are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    os.makedirs(CACHE, exist_ok=True)
    lock = open(os.path.join(CACHE, f"bench-{re.sub(r'[^a-zA-Z0-9]+', '_', WORK)}.lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"another bench.py is using {WORK}; set BENCH_WORKDIR for a second one")
    if not args.no_install:
        ensure_peers()
    import images as images_mod
    imgs = images_mod.all_images(CACHE)
    wanted = [imgs[n] for n in args.images.split(",") if n]
    log(f"load average {loadavg()}, {os.cpu_count()} cpus; imgpull {args.imgpull}")
    registry = start_registry(wanted)
    started = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    emulator = None
    if args.link:
        emulator = Emulator(registry.host, args.link, os.path.join(CACHE, f"link-{started}.jsonl"))
    endpoint = registry
    work = WORK
    rm_rf(work)
    os.makedirs(work)
    if args.fs == "tmpfs":
        size = os.environ.get("BENCH_TMPFS_SIZE", "12g")
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "imgpull-bench", work], check=True)
    log(f"stores and root filesystems are written to {work} ({args.fs})")
    try:
        if emulator:
            endpoint = emulator.start()
            log(f"pulling over the link {args.link} through the emulator at {emulator.host} "
                f"(log {emulator.log_path})")
        tools = [t for t in all_tools(args.compare, link=bool(emulator))
                 if not args.tools or re.search(args.tools, t.name)]
        small = imgs["minbase"]
        for t in tools:
            if isinstance(t, (Podman, DaemonTool)):
                t.broken = probe(t, Ctx(small, endpoint, os.path.join(WORK, "probe"), args.imgpull))
                if t.broken:
                    log(f"{t.name}: {t.broken}")
        results = []
        for img in wanted:
            bench_image(img, tools, endpoint, args.imgpull, args.runs, results, emulator)
        log(f"load average at the end {loadavg()}")
        with open(os.path.join(CACHE, f"results-{started}.json"), "w") as f:
            json.dump(results, f, indent=1)
        print_table(results, os.path.join(CACHE, f"results-{started}.md"), args.link)
    finally:
        if emulator:
            emulator.stop()
        registry.stop()
        if args.fs == "tmpfs":
            subprocess.run(["umount", "-l", work])


if __name__ == "__main__":
    main()
