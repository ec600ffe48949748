"""The machines of a small cluster, on loopback: idp nodes, a load balancer, a private Redis.

Each node is started the production way (``idp serve``: granian and its workers) in a
process group of its own, so that "the node dies" means what it means on a real machine:
master and workers gone at once.

The load balancer stands where nginx stands in ``docs/deploy.md``. Every node is configured
with the balancer's URL as ``IDP_PUBLIC_URL``, so the issuer, every absolute URL idp prints
and every cookie name one origin whichever node answers — as in production, and without
teaching the scripted browser to rewrite URLs. A test picks the node per request with the
``X-Cluster-Node`` header (the balancer strips it; without it, round robin), and the balancer
records who served what, so tests can assert it. Like nginx it appends the caller's address
to ``X-Forwarded-For`` (the nodes run with ``IDP_TRUSTED_PROXIES=1``) and, when a node refuses
the connection, passes the request to the next one (``proxy_next_upstream error``).
"""

import http.client
import itertools
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
import requests
from requests.adapters import HTTPAdapter

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NODE_HEADER = "X-Cluster-Node"
READY_WAIT = 60  # seconds a process may take to answer before a fixture gives up
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    NODE_HEADER.lower(),
}


def unavailable(reason):
    """Skip on a developer's machine, fail on CI (``CI=true``): a skipped cluster proves nothing."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the cluster tests cannot run: {reason}", pytrace=False)
    pytest.skip(f"cluster tests unavailable: {reason}")


def free_port():
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, seconds, what):
    """Poll ``check`` until it is true; fail after ``seconds`` (a bound, never a measurement)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds}s")


def loopback_address():
    """A random address of 127.0.0.0/8 to call from: each test is a client of its own, so its
    per-IP counters in the shared Redis start at zero whatever ran before it."""
    return "127.{}.{}.{}".format(*(1 + secrets.randbelow(254) for _ in range(3)))


class SourceAddressAdapter(HTTPAdapter):
    """A requests transport whose connections leave from a given local address."""

    def __init__(self, address):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        """Bind every connection of the pool to ``address``."""
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


class Node:
    """One idp node: ``idp serve`` (granian, two workers) on its own loopback port."""

    def __init__(self, name, env, workdir):
        self.name = name
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(workdir) / f"node-{name}.log"
        self.process = None

    def start(self):
        """Start (or start again, on the same port) and wait until it is ready."""
        argv = [str(BIN / "idp"), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [*argv, "--workers", "2", "--access-log"],  # the fault tests read it
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until(self._ready_or_dead, READY_WAIT, f"node {self.name} ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log()}") from None
        return self

    def _ready_or_dead(self):
        if self.process.poll() is not None:
            code = self.process.returncode
            raise AssertionError(f"node {self.name} exited {code}:\n{self.log()}")
        return self.ready()

    def ready(self):
        """The node's readiness check answers 200."""
        try:
            return requests.get(f"{self.url}/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def kill(self):
        """SIGKILL master and workers together, as when the machine dies. (Killing the master
        alone leaves its workers serving on the inherited socket until they notice.)"""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        # The master is reaped at once; its workers, which hold the listening socket too,
        # may take a moment longer to go, and a connection made meanwhile is reset rather
        # than refused. A dead machine refuses: wait for that.
        wait_until(self._refuses_connections, READY_WAIT, f"node {self.name} gone")

    def _refuses_connections(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        except OSError:
            pass
        return False

    def stop(self):
        """A graceful stop (SIGTERM to the master), forced after a while."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self):
        """Everything the node wrote (the server's access log and idp's own log lines)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class RedisServer:
    """A private redis-server on a free port, to be killed without touching the shared one."""

    def __init__(self, workdir):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = Path(workdir) / "redis.log"
        self.process = None

    def start(self):
        """Start (again, on the same port) and wait until it answers PING."""
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._pong, READY_WAIT, f"redis-server on port {self.port}")
        return self

    def _pong(self):
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            return client.ping()
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self):
        """Gone at once: no shutdown, no save."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class LoadBalancer:
    """One public origin in front of the nodes: a threaded reverse proxy on loopback."""

    def __init__(self):
        self.nodes = {}  # name → port
        self.served = []  # (client address, method, path, node), in order
        self._turn = itertools.count()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
        self._server.balancer = self
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def candidates(self, pinned):
        """The node asked for (or the next in turn), then the others in order."""
        names = list(self.nodes)
        first = pinned if pinned in self.nodes else names[next(self._turn) % len(names)]
        start = names.index(first)
        return names[start:] + names[:start]

    def nodes_for(self, address):
        """The nodes that served one client address, request by request."""
        return [node for client, _, _, node in self.served if client == address]

    def close(self):
        """Stop accepting and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _ProxyHandler(BaseHTTPRequestHandler):
    """Forward one request to a node and its answer back, as is (no redirects followed)."""

    def do_GET(self):
        """Forward a GET."""
        self._forward()

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format, *args):
        """Quiet: the nodes keep the access log."""

    def _forward(self):
        balancer = self.server.balancer
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        client = self.client_address[0]
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        prior = self.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{prior}, {client}" if prior else client
        for name in balancer.candidates(self.headers.get(NODE_HEADER)):
            try:
                status, reply_headers, data = _relay(
                    balancer.nodes[name], self.command, self.path, body, headers
                )
            except ConnectionRefusedError:
                continue  # nothing was sent: the next node may take it
            except (OSError, http.client.HTTPException) as exc:
                self.send_error(502, f"the node dropped the connection ({exc!r})")
                return
            balancer.served.append((client, self.command, self.path.split("?")[0], name))
            self.send_response_only(status)
            for key, value in reply_headers:
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_error(502, "no node accepted the connection")


def _relay(port, method, path, body, headers):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()
