"""`make bench`: idp and node oidc-provider side by side on this machine, loopback only.

1. crypto floors (one core);  2. a fresh PostgreSQL database, tenant/client/user through
the idp CLI;  3. a short sweep of server and worker models (granian, gunicorn), the best
one kept;  4. idp, then oidc-provider, every endpoint 3 runs, then idp's returning-user
sign-in 3 runs (bench/signin.py);  5. each token endpoint's floor, its own signatures and
SQL in a bare loop (bench/design_floors.py);  6. one table, printed and written to
``bench/results/<UTC timestamp>.md`` and ``bench/results/latest.md``.
"""

import argparse
import math
import socket
import sys
import tempfile
import time
from datetime import UTC
from datetime import datetime
from pathlib import Path

from design_floors import design_floors
from endpoints import ENDPOINTS
from endpoints import Context
from endpoints import measure
from floors import crypto_floors
from floors import postgres_floors
from load import CONNECTIONS
from load import THREADS
from load import ensure_wrk
from machine import CpuWatch
from machine import describe
from mint import idp_target
from mint import node_target
from mint import sign_in
from report import BUSY_CORES
from report import document
from servers import ROOT
from servers import Database
from servers import IdpServer
from servers import NodeServer
from servers import WorkerConfig
from servers import peak_rss_kib
from signin import measure_sign_ins

RESULTS = Path(__file__).resolve().parent / "results"
SWEEP = (
    WorkerConfig(2),
    WorkerConfig(2, 4),
    WorkerConfig(2, None, "granian"),
    WorkerConfig(2, 2, "granian"),
    WorkerConfig(3, 2, "granian"),
)
SWEEP_KEYS = ("discovery", "client_credentials", "userinfo", "introspection")
QUIET_WINDOW_S = 3


def log(message):
    """Progress on stderr, so stdout carries the table alone."""
    print(message, file=sys.stderr, flush=True)


def free_port():
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_config(text):
    """``sync:3``, ``gthread:2x4``, ``granian:2`` or ``granian:2x2`` (blocking threads)."""
    kind, _, size = text.partition(":")
    workers, _, threads = size.partition("x")
    if kind == "gthread":
        return WorkerConfig(int(workers), int(threads))
    if kind == "granian":
        return WorkerConfig(int(workers), int(threads) if threads else None, "granian")
    return WorkerConfig(int(workers))


def setting(text):
    """``IDP_NAME=VALUE`` as a pair."""
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("IDP_"):
        raise argparse.ArgumentTypeError(f"not IDP_NAME=VALUE: {text!r}")
    return name, value


def score(sweep):
    """Geometric mean of each endpoint's rate over the best rate any model reached."""
    keys = list(next(iter(sweep.values()))["results"])
    best = {k: max(e["results"][k].rps for e in sweep.values()) for k in keys}
    for entry in sweep.values():
        ratios = [entry["results"][k].rps / best[k] for k in keys if best[k]]
        entry["score"] = math.exp(sum(math.log(max(r, 1e-9)) for r in ratios) / len(ratios))
    return max(sweep, key=lambda name: sweep[name]["score"])


def sweep_phase(idp, target, ctx, config, seconds):
    """idp alone with one worker model: short runs of the sweep's endpoints."""
    startup = idp.start(config)
    try:
        if not target.cookie_headers:
            log("  signing in through idp's authorization endpoint and sign-in forms")
            sign_in(target)
        with CpuWatch(idp.database.name) as watch:
            results = measure([(target, ctx)], SWEEP_KEYS, 1, seconds, log)[target.name]
    finally:
        idp.stop()
    return {"results": results, "startup_s": startup, "other_cores": watch.other_cores()}


def comparison_phase(idp, target, ctx, config, runs, seconds):
    """Both servers up (one idle while the other is loaded), every endpoint interleaved."""
    record = {"idp_startup_s": idp.start(config)}
    node = NodeServer(ctx.tmp, free_port())
    try:
        record["node_startup_s"] = node.start()
        node_t = node_target(node)
        log("  signing in to oidc-provider through its interaction API")
        sign_in(node_t)
        node_ctx = Context(ctx.tmp / "oidc-provider")
        node_ctx.tmp.mkdir()
        pairs = [(target, ctx), (node_t, node_ctx)]
        with CpuWatch(idp.database.name) as watch:
            results = measure(pairs, list(ENDPOINTS), runs, seconds, log)
        log(f"  idp alone: returning users' whole sign-in, {runs} runs (Python load generator)")
        with CpuWatch(idp.database.name) as signin_watch:
            record["sign_in"] = measure_sign_ins(idp, target, runs, seconds, log)
        record.update(
            idp=results[target.name], node=results[node_t.name],
            idp_rss=[(pid, peak_rss_kib(pid)) for pid in idp.worker_pids()],
            idp_master_rss=peak_rss_kib(idp.process.pid), node_rss=peak_rss_kib(node.process.pid),
            other_cores={"the interleaved runs": watch.other_cores(),
                         "the sign-in runs": signin_watch.other_cores()},
        )  # fmt: skip
    finally:
        node.stop()
        idp.stop()
    return record


def wait_for_quiet(limit_s):
    """Give other processes' work (another session's tests) up to ``limit_s`` to calm down."""
    deadline = time.monotonic() + limit_s
    while True:
        with CpuWatch("-") as watch:
            time.sleep(QUIET_WINDOW_S)
        other = watch.other_cores()[0]
        if other <= BUSY_CORES or time.monotonic() >= deadline:
            break
        log(f"other processes use {other:.2f} cores; waiting for a quieter machine …")
    log(f"other processes use {other:.2f} cores; starting")


def run(args):
    """Everything, in order; returns the record the report is made of."""
    wait_for_quiet(args.wait_quiet)
    log("crypto floors …")
    floors = crypto_floors()
    with tempfile.TemporaryDirectory(prefix="idp-bench-") as tmp, Database() as db:
        tmp = Path(tmp)
        floors.update(postgres_floors(db.url.replace("+psycopg", "")))
        idp = IdpServer(tmp, db, free_port(), dict(args.idp_env))
        log(f"idp: database {db.name}; setting up through the idp CLI …")
        idp.setup()
        target, ctx = idp_target(idp), Context(tmp)
        configs = [parse_config(c) for c in args.workers.split(",")] if args.workers else SWEEP
        sweep = {}
        for config in configs:
            log(f"idp worker model {config.name} …")
            sweep[config.name] = sweep_phase(idp, target, ctx, config, args.sweep_seconds)
        chosen = score(sweep)
        config = next(c for c in configs if c.name == chosen)
        log(f"idp ({chosen}) and oidc-provider, interleaved: every endpoint, {args.runs} runs …")
        record = comparison_phase(idp, target, ctx, config, args.runs, args.seconds)
        log("each token endpoint's own work in a bare loop (bench/design_floors.py) …")
        record["design_floors"] = design_floors(db.url.replace("+psycopg", ""), log)
        machine = describe(db.version())
    return record | {
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": machine, "runs": args.runs, "seconds": args.seconds,
        "sweep_seconds": args.sweep_seconds, "threads": THREADS, "connections": CONNECTIONS,
        "sweep": sweep, "chosen": chosen, "floors": floors, "idp_env": dict(args.idp_env),
    }  # fmt: skip


def main():
    """Parse options, run, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="length of each run")
    parser.add_argument("--sweep-seconds", type=int, default=3)
    parser.add_argument(
        "--workers",
        help="the worker models to sweep, comma-separated (one: no sweep): "
        "sync:N, gthread:NxT, granian:N or granian:NxT",
    )
    parser.add_argument(
        "--wait-quiet", type=int, default=120, help="seconds to wait for other processes to calm"
    )
    parser.add_argument(
        "--idp-env", action="append", default=[], type=setting, metavar="IDP_NAME=VALUE",
        help="an idp setting for an A/B run (repeatable), e.g. IDP_TOKEN_CACHE=0; the "
        "results name it",
    )  # fmt: skip
    args = parser.parse_args()
    peers = ROOT / "tests" / "peers" / "node_modules" / "oidc-provider"
    if not peers.is_dir():
        sys.exit("oidc-provider is missing: run `make peers` (npm ci in tests/peers)")
    ensure_wrk()
    started = time.monotonic()
    record = run(args)
    text = document(record)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"{stamp}.md").write_text(text)
    (RESULTS / "latest.md").write_text(text)
    log(f"written bench/results/{stamp}.md and latest.md in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
