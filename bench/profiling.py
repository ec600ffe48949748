"""Where idp's time goes per request: py-spy on idp's workers under wrk's load, and
the database round trips of one request of each kind.

    .venv/bin/python bench/profiling.py [--workers sync:3] [--seconds 8] [ENDPOINT ...]

Samples are wall-clock (py-spy ``--idle``), so waiting on PostgreSQL shows; only samples
inside a request are counted, and each category is given as worker milliseconds per request.
``sign_in`` (not one of ``make bench``'s wrk endpoints) profiles the returning user's whole
sign-in under bench/signin.py's load instead, in milliseconds per sign-in (its load
generator is this process's threads). Writes ``bench/results/profile-<UTC timestamp>.md``
(and the raw py-spy stacks beside it).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC
from datetime import datetime
from pathlib import Path

import dbtrips
from endpoints import ENDPOINTS
from endpoints import Context
from load import CONNECTIONS
from load import ensure_wrk
from load import parse_wrk
from load import wrk_argv
from machine import cpu_by_role
from mint import idp_target
from mint import sign_in
from run import RESULTS
from run import free_port
from run import log
from run import parse_config
from servers import BIN
from servers import Database
from servers import IdpServer
from signin import Users
from signin import run_sign_ins

RATE = 250  # samples per second and worker
# First match walking from the innermost frame outwards names the sample's category.
CATEGORIES = (
    ("argon2id (argon2-cffi)", ("argon2/",)),
    ("SQLAlchemy (ORM, pool, SQL compilation)", ("sqlalchemy/", "flask_sqlalchemy/")),
    ("JWT sign/verify (joserfc, cryptography)", ("joserfc/", "cryptography/")),
    ("Authlib", ("authlib/",)),
    ("Flask-Limiter / limits", ("flask_limiter/", "limits/")),
    ("Flask-WTF / Babel / Jinja", ("flask_wtf/", "flask_babel/", "babel/", "jinja2/")),
    ("Flask / Werkzeug", ("flask/", "werkzeug/")),
    ("idp code", ("idp/",)),
    ("gunicorn (HTTP parsing, socket I/O, access log)", ("gunicorn/",)),
    ("granian (its Python side of the WSGI call)", ("granian/",)),
)
OTHER = "other (stdlib: json, logging, hashlib, …)"
# Innermost frame in psycopg: sending a query, waiting for PostgreSQL's answer (in C, under
# ``Connection.wait``) or reading it. On two shared cores the worker is often descheduled
# right after a send, while the backend runs, so this is the whole round trip's cost.
WAITING = "psycopg/"
WAIT = "PostgreSQL round trips (psycopg send/wait/receive)"
# A request's outermost Python frame: gunicorn's handler, or (granian, whose HTTP layer is
# Rust) idp's outermost WSGI layer, which every request passes.
IN_REQUEST = ("handle_request", "handle (gunicorn", "__call__ (idp/web.py")
SIGN_IN = "sign_in"
SIGN_IN_USERS = 1_500  # more than 2 × --seconds of sign-ins at any rate seen here
LABELS = {**{k: e.label for k, e in ENDPOINTS.items()}, SIGN_IN: "sign-in (ms per sign-in)"}
ROLES = (
    "idp workers",
    "PostgreSQL backends of the database",
    "PostgreSQL background (WAL writer, checkpointer, …)",
    "wrk (load generator)",
)


def categorize(frames):
    """The category of one sampled stack (frames outermost first)."""
    if WAITING in frames[-1]:
        return WAIT
    for frame in reversed(frames):
        for name, needles in CATEGORIES:
            if any(n in frame for n in needles):
                return name
    return OTHER


def summarize(raw_path):
    """(samples per category inside requests, samples outside any request)."""
    inside, idle = Counter(), 0
    for line in Path(raw_path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        if not any(marker in frame for frame in frames for marker in IN_REQUEST):
            idle += int(count)
            continue
        inside[categorize(frames)] += int(count)
    return inside, idle


def _py_spy(pid, seconds, raw, mode):
    argv = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
            "--rate", str(RATE), "--duration", str(seconds), "--format", "raw",
            "--output", str(raw)]  # fmt: skip
    subprocess.run(argv + [mode], check=True, capture_output=True)
    return summarize(raw)[0]


def profile_endpoint(idp, target, ctx, key, seconds, out_dir):
    """Load one endpoint with wrk while py-spy samples every worker, first wall-clock (idle
    threads included), then only while holding the GIL (running Python, not waiting for
    PostgreSQL or for a core); and count each process's CPU meanwhile."""
    load = ENDPOINTS[key].prepare(target, ctx, 2 * seconds + 3)
    wrk = subprocess.Popen(
        wrk_argv(target.base, load, 2 * seconds + 2, ctx.tmp / f"{key}.spec"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1)
    roles = (idp.process.pid, wrk.pid, idp.database.name)
    before, started = cpu_by_role(*roles), time.monotonic()
    wall = _py_spy(idp.process.pid, seconds, out_dir / f"{key}.wall.txt", "--idle")
    on_cpu = _py_spy(idp.process.pid, seconds, out_dir / f"{key}.gil.txt", "--gil")
    cpu = cpu_by_role(*roles)
    cpu.subtract(before)
    elapsed = time.monotonic() - started
    out, err = wrk.communicate(timeout=2 * seconds + 60)
    run = parse_wrk(out, err)
    hz = os.sysconf("SC_CLK_TCK")
    return {
        "run": run, "wall": wall, "on_cpu": on_cpu, "requests": run.rps * seconds,
        "cpu_ms": {role: ticks / hz * 1000 / (run.rps * elapsed) for role, ticks in cpu.items()},
    }  # fmt: skip


def profile_sign_ins(idp, target, seconds, out_dir):
    """As ``profile_endpoint``, under the returning-user sign-in load of bench/signin.py
    (its threads in this process are the load generator); per sign-in."""
    users = Users(idp).make(SIGN_IN_USERS)  # outside the profiled window
    done = {}

    def load():
        done["run"], _ = run_sign_ins(target, users, 2 * seconds + 2, 0, dict)

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(1)
    roles = (idp.process.pid, os.getpid(), idp.database.name)
    before, started = cpu_by_role(*roles), time.monotonic()
    wall = _py_spy(idp.process.pid, seconds, out_dir / "sign_in.wall.txt", "--idle")
    on_cpu = _py_spy(idp.process.pid, seconds, out_dir / "sign_in.gil.txt", "--gil")
    cpu = cpu_by_role(*roles)
    cpu.subtract(before)
    elapsed = time.monotonic() - started
    thread.join()
    run = done["run"]
    hz = os.sysconf("SC_CLK_TCK")
    return {
        "run": run, "wall": wall, "on_cpu": on_cpu, "requests": run.rps * seconds,
        "cpu_ms": {role: ticks / hz * 1000 / (run.rps * elapsed) for role, ticks in cpu.items()},
    }  # fmt: skip


def _section(results, keys, kind, title):
    names = [WAIT] + [name for name, _ in CATEGORIES] + [OTHER]
    per_request = {k: {n: results[k][kind][n] / RATE * 1000 / results[k]["requests"]
                       for n in names} for k in keys}  # fmt: skip
    rows = [f"| *{title}* |" + " |" * len(keys)]
    for name in names:
        rows.append(f"| {name} | " + " | ".join(f"{per_request[k][name]:.2f}" for k in keys) + " |")
    total = " | ".join(f"**{sum(per_request[k].values()):.2f}**" for k in keys)
    return rows + [f"| **total** | {total} |"]


def table(results, trips):
    """Milliseconds per request by category and by process, one column per endpoint."""
    keys = list(results)
    rows = [
        "| ms per request | " + " | ".join(LABELS[k] for k in keys) + " |",
        "|---" + "|--:" * len(keys) + "|",
    ]
    rows += _section(results, keys, "wall", "worker wall clock (py-spy --idle)")
    rows += _section(results, keys, "on_cpu", "worker holding the GIL: running (py-spy --gil)")
    rows.append("| *CPU by process (/proc)* |" + " |" * len(keys))
    for role in ROLES:
        cells = " | ".join(f"{results[k]['cpu_ms'].get(role, 0):.2f}" for k in keys)
        rows.append(f"| {role} | {cells} |")
    rates = " | ".join(f"{results[k]['run'].rps:,.0f}" for k in keys)
    rows.append(f"| req/s while profiled | {rates} |")
    for label, field in dbtrips.FIELDS:
        cells = " | ".join(str(trips.get(k, {}).get(field, "—")) for k in keys)
        rows.append(f"| {label} | {cells} |")
    return "\n".join(rows)


def main():
    """Set up like ``make bench``, profile each endpoint, write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "endpoints", nargs="*", default=list(ENDPOINTS), help=f"of {', '.join(LABELS)}"
    )
    parser.add_argument(
        "--workers", default="granian:2x1", help="as run.py: sync:N, gthread:NxT, granian:NxT"
    )
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    ensure_wrk()
    config = parse_config(args.workers)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = RESULTS / f"profile-{stamp}"
    out_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="idp-profile-") as tmp, Database() as db:
        idp = IdpServer(Path(tmp), db, free_port())
        idp.setup()
        target, ctx = idp_target(idp), Context(Path(tmp))
        idp.start(config)
        try:
            sign_in(target)
            results = {}
            for key in args.endpoints:
                log(f"profiling {key} …")
                if key == SIGN_IN:
                    results[key] = profile_sign_ins(idp, target, args.seconds, out_dir)
                else:
                    results[key] = profile_endpoint(idp, target, ctx, key, args.seconds, out_dir)
            served = [key for key in args.endpoints if key != SIGN_IN]  # (signin_trips.py)
            trips = dbtrips.count(idp, target, ctx, served)
        finally:
            idp.stop()
    text = (
        f"# idp profile — {stamp}\n\n`idp serve` ({config.name}) on PostgreSQL under wrk "
        f"({CONNECTIONS} connections); py-spy at {RATE} Hz per worker, {args.seconds} s "
        f"wall clock then {args.seconds} s holding the GIL; only samples inside a request "
        "count. "
        "CPU by process from /proc over both windows. Round trips: one request of each "
        "kind in the app itself (bench/dbtrips.py).\n\n"
    )
    text += table(results, trips) + "\n"
    (out_dir.parent / f"profile-{stamp}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
