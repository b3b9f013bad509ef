"""CPU time and peak memory of processes the benchmark started, from /proc."""

from __future__ import annotations

import os


def proc_cpu(pid) -> float:
    """user+sys seconds of `pid` and of its children it has reaped."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    # utime, stime, cutime, cstime are fields 14-17 (1-based): here 11..14 after the name
    return sum(int(x) for x in fields[11:15]) / tick


def proc_hwm_kib(pid) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def start_time(pid) -> int | None:
    """When pid started (clock ticks since boot), None if it is gone: with the pid,
    names one process even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def tree(pid) -> list[int]:
    """pid and all its living descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _fold_alive(pids, read, combine):
    values = []
    for p in pids:
        try:
            values.append(read(p))
        except (OSError, ValueError):
            pass  # it ended between listing and reading
    return combine(values) if values else 0


def tree_cpu(pid) -> float:
    """user+sys seconds of pid and its living descendants (and what they reaped)."""
    return _fold_alive(tree(pid), proc_cpu, sum)


def tree_hwm_kib(pid) -> int:
    """The largest peak resident set of any process in pid's tree."""
    return _fold_alive(tree(pid), proc_hwm_kib, max)
