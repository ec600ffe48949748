"""The load generator: wrk from Debian's packages, driven by ``bench/wrk/request.lua``.

Every measurement uses the same settings for both servers: one wrk thread (the other
core serves), ``CONNECTIONS`` keep-alive connections (gunicorn's sync workers close
each one; granian keeps them), a 10 s request timeout.
"""

import json
import os
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "wrk" / "request.lua"
CONNECTIONS = 16
THREADS = 1
TIMEOUT = "10s"


def ensure_wrk():
    """Install Debian's wrk when missing (the benchmark runs as root, like `make test`)."""
    if shutil.which("wrk"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)


@dataclass
class Spec:
    """One request shape; ``{token}`` is replaced per request in token modes."""

    method: str
    path: str
    headers: dict
    body: str = ""

    def write(self, path):
        """The line format request.lua reads."""
        lines = [self.method, self.path, self.body or "-"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        Path(path).write_text("\n".join(lines) + "\n")


@dataclass
class Run:
    """One wrk run."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    statuses: str = ""  # "401:12 500:1": the non-2xx answers by status

    @property
    def rps(self):
        """Completed requests per second of the run's real length."""
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Measurement:
    """Three runs of one endpoint on one server: the median rate and latencies, all errors."""

    runs: list

    @property
    def rps(self):
        """Median requests/s."""
        return statistics.median(r.rps for r in self.runs)

    @property
    def p50_ms(self):
        """Median of the runs' p50 latencies."""
        return statistics.median(r.p50_ms for r in self.runs)

    @property
    def p99_ms(self):
        """Median of the runs' p99 latencies."""
        return statistics.median(r.p99_ms for r in self.runs)

    @property
    def errors(self):
        """Non-2xx answers and socket errors over every run."""
        return sum(r.errors for r in self.runs)

    @property
    def error_detail(self):
        """The errors by status over every run: ``401×12, socket×1``."""
        total = {}
        for run in self.runs:
            for part in run.statuses.split():
                status, _, n = part.partition(":")
                total[status] = total.get(status, 0) + int(n)
        return ", ".join(f"{status}×{n}" for status, n in sorted(total.items()))

    @property
    def requests(self):
        """Requests completed over every run."""
        return sum(r.requests for r in self.runs)


@dataclass
class Load:
    """What one run sends: the request shape, the token mode and the token file."""

    spec: Spec
    mode: str = "static"
    token_file: Path | None = None
    count: int | None = None  # collect mode: how many codes to collect into ``out_file``
    out_file: Path | None = None


def wrk_argv(base, load, seconds, spec_path):
    """The wrk command line for ``load``; see request.lua for the modes."""
    load.spec.write(spec_path)
    threads = 1 if load.mode == "collect" else THREADS
    args = [str(spec_path), load.mode]
    if load.mode == "collect":
        args += [str(load.token_file), str(load.count), str(load.out_file)]
    elif load.token_file is not None:
        args += [str(load.token_file), str(threads)]
    return [
        "wrk", f"-t{threads}", f"-c{CONNECTIONS}", f"-d{seconds}s", f"--timeout={TIMEOUT}",
        "-s", str(LUA), base + "/", "--", *args,
    ]  # fmt: skip


def parse_wrk(stdout, stderr=""):
    """The Run that request.lua's done() printed."""
    for line in stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line[len("BENCH_JSON ") :])
            return Run(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                errors=data["errors"] + data["socket_errors"],
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                statuses=data["statuses"]
                + (f" socket:{data['socket_errors']}" if data["socket_errors"] else ""),
            )
    raise RuntimeError(f"wrk printed no result:\n{stdout}\n{stderr}")


def run_wrk(base, load, seconds):
    """One wrk run of ``load`` against ``base``, bounded by ``seconds``."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        argv = wrk_argv(base, load, seconds, Path(tmp) / "spec")
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    return parse_wrk(done.stdout, done.stderr)


def write_tokens(path, tokens):
    """One token a line, for request.lua."""
    Path(path).write_text("".join(f"{t}\n" for t in tokens))
    return path
