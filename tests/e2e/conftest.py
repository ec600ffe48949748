"""End-to-end fixtures: idp as `make run` gives it, under `idp serve`, driven by Debian's chromium.

The server is started the production way (an ``idp serve`` subprocess: granian on ``wsgi:app``)
after ``idp init --demo``, each with a temporary database, keys and instance folder,
so the test sees exactly what a newcomer sees and leaves nothing in the work tree.
"""

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
# Chromium as a quiet, single-purpose test browser: no sandbox (root in a container), no GPU,
# and none of the background traffic to the outside world that this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CSP_VIOLATION = re.compile(r"content[- ]security[- ]policy", re.IGNORECASE)
READY_WAIT = 60  # seconds the server may take to answer /readyz before the fixture gives up
SCROLLS_SIDEWAYS = "() => document.documentElement.scrollWidth > window.innerWidth"


def _unavailable(reason):
    """Skip on a developer's machine, fail on CI: a browser suite that skips proves nothing."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the e2e browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(f"e2e browser tests unavailable: {reason}")


@pytest.fixture(scope="session")
def e2e_environment():
    """Refuse early, before any server starts, when the browser journey cannot run here."""
    if os.environ.get("IDP_TEST_DB") == "postgresql":
        # Not a CI failure: `make test` runs the suite twice, and the same browser journey
        # already ran in the SQLite pass; the database only sits behind the server here.
        pytest.skip("the e2e journey runs in the SQLite pass of `make test`")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is missing (`make test` installs Debian's chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is missing (pip install -e '.[test]')")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(base, port, **settings):
    """The process environment with only our IDP_* settings, so no outer setting leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(
        IDP_ENV="development",
        IDP_PUBLIC_URL=f"http://127.0.0.1:{port}",
        IDP_DATABASE_URL=f"sqlite:///{base / 'idp.db'}",
        IDP_KEYS_DIR=str(base / "keys"),
        IDP_INSTANCE_DIR=str(base / "instance"),
        **settings,
    )
    return env


def run_idp(env, *args):
    """Run the ``idp`` command with the server's environment (same database and keys).

    With ``--json`` among ``args`` the printed object is returned, else the output text.
    """
    done = subprocess.run(
        [str(BIN / "idp"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"idp {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout) if "--json" in args else done.stdout


def _wait_ready(url, process, log_path):
    """Poll /readyz until the server answers; report its log if it dies or never answers."""
    deadline = time.monotonic() + READY_WAIT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"idp serve exited {process.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still booting a worker
            pass
        time.sleep(0.2)
    pytest.fail(f"idp serve did not answer /readyz in {READY_WAIT}s:\n{log_path.read_text()}")


@contextmanager
def serving(base, env, *serve_options):
    """``idp serve`` with ``env`` until the block ends; its log in ``base``."""
    url = env["IDP_PUBLIC_URL"]
    port = url.rsplit(":", 1)[1]
    log_path = base / "server.log"
    argv = [str(BIN / "idp"), "serve", *serve_options, "--host", "127.0.0.1", "--port", port]
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the server and its workers: one process group
        )
    try:
        _wait_ready(url, process, log_path)
        yield SimpleNamespace(url=url, env=env, log_path=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # Whatever the master left behind (a worker still draining a browser's keep-alive
        # connection) must not outlive the test, holding its port and a CPU.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def idp_server(e2e_environment, tmp_path):
    """`idp init --demo`, then `idp serve` with two workers on a free loopback port.

    A new server and database per test: each journey is a newcomer's first sign-in (the
    demo user enrols an authenticator), and no test meets another's used TOTP step.
    """
    env = _server_env(tmp_path, _free_port())
    init_output = run_idp(env, "init", "--demo")
    with serving(tmp_path, env, "--workers", "2") as server:
        server.init_output = init_output
        yield server


@pytest.fixture(scope="module")
def hosted_idp(e2e_environment, tmp_path_factory):
    """idp (`idp serve`) for one module's journeys, mailing a real SMTP server, with a local
    page as the relying party's redirect URI; ``idp(*args)`` runs the CLI on its database.

    One process with threads: the per-account throttles count in memory (there is no Redis
    here), and the lock-out journey needs every try counted in the same process. The per-IP
    limit on sign-in POSTs would be shared by every journey of the module, so idp trusts one
    proxy hop and each browser claims an address of its own (``open_page(client_ip=…)``).
    """
    from tests.e2e.application import running_application_page
    from tests.smtp import running_smtp_server

    base = tmp_path_factory.mktemp("hosted")
    with running_smtp_server() as smtp, running_application_page() as application_page:
        env = _server_env(
            base,
            _free_port(),
            IDP_SMTP_URL=smtp.url,
            IDP_TRUSTED_PROXIES="1",
            IDP_BREACH_API_URL="",  # no internet here; the shipped common-password list stays
        )
        run_idp(env, "init")
        with serving(base, env, "--workers", "1", "--threads", "4") as server:
            server.smtp = smtp
            server.application_page = application_page
            server.database = base / "idp.db"
            server.idp = lambda *args: run_idp(env, *args)
            yield server


@pytest.fixture(scope="session")
def chromium(e2e_environment):
    """Debian's chromium, headless, through Playwright (never `playwright install`).

    The screenshot folder is emptied here, once a browser will really run, so a stale
    picture is never mistaken for a new one and a skipped pass keeps the last run's.
    """
    from playwright.sync_api import sync_playwright

    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def authenticator_code(secret):
    """The code an authenticator app shows now for ``secret`` (RFC 6238: SHA-1, 6 digits, 30 s).

    Computed here, not by idp's own service, so the test stands where the phone does.
    """
    secret = "".join(secret.split()).upper()
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def tab_to(page, locator, limit=30):
    """Press Tab until ``locator`` has the focus, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if locator.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{locator} never got the focus in {limit} presses of Tab")


class WatchedPage:
    """A page in its own browser context whose console and uncaught errors are recorded,
    and which saves a numbered screenshot of every page it is asked to."""

    def __init__(self, context, prefix):
        self.context = context
        self.page = context.new_page()
        self.prefix = prefix
        self.shots = 0
        self.console_errors = []
        self.page_errors = []
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _on_console(self, message):
        if message.type == "error":
            self.console_errors.append(f"{self.page.url}: {message.text}")

    def screenshot(self, name):
        """Save the whole page as ``{prefix}-{nn}-{name}.png`` for a person to look at."""
        self.shots += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.prefix}-{self.shots:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def screenshots(self, name):
        """Save the whole page at every width of VIEWPORTS: ``{prefix}-{nn}-{name}-{width}.png``.

        The page is laid out again at each width and the viewport put back afterwards. A page
        that scrolls sideways at some width fails: on a phone that is a broken page.
        """
        self.shots += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        original = self.page.viewport_size
        sideways = []
        try:
            for width, size in VIEWPORTS.items():
                self.page.set_viewport_size(size)
                path = SCREENSHOTS / f"{self.prefix}-{self.shots:02d}-{name}-{width}.png"
                self.page.screenshot(path=str(path), full_page=True)
                if self.page.evaluate(SCROLLS_SIDEWAYS):
                    sideways.append(width)
        finally:
            self.page.set_viewport_size(original)
        assert not sideways, f"{self.page.url} scrolls sideways at {sideways} width"

    def csp_violations(self):
        """Console errors in which chromium reports a Content-Security-Policy violation."""
        return [text for text in self.console_errors if CSP_VIOLATION.search(text)]


@pytest.fixture
def open_page(chromium):
    """Opens a fresh browser context (no cookies) at a named viewport; closed after the test.

    ``client_ip`` is the address the context claims through X-Forwarded-For.
    """
    contexts = []

    def _open(viewport, prefix=None, client_ip=None):
        # idp behind one trusted proxy hop (``hosted_idp``) counts its per-IP limits by
        # X-Forwarded-For: a browser with its own address has its own budget.
        headers = {"X-Forwarded-For": client_ip} if client_ip else {}
        context = chromium.new_context(viewport=VIEWPORTS[viewport], extra_http_headers=headers)
        contexts.append(context)
        return WatchedPage(context, prefix or viewport)

    yield _open
    for context in contexts:
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed journey shows the server's side too: the page only says "Something went wrong"."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    server = (
        funcargs.get("idp_server") or funcargs.get("hosted_idp") or funcargs.get("federated_idp")
    )
    if report.failed and server is not None and server.log_path.exists():
        tail = server.log_path.read_text(errors="replace").splitlines()[-60:]
        report.sections.append(("server log (last 60 lines)", "\n".join(tail)))
    upstream = getattr(server, "upstream", None)  # federated_idp's npm oidc-provider
    if report.failed and upstream is not None:
        tail = upstream.output.splitlines()[-30:]
        report.sections.append(("upstream oidc-provider output (last 30 lines)", "\n".join(tail)))
    return report
