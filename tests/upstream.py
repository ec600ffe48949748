"""A real upstream OpenID Provider for federation tests: npm ``oidc-provider`` in node.

``tests/peers/upstream_op.mjs`` runs oidc-provider (OpenID Certified) on plain http on
127.0.0.1 with its own sign-in page (login + password, Sign in / Cancel) and, when the
configuration asks for it, a consent page (Allow / Deny). This module starts it, signs in
at it with the scripted :class:`tests.helpers.Browser`, and offers two fixtures:

``oidc_upstream``
    one provider for the whole test session, with :func:`default_config`. Tests add their
    own client (``set_client``, e.g. with idp's callback URL as redirect URI) and, when
    they need them, their own accounts (``set_account``).
``make_upstream``
    a factory, ``make_upstream(redirect_uris=None, accounts=None, **config)``, for a fresh
    provider of the test's own (stopped when the test ends); ``redirect_uris`` become the
    redirect URIs of the default ``idp-fed`` client.

Use them from a test module with ``from tests.upstream import make_upstream`` (the test's
parameter then shadows the import: ``# noqa: F811``), or from a conftest.

Without node or the npm peers the fixtures skip, or fail when ``CI=true``
(:func:`tests.interop.peers.require_node_peers`).
"""

import contextlib
import json
import secrets
import subprocess
import threading
import time
from urllib.parse import quote
from urllib.parse import urljoin
from urllib.parse import urlsplit

import pytest
import requests

from tests.helpers import parse_forms
from tests.interop.peers import PEERS_DIR
from tests.interop.peers import require_node_peers

SCRIPT = PEERS_DIR / "upstream_op.mjs"
READY_TIMEOUT = 20.0

DEFAULT_PASSWORD = "upstream-password"
DEFAULT_CLIENT_ID = "idp-fed"
DEFAULT_CLIENT_SECRET = "idp-fed-secret-0123456789abcdef"
DEFAULT_REDIRECT_URIS = ("https://rp.example/cb",)
DEFAULT_ACCOUNTS = {
    "alice": {
        "sub": "alice-0001",
        "email": "alice@upstream.example",
        "email_verified": True,
        "name": "Alice Upstream",
        "groups": ["staff", "admins"],
        "acr": "urn:upstream:acr:mfa",
        "amr": ["pwd", "otp"],
    },
    "bob": {
        "sub": "bob-0002",
        "email": "bob@upstream.example",
        "email_verified": False,
        "name": "Bob Upstream",
        "groups": ["staff"],
        "amr": ["pwd"],
    },
}


def default_config(redirect_uris=None, accounts=None, **config):
    """The configuration of ``upstream_op.mjs``: client ``idp-fed`` and alice and bob.

    ``redirect_uris`` are the ``idp-fed`` client's (default ``https://rp.example/cb``);
    ``accounts`` replaces the default accounts; any other key (``clients``, ``password``,
    ``consent``, ``pkce``, ``acr_values``, ``features``, ``ttl``, ``port``) is passed
    through as described at the top of ``upstream_op.mjs``.
    """
    clients = [
        {
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "redirect_uris": list(redirect_uris or DEFAULT_REDIRECT_URIS),
            "token_endpoint_auth_method": "client_secret_basic",
            "id_token_signed_response_alg": "RS256",
        }
    ]
    return {
        "password": DEFAULT_PASSWORD,
        "accounts": dict(DEFAULT_ACCOUNTS if accounts is None else accounts),
        "clients": clients,
        **config,
    }


class UpstreamError(RuntimeError):
    """The provider did not start, or refused a control request."""


class Upstream:
    """A running ``upstream_op.mjs``: its issuer, its metadata, and its test controls."""

    def __init__(self, process, issuer, config, output):
        self.process = process
        self.issuer = issuer
        self.port = urlsplit(issuer).port
        self.discovery_url = f"{issuer}/.well-known/openid-configuration"
        self.config = config
        self._output = output
        self._metadata = None
        self.startup_seconds = None
        self.returncode = None

    @property
    def output(self):
        """Everything the process printed so far (stdout and stderr), as text."""
        return "\n".join(self._output)

    def metadata(self):
        """The discovery document (fetched once)."""
        if self._metadata is None:
            response = requests.get(self.discovery_url, timeout=10)
            response.raise_for_status()
            self._metadata = response.json()
        return self._metadata

    def jwks(self):
        """The provider's public keys, as published at ``jwks_uri``."""
        response = requests.get(self.metadata()["jwks_uri"], timeout=10)
        response.raise_for_status()
        return response.json()

    def _put(self, kind, name, body):
        url = f"{self.issuer}/__test/{kind}/{quote(name, safe='')}"
        response = requests.put(url, json=body, timeout=10)
        if response.status_code != 200:
            raise UpstreamError(f"PUT {kind}/{name}: {response.status_code} {response.text}")
        return response.json()

    def set_client(self, redirect_uris, client_id=None, client_secret=None, **metadata):
        """Create or replace a client; returns its metadata with ``client_id``/``client_secret``.

        Without ``client_id`` a fresh one is made; a confidential client
        (``client_secret_basic``) gets a random secret unless ``client_secret`` is given or
        ``token_endpoint_auth_method="none"``. Other keys are client metadata (RFC 7591).
        """
        client_id = client_id or f"client-{secrets.token_hex(6)}"
        body = {"redirect_uris": list(redirect_uris), **metadata}
        if metadata.get("token_endpoint_auth_method", "client_secret_basic") != "none":
            body.setdefault("token_endpoint_auth_method", "client_secret_basic")
            body["client_secret"] = client_secret or secrets.token_urlsafe(24)
        return self._put("clients", client_id, body)

    def set_account(self, login, **claims):
        """Create or replace an account (claims as in ``DEFAULT_ACCOUNTS``, plus ``password``)."""
        return self._put("accounts", login, claims)

    def events(self, kind=None):
        """What the provider saw, in order; ``kind`` filters: ``authorization`` (the accepted
        request's parameters), ``login``, ``login_failed``, ``consent``, ``denied``, ``token``
        (grant type and the client authentication method), ``authorization.error``, …"""
        response = requests.get(f"{self.issuer}/__test/events", timeout=10)
        response.raise_for_status()
        return [e for e in response.json() if kind is None or e["type"] == kind]


@contextlib.contextmanager
def start_upstream(config=None, *, node=None, timeout=READY_TIMEOUT):
    """Run ``upstream_op.mjs`` with ``config`` (default :func:`default_config`) until exit.

    Yields an :class:`Upstream` once the provider printed ``READY <issuer>``; raises
    :class:`UpstreamError` (with the process's output) if that takes over ``timeout``
    seconds or the process exits first. ``node`` defaults to :func:`require_node_peers`.
    On exit the process gets SIGTERM (SIGKILL after 5 s); ``Upstream.returncode`` is then set.
    """
    config = default_config() if config is None else config
    node = node or require_node_peers()
    output = []
    found = {}
    ready = threading.Event()
    started = time.monotonic()
    with subprocess.Popen(
        [node, str(SCRIPT), json.dumps(config)],
        cwd=PEERS_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    ) as process:

        def read():
            for line in process.stdout:
                line = line.rstrip("\n")
                output.append(line)
                if line.startswith("READY ") and "issuer" not in found:
                    found["issuer"] = line.removeprefix("READY ").strip()
                    ready.set()
            ready.set()  # EOF: the process is gone, wake the waiter

        reader = threading.Thread(target=read, name="upstream-op-output", daemon=True)
        reader.start()
        upstream = None
        try:
            ready.wait(timeout)
            if "issuer" not in found:
                state = "exited" if process.poll() is not None else f"not ready after {timeout}s"
                raise UpstreamError(f"upstream_op.mjs {state}:\n" + "\n".join(output))
            upstream = Upstream(process, found["issuer"], config, output)
            upstream.startup_seconds = time.monotonic() - started
            yield upstream
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            reader.join(5)
            if upstream is not None:
                upstream.returncode = process.returncode


@pytest.fixture(scope="session")
def oidc_upstream():
    """One upstream provider for the test session (:func:`default_config`)."""
    node = require_node_peers()
    with start_upstream(default_config(), node=node) as upstream:
        yield upstream


@pytest.fixture
def make_upstream():
    """``make_upstream(redirect_uris=None, accounts=None, **config) -> Upstream``: a fresh
    provider (see :func:`default_config`), stopped when the test ends."""
    with contextlib.ExitStack() as stack:

        def make(redirect_uris=None, accounts=None, **config):
            node = require_node_peers()
            started = start_upstream(default_config(redirect_uris, accounts, **config), node=node)
            return stack.enter_context(started)

        yield make


# -- the scripted browser at the upstream ------------------------------------------------


def _arrive(browser, response_or_url, stop_prefix):
    """Follow redirects from a response (or a URL to open) until a page or ``stop_prefix``."""
    if isinstance(response_or_url, str):
        if response_or_url.startswith(stop_prefix):
            return response_or_url
        response_or_url = browser.get(response_or_url)
    return browser.follow(response_or_url, stop_prefix)


def _interaction_form(page, button):
    """The index of the upstream form on ``page`` that has ``button``, else None."""
    if "html" not in page.headers.get("Content-Type", ""):
        return None
    for index, form in enumerate(parse_forms(page.text)):
        action = urljoin(page.url, form["action"] or page.url)
        if "/interaction/" in urlsplit(action).path and button in form["buttons"]:
            return index
    return None


SIGN_IN = ("action", "login")
ALLOW = ("action", "allow")
DENY = ("action", "deny")


def is_login_page(page):
    """Whether ``page`` is the upstream's sign-in page."""
    return not isinstance(page, str) and _interaction_form(page, SIGN_IN) is not None


def is_consent_page(page):
    """Whether ``page`` is the upstream's consent page."""
    return not isinstance(page, str) and _interaction_form(page, ALLOW) is not None


def sign_in_upstream(browser, response_or_page, login, password, stop_prefix, *, consent=True):
    """Follow redirects to the upstream, sign in as ``login``, allow consent if asked, and
    follow back until a redirect leaves for ``stop_prefix``.

    ``response_or_page`` is a response (a redirect towards the upstream, or an upstream page
    already shown) or a URL to open. Returns like :meth:`Browser.follow`: the URL that
    starts with ``stop_prefix``, or the page where the journey stopped (the sign-in page
    again after a wrong password; the consent page when ``consent=False``). An upstream
    session that is still signed in goes straight back without any page.
    """
    page = _arrive(browser, response_or_page, stop_prefix)
    if isinstance(page, str):
        return page
    form = _interaction_form(page, SIGN_IN)
    if form is not None:
        fields = {"login": login, "password": password}
        page = browser.follow(browser.submit(page, fields, SIGN_IN, form), stop_prefix)
        if isinstance(page, str) or is_login_page(page):
            return page
    form = _interaction_form(page, ALLOW)
    if consent and form is not None:
        page = browser.follow(browser.submit(page, button=ALLOW, form_index=form), stop_prefix)
    return page


def deny_at_upstream(browser, response_or_page, stop_prefix):
    """Press Cancel (sign-in page) or Deny (consent page) at the upstream and follow back
    until ``stop_prefix``; the provider answers the client with ``error=access_denied``.

    Returns like :meth:`Browser.follow`; raises AssertionError if no upstream page with
    such a button is reached.
    """
    page = _arrive(browser, response_or_page, stop_prefix)
    form = None if isinstance(page, str) else _interaction_form(page, DENY)
    if form is None:
        shown = page if isinstance(page, str) else f"{page.status_code} {page.text[:500]}"
        raise AssertionError(f"no upstream page to deny at: {shown}")
    return browser.follow(browser.submit(page, button=DENY, form_index=form), stop_prefix)
