"""The link emulator (tests/link/emulator.py) as a process of the benchmark's
own, in front of the benchmark's registry: its address, its CPU time, and
what its log says went over the wire during one run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))

from faults.proxy import peak_overlap  # noqa: E402
from link.emulator import read_log  # noqa: E402
from procs import proc_cpu  # noqa: E402

EMULATOR = os.path.join(REPO, "tests", "link", "emulator.py")


# A blob at least this large is fetched as RANGES parts by the floor of the link:
# below it a part would be smaller than a round trip's worth of a connection's rate.
RANGED_MIN = 1 << 20
RANGES = 8


def ranged_curl(blobs) -> list[str]:
    """One curl that fetches every (url, size, output path) at once, each blob of
    RANGED_MIN bytes or more as RANGES closed byte ranges (output path + ".N"), each
    transfer on a connection of its own: the floor of what a link allows. One process,
    so that the transfers start together, not one process start-up after another."""
    args = ["curl", "--no-progress-meter", "--parallel", "--parallel-immediate", "--parallel-max", "256"]
    for url, size, out in blobs:
        n = RANGES if size >= RANGED_MIN else 1
        step = -(-size // n)
        for i, start in enumerate(range(0, size, step)):
            args += ["-sSf", "-r", f"{start}-{min(start + step, size) - 1}", "-o", f"{out}.{i}", url,
                     "--next"]
    return args[:-1]


class Emulator:
    """`with Emulator("127.0.0.1:5000", "50ms,20MB/s,160MB/s", log) as emu:`
    clients use emu.host instead of the registry's."""

    def __init__(self, upstream_host: str, link: str, log_path: str):
        self.upstream_host, self.link, self.log_path = upstream_host, link, log_path
        self.proc = None
        self.host = None

    @property
    def url(self):
        return f"http://{self.host}"

    def start(self):
        open(self.log_path, "w").close()
        self.proc = subprocess.Popen(
            [sys.executable, EMULATOR, "--upstream", self.upstream_host, "--link", self.link,
             "--log", self.log_path], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True, start_new_session=True)
        line = self.proc.stdout.readline()  # "listening on 127.0.0.1:PORT, link ..."
        if not line.startswith("listening on 127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"the link emulator did not start: {line!r}")
        self.host = line.split()[2].rstrip(",")
        return self

    def cpu_seconds(self) -> float:
        return proc_cpu(self.proc.pid)

    def mark(self) -> int:
        """Where the log ends now; wire(mark) reports what came after."""
        return os.path.getsize(self.log_path)

    def wire(self, since: int) -> dict:
        """Requests, connections and bytes in the log after `since`."""
        requests, conns, _ = read_log(self.log_path, since)
        ranges = [r["range"] for r in requests if r["range"]]
        return {"requests": len(requests), "connections": len(conns),
                "peak_connections": peak_overlap([(c.opened, c.closed) for c in conns]),
                "ranged": len(ranges),
                "open_ended": sum(1 for r in ranges if r.rstrip().endswith("-")),
                "bytes": sum(r["bytes"] for r in requests)}

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
