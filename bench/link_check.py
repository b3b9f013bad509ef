#!/usr/bin/python3
"""How faithful the link emulator (tests/link/emulator.py) is, and what it costs.

    /usr/bin/python3 bench/link_check.py [--link 50ms,20MB/s,160MB/s] [--mb 400]

Starts a plain docker-registry holding one random blob of --mb MB and the
emulator (its CLI, a process of its own) in front of it, then measures with
curl: one GET of the blob (held to the per-connection cap), the blob as 8
parallel closed ranges (held to the link cap), a small GET on a new
connection (2 RTT: handshake and exchange) and on a kept-alive one (1 RTT),
and the emulator's CPU time (user+sys, /proc) for the transfers, beside what
the model predicts. The same two transfers with no shaping at all show how
much the emulator can carry. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, HERE)

from link.emulator import LinkSpec, read_log  # noqa: E402
from link_process import Emulator  # noqa: E402
from registry import fixtures  # noqa: E402
from registry.harness import Registry  # noqa: E402

PARTS = 8


def curl_times(args) -> list[float]:
    """curl's time_total of each URL in args, in seconds."""
    p = subprocess.run(["curl", "-sf", "-w", "%{time_total}\\n", *args], stdout=subprocess.PIPE,
                       text=True, check=True)
    return [float(x) for x in p.stdout.split()]


def transfer(emu, url, size, parts) -> tuple[float, float, float]:
    """(wall s, emulator CPU s, s from the first request's arrival to the last
    response's end in the emulator's log) of fetching url as `parts` closed ranges
    at once with one curl."""
    step = -(-size // parts)
    args = []
    for a in range(0, size, step):
        args += ["-sSf", "-r", f"{a}-{min(a + step, size) - 1}", "-o", "/dev/null", url, "--next"]
    mark, cpu0, t0 = emu.mark(), emu.cpu_seconds(), time.monotonic()
    subprocess.run(["curl", "--no-progress-meter", "--parallel", "--parallel-immediate", *args[:-1]], check=True)
    wall = time.monotonic() - t0
    time.sleep(0.2)  # the emulator logs a request just after its last byte went out
    requests, _, _ = read_log(emu.log_path, mark)
    span = max(r["finished"] for r in requests) - min(r["started"] for r in requests)
    return wall, emu.cpu_seconds() - cpu0, span


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--link", default="50ms,20MB/s,160MB/s", type=LinkSpec.parse)
    ap.add_argument("--mb", type=int, default=400, help="size of the blob in MB (default 400)")
    args = ap.parse_args()
    link = args.link
    with tempfile.TemporaryDirectory(prefix="link-check-") as tmp, \
            Registry("plain", os.path.join(tmp, "registry")) as reg:
        big = fixtures.big_blob(reg, "linkcheck", args.mb * 1_000_000)
        path = f"/v2/linkcheck/blobs/{big.layer_digest}"
        size = big.layer_size
        print(f"blob {size / 1e6:.0f} MB; load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cpus")
        print("| what | model: wall, log | measured by curl (wall) | in the emulator's log | "
              "emulator CPU s (% of one core) |")
        print("|---|---:|---:|---:|---:|")
        for spec in (link, LinkSpec()):
            with Emulator(reg.host, str(spec), os.path.join(tmp, "link.jsonl")) as emu:
                url = emu.url + path
                for parts in (1, PARTS):
                    caps = [r for r in (spec.conn_rate and spec.conn_rate * parts, spec.link_rate) if r]
                    rate = min(caps) if caps else None
                    # handshake and exchange on the client's clock, the exchange's second half in the log
                    model = (f"{size / rate + 2 * spec.rtt:.2f} s, "
                             f"{size / rate + spec.rtt / 2:.2f} s" if rate else "-")
                    wall, cpu, span = transfer(emu, url, size, parts)
                    print(f"| {spec}: {parts} GET{'s' if parts > 1 else ''} of {size / parts / 1e6:.0f} MB "
                          f"| {model} | {wall:.2f} s, {size / wall / 1e6:.1f} MB/s "
                          f"| {span:.2f} s, {size / span / 1e6:.1f} MB/s | {cpu:.2f} ({100 * cpu / wall:.0f}%) |")
                if spec.rtt:
                    fresh = min(curl_times(["-o", "/dev/null", url.replace(path, "/v2/")])[0]
                                for _ in range(3))
                    kept = curl_times(["-o", "/dev/null", "-o", "/dev/null"] + [url.replace(path, "/v2/")] * 2)
                    print(f"| {spec}: small GET, new connection | {2 * spec.rtt * 1000:.0f} ms "
                          f"| {fresh * 1000:.0f} ms | |")
                    print(f"| {spec}: small GET, kept-alive connection | {spec.rtt * 1000:.0f} ms "
                          f"| {kept[1] * 1000:.0f} ms | |")
        print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
