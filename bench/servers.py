"""The two servers under load, each started the way it runs in production, on loopback.

idp: ``idp serve`` (granian or gunicorn) on a fresh PostgreSQL database with ``IDP_ENV=production``,
a generated secret key and a temporary keys folder; tenant, client and user are created
through the ``idp`` CLI with ``--json``. oidc-provider: one node process running
``bench/oidc_provider_server.mjs``.
"""

import base64
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIRECT_URI = "http://127.0.0.1:9/cb"
TENANT = "bench"
READY_TIMEOUT = 60


@dataclass(frozen=True)
class WorkerConfig:
    """A server and worker model: ``threads`` None means gunicorn's sync workers (granian: 1)."""

    workers: int
    threads: int | None = None
    server: str = "gunicorn"

    @property
    def name(self):
        """How the results name it."""
        if self.server == "granian":
            return f"granian {self.workers}×{self.threads or 1}"
        if self.threads:
            return f"gthread {self.workers}×{self.threads}"
        return f"sync ×{self.workers}"

    def serve_args(self):
        """The options of ``idp serve`` that select this model."""
        args = ["--server", self.server, "--workers", str(self.workers)]
        return args + (["--threads", str(self.threads)] if self.threads else [])


class Database:
    """A fresh ``idp_bench_<random>`` database, dropped on exit."""

    def __init__(self):
        self.name = f"idp_bench_{secrets.token_hex(4)}"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.name}"

    def _admin(self, sql):
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(sql)

    def __enter__(self):
        self._admin(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *exc):
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def version(self):
        """The server's version string."""
        with psycopg.connect(PG_ADMIN) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]


def wait_until_serving(url, process, deadline_s=READY_TIMEOUT):
    """Poll ``url`` until it answers 200; seconds since ``process`` started are returned."""
    host, port, path = _split(url)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        conn = http.client.HTTPConnection(host, port, timeout=2)
        try:
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.005)
    raise RuntimeError(f"{url} did not answer within {deadline_s} s")


def _split(url):
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return host, int(port), "/" + path


def children(pid):
    """Process ids whose parent is ``pid`` (the server's workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def peak_rss_kib(pid):
    """VmHWM: the highest resident set size the process reached, KiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Server:
    """A started process, its start-up time, and how to stop it."""

    name = "server"
    process = None
    startup_s = None

    def _launch(self, argv, env, cwd, log_name, ready_url):
        self.log_path = self.workdir / log_name
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_until_serving(ready_url, self.process)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{exc}; log:\n{self.log_path.read_text()[-3000:]}") from None
        self.startup_s = time.monotonic() - started
        return self.startup_s

    def stop(self):
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class IdpServer(Server):
    """idp under ``idp serve`` on PostgreSQL, set up through its CLI."""

    name = "idp"

    def __init__(self, workdir, database, port, settings=None):
        self.workdir = Path(workdir)
        self.database = database
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        self.env.update(
            IDP_ENV="production",
            IDP_SECRET_KEY=secrets.token_urlsafe(48),
            IDP_PUBLIC_URL=self.base,
            IDP_DATABASE_URL=database.url,
            IDP_KEYS_DIR=str(self.workdir / "keys"),
            IDP_INSTANCE_DIR=str(self.workdir / "instance"),
            # As behind one reverse proxy: the sign-in load gives each simulated browser its
            # own X-Forwarded-For address (bench/signin.py); the other loads send none.
            IDP_TRUSTED_PROXIES="1",
        )
        self.env.update(settings or {})  # run.py --idp-env: an A/B run's own settings
        self.client = self.es256_client = self.user = None

    def cli(self, *args):
        """Run ``idp ARGS``; the parsed JSON object when ``--json`` was given."""
        done = subprocess.run(
            [str(BIN / "idp"), *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"idp {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return json.loads(done.stdout) if "--json" in args else done.stdout

    def setup(self):
        """Schema and keys, then the tenant, a first-party client and an active user."""
        self.cli("init")
        self.cli("tenant", "create", TENANT, "--name", "Benchmark", "--json")
        self.client = self.cli(
            "client", "create", "--tenant", TENANT, "--name", "bench",
            "--redirect-uri", REDIRECT_URI, "--grant-type", "authorization_code",
            "--grant-type", "refresh_token", "--grant-type", "client_credentials",
            "--first-party", "--json",
        )  # fmt: skip
        self.es256_client = self.cli(
            "client", "create", "--tenant", TENANT, "--name", "bench ES256",
            "--grant-type", "client_credentials", "--access-token-alg", "ES256", "--json",
        )  # fmt: skip
        password = secrets.token_urlsafe(18) + "-Aa1"
        totp_b32 = base64.b32encode(secrets.token_bytes(20)).decode()  # RFC 6238's 160 bits
        info = self.cli(
            "user", "create", "--tenant", TENANT, "--email", "bench@example.com",
            "--password", password, "--totp-secret", totp_b32, "--active", "--json",
        )  # fmt: skip
        self.user = {**info, "password": password, "totp_secret": totp_b32}

    def start(self, config):
        """Serve with this worker model; returns seconds to the first answered request."""
        argv = [str(BIN / "idp"), "serve", "--port", str(self.port), *config.serve_args()]
        ready = f"{self.base}/{TENANT}/.well-known/openid-configuration"
        return self._launch(argv, self.env, ROOT, "idp-server.log", ready)

    def worker_pids(self):
        """The server's workers (``idp serve`` execs the server, so its pid is the master's)."""
        return children(self.process.pid)


class NodeServer(Server):
    """node oidc-provider, one process, in-memory storage."""

    name = "oidc-provider"
    script = ROOT / "bench" / "oidc_provider_server.mjs"

    def __init__(self, workdir, port):
        self.workdir = Path(workdir)
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.client = {
            "client_id": "bench-" + secrets.token_hex(4),
            "client_secret": secrets.token_urlsafe(32),
        }

    def start(self):
        """One node process; returns seconds to the first answered request."""
        argv = [
            "node", str(self.script), str(self.port),
            self.client["client_id"], self.client["client_secret"], REDIRECT_URI,
        ]  # fmt: skip
        env = {**os.environ, "NODE_ENV": "production"}
        ready = f"{self.base}/.well-known/openid-configuration"
        return self._launch(argv, env, ROOT / "bench", "oidc-provider.log", ready)
