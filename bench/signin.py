"""The whole sign-in of a returning user per second (idp only), with a Python load generator.

wrk cannot carry one browser's cookies and CSRF fields through a chain of forms, so each
sign-in here is a fresh ``requests`` session (a new browser: no cookies) that follows
``/authorize`` → the email form → the password form → the authenticator-code form → the
redirect with the code, and then the client's code exchange (``POST /token``). CONCURRENCY
threads run sign-ins side by side; a run starts new sign-ins for ``seconds`` and is also
bounded by the users made for it.

idp refuses an authenticator code whose 30 s step that user already spent, so every
sign-in of a run has its own user. The users are made before each run, outside the timed
loop, by idp's own ``users.create_user`` (argon2id hashes from idp's hasher) in
CREATORS processes; ``python bench/signin.py create-users FIRST COUNT`` is that process.
They share one password and one authenticator secret (each user's hash has its own salt
and each user's TOTP steps are tracked apart, so nothing is cached between them).

Each simulated browser comes from its own address in ``X-Forwarded-For`` and idp runs with
``IDP_TRUSTED_PROXIES=1``, as behind one reverse proxy: otherwise idp's per-IP limit on the
sign-in forms (60 POSTs a minute) would refuse loopback after 20 sign-ins.
"""

import math
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urljoin
from urllib.parse import urlsplit

import requests

from load import Measurement
from load import Run
from machine import _cmdline
from machine import _proc_stats
from mint import MAX_HOPS
from mint import VERIFIER
from mint import FormReader
from mint import _answer
from servers import REDIRECT_URI
from servers import ROOT
from servers import TENANT

CONCURRENCY = 8
CREATORS = 2  # processes making users (one per core)
WARMUP_USERS = 2 * CONCURRENCY  # the discarded warm-up run; its rate sizes the next runs
MAX_USERS_PER_RUN = 2_000
SCOPE = "openid email"
TICKS = os.sysconf("SC_CLK_TCK")
PASSWORD_ENV, TOTP_ENV = "BENCH_SIGNIN_PASSWORD", "BENCH_SIGNIN_TOTP"


class SignInFailed(Exception):
    """A step answered something a returning user's sign-in never gets."""

    def __init__(self, status, where):
        super().__init__(f"{status} at {where}")
        self.status = status


class Users:
    """Returning users made for the sign-in runs, each handed out once."""

    def __init__(self, idp):
        self.idp = idp
        self.made = 0
        self.password = idp.user["password"]
        self.totp_secret = idp.user["totp_secret"]

    def make(self, count):
        """``count`` new active users with password and authenticator, through idp itself."""
        env = {**self.idp.env, PASSWORD_ENV: self.password, TOTP_ENV: self.totp_secret}
        first, share = self.made, math.ceil(count / CREATORS)
        procs = []
        for start in range(first, first + count, share):
            n = min(share, first + count - start)
            argv = [sys.executable, __file__, "create-users", str(start), str(n)]
            procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, stderr=subprocess.PIPE))
        for proc in procs:
            _, err = proc.communicate()
            if proc.returncode:
                raise RuntimeError(f"creating sign-in users failed:\n{err.decode()[-3000:]}")
        self.made += count
        return [self._user(i) for i in range(first, first + count)]

    def _user(self, i):
        return {"email": _email(i), "password": self.password, "totp_secret": self.totp_secret}


def _email(i):
    return f"signin-{i}@example.com"


def _ip(n):
    """A distinct client address per sign-in (10.0.0.0/8)."""
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def sign_in_once(target, user, ip):
    """One returning user's whole sign-in in a fresh browser, then the code exchange.
    Returns the number of HTTP requests it took; raises SignInFailed on any unexpected answer."""
    browser = requests.Session()
    browser.headers["X-Forwarded-For"] = ip
    url = target.base + target.authorization_url(SCOPE)
    response = browser.get(url, allow_redirects=False, timeout=30)
    code, sent = None, 1
    while code is None and sent <= MAX_HOPS:
        sent += 1
        if response.is_redirect:
            location = urljoin(url, response.headers["Location"])
            if location.startswith(REDIRECT_URI):
                code = parse_qs(urlsplit(location).query).get("code", [""])[0]
                if not code:
                    raise SignInFailed("no-code", urlsplit(location).path)
                break
            url = location
            response = browser.get(url, allow_redirects=False, timeout=30)
        elif response.status_code == 200:
            form = FormReader()
            form.feed(response.text)
            if "step" not in form.fields:
                raise SignInFailed("no-form", urlsplit(url).path)
            data = {**form.fields, **_answer(form.fields["step"], user)}
            url = urljoin(url, form.action)
            response = browser.post(url, data=data, allow_redirects=False, timeout=30)
        else:
            raise SignInFailed(response.status_code, urlsplit(url).path)
    if code is None:
        raise SignInFailed("no-code", urlsplit(url).path)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": VERIFIER,
    }
    auth = (target.client_id, target.client_secret)
    response = requests.post(target.url("token"), data=data, auth=auth, timeout=30)
    if response.status_code != 200 or "id_token" not in response.json():
        raise SignInFailed(f"token-{response.status_code}", "/token")
    return sent


def run_sign_ins(target, users, seconds, first_ip, server_ticks):
    """CONCURRENCY threads sign ``users`` in, one each, starting new ones for ``seconds``.
    Returns a load.Run (its rate is sign-ins/s) and the CPU seconds of the load generator,
    of idp's workers and of the database's backends over the run (``server_ticks()``)."""
    pending, lock = iter(enumerate(users, first_ip)), threading.Lock()
    latencies, failures, sent = [], {}, []
    started = time.perf_counter()
    deadline = started + seconds

    def worker():
        while time.perf_counter() < deadline:
            with lock:
                item = next(pending, None)
            if item is None:
                return
            n, user = item
            t0 = time.perf_counter()
            try:
                hops = sign_in_once(target, user, _ip(n))
            except (SignInFailed, requests.RequestException) as exc:
                status = getattr(exc, "status", "socket")
                with lock:
                    failures[status] = failures.get(status, 0) + 1
                continue
            with lock:
                latencies.append(time.perf_counter() - t0)
                sent.append(hops)

    cpu_before, server_before = os.times(), server_ticks()
    threads = [threading.Thread(target=worker) for _ in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu_after, server_after = os.times(), server_ticks()
    cpu = {
        "generator": (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system),
        **{k: (server_after[k] - server_before[k]) / TICKS for k in server_after},
        "requests": statistics.median(sent) if sent else 0,
    }
    ms = sorted(1000 * x for x in latencies) or [0.0]
    p99 = ms[min(len(ms) - 1, math.ceil(0.99 * len(ms)) - 1)]
    statuses = " ".join(f"{status}:{n}" for status, n in failures.items())
    run = Run(len(latencies), elapsed, sum(failures.values()), statistics.median(ms), p99, statuses)
    return run, cpu


def server_ticker(idp):
    """CPU ticks so far of idp's workers and of the bench database's backends."""
    workers = set(idp.worker_pids())

    def ticks():
        procs = _proc_stats()
        pg = sum(t for pid, (_, t, comm) in procs.items()
                 if comm.startswith("postgres") and idp.database.name in _cmdline(pid))  # fmt: skip
        return {"workers": sum(procs[p][1] for p in workers if p in procs), "postgres": pg}

    return ticks


def floor_rate(floors, cores=None):
    """Sign-ins/s if each cost only its argon2id verification and its two RS256 signatures
    (the access token and the ID token of the code exchange), on every core."""
    cores = cores or os.cpu_count() or 1
    argon = next(rate for name, rate in floors.items() if name.startswith("argon2id"))
    rs256 = next(rate for name, rate in floors.items() if name.startswith("RS256 sign"))
    return cores / (1 / argon + 2 / rs256)


def measure_sign_ins(idp, target, runs, seconds, log=print):
    """A discarded warm-up run, then ``runs`` runs on fresh users; the Measurement and the
    load generator's CPU seconds per sign-in."""
    users, ticks = Users(idp), server_ticker(idp)
    warm, _ = run_sign_ins(target, users.make(WARMUP_USERS), seconds, users.made, ticks)
    rate = max(warm.rps, 1.0)
    done, cpus = [], []
    for _ in range(runs):
        count = min(MAX_USERS_PER_RUN, math.ceil(rate * seconds * 1.5) + CONCURRENCY)
        batch = users.make(count)  # outside the timed loop
        run, cpu = run_sign_ins(target, batch, seconds, users.made, ticks)
        rate = max(rate, run.rps)
        done.append(run)
        cpus.append(cpu)
        log(
            f"  idp            sign-in, returning user    {run.rps:8.1f} /s     "
            f"p50 {run.p50_ms:6.1f} ms  p99 {run.p99_ms:7.1f} ms  errors {run.errors} "
            f"({run.requests} of {count} users)"
        )
    measurement = Measurement(done)
    count = max(1, measurement.requests)
    parts = ("generator", "workers", "postgres")
    return {
        "measurement": measurement,
        "cpu_ms": {k: 1000 * sum(c[k] for c in cpus) / count for k in parts},
        "requests": statistics.median(c["requests"] for c in cpus),
        "concurrency": CONCURRENCY,
        "seconds": seconds,
        "users": users.made,
    }


def _create_users(first, count):
    """In an app context of the idp under test: ``count`` users from number ``first``."""
    from idp import create_app
    from idp.services import tenants
    from idp.services import users

    app = create_app()
    with app.app_context():
        tenant = tenants.query_tenant(TENANT)
        for i in range(first, first + count):
            users.create_user(
                tenant, _email(i), password=os.environ[PASSWORD_ENV],
                totp_secret=os.environ[TOTP_ENV], active=True,
            )  # fmt: skip


if __name__ == "__main__" and sys.argv[1:2] == ["create-users"]:
    sys.path.insert(0, str(Path(ROOT)))
    _create_users(int(sys.argv[2]), int(sys.argv[3]))
