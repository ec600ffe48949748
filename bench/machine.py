"""The machine description every result file carries."""

import json
import os
import platform
import re
import subprocess
import sys
import time
from collections import Counter
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON_PACKAGES = (
    "Flask", "Authlib", "joserfc", "SQLAlchemy", "psycopg", "gunicorn", "cryptography",
)  # fmt: skip


def _cpu_model():
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory():
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def _output(argv):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    return (done.stdout or done.stderr).strip().splitlines()[0]


def _oidc_provider_version():
    path = ROOT / "tests" / "peers" / "node_modules" / "oidc-provider" / "package.json"
    return json.loads(path.read_text())["version"]


def describe(postgres_version):
    """Name → value, in the order the results print them."""
    info = {
        "nproc": str(os.cpu_count()),
        "memory": _memory(),
        "CPU": _cpu_model(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "node": _output(["node", "--version"]),
        "postgres": postgres_version,
        "wrk": _output(["wrk", "--version"]).split(" [")[0],
        "oidc-provider": _oidc_provider_version(),
    }
    for name in PYTHON_PACKAGES:
        info[name] = metadata.version(name)
    return info


def _proc_stats():
    """pid → (ppid, CPU ticks, command name) for every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                head, _, tail = fh.read().rpartition(")")
        except OSError:
            continue
        fields = tail.split()
        comm = head.partition("(")[2]
        # utime, stime, and the reaped children's cutime, cstime — except for PostgreSQL,
        # whose postmaster reaps every session's backends (and may be restarted by tests).
        ticks = sum(int(f) for f in fields[11 : 13 if comm.startswith("postgres") else 15])
        found[int(entry)] = (int(fields[1]), ticks, comm)
    return found


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class CpuWatch:
    """How much of the machine other processes used while a phase ran.

    The machine is shared (other sessions may run test suites on it): the whole machine's
    busy time (/proc/stat) minus this benchmark's process tree (with the children it
    reaped), the PostgreSQL backends of its database, PostgreSQL's own background
    processes and the kernel's threads. What remains belongs to someone else.
    """

    def __init__(self, db_name):
        self.db_name = db_name
        self.start = self.end = None

    def _classify(self, pid, ppid, comm, ours):
        if pid in ours or pid == 2 or ppid == 2:
            return "ours"
        if comm.startswith("postgres"):
            line = _cmdline(pid)
            if self.db_name in line or not re.search(r"\(\d+\)|\[local\]", line):
                return "ours"  # our backends, the postmaster and its background writers
        return "other"

    def sample(self):
        """(seconds, machine busy ticks, stolen ticks, our ticks)."""
        with open("/proc/stat") as fh:
            cpu = [int(v) for v in fh.readline().split()[1:]]
        busy, steal = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6], cpu[7]
        procs = _proc_stats()
        ours, frontier = {os.getpid()}, [os.getpid()]
        children = {}
        for pid, (ppid, _, _) in procs.items():
            children.setdefault(ppid, []).append(pid)
        while frontier:
            for child in children.get(frontier.pop(), []):
                ours.add(child)
                frontier.append(child)
        mine = sum(
            ticks
            for pid, (ppid, ticks, comm) in procs.items()
            if self._classify(pid, ppid, comm, ours) == "ours"
        )
        return time.monotonic(), busy, steal, mine

    def __enter__(self):
        self.start = self.sample()
        return self

    def __exit__(self, *exc):
        self.end = self.sample()

    def other_cores(self):
        """Cores' worth of CPU that other processes used, and that the hypervisor stole."""
        hz = os.sysconf("SC_CLK_TCK")
        seconds = self.end[0] - self.start[0]
        busy, steal, mine = (self.end[i] - self.start[i] for i in (1, 2, 3))
        return max(0.0, (busy - mine) / hz / seconds), steal / hz / seconds


def cpu_by_role(master_pid, wrk_pid, db_name):
    """CPU ticks so far of each part of the served system (live processes, own time only)."""
    roles = Counter()
    for pid, (ppid, _, comm) in _proc_stats().items():
        if ppid == master_pid:
            role = "idp workers"
        elif pid == wrk_pid:
            role = "wrk (load generator)"
        elif comm.startswith("postgres"):
            line = _cmdline(pid)
            if db_name in line:
                role = "PostgreSQL backends of the database"
            elif not re.search(r"\(\d+\)|\[local\]", line):
                role = "PostgreSQL background (WAL writer, checkpointer, …)"
            else:
                continue
        else:
            continue
        roles[role] += _own_ticks(pid)
    return roles


def _own_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])
