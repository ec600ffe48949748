"""Test helpers: a live idp over real HTTP, factories, and a scripted browser.

The browser is a ``requests.Session`` that submits idp's own HTML forms (CSRF
token included), so the journey is driven exactly as a person's browser would.
"""

import base64
import functools
import hashlib
import secrets
import threading
from html.parser import HTMLParser
from urllib.parse import parse_qs
from urllib.parse import urljoin
from urllib.parse import urlsplit

import pyotp
import requests
from werkzeug.serving import make_server


def count_view_calls(app, monkeypatch, endpoint):
    """A list that grows by one each time Flask runs ``endpoint``'s view (the fast paths'
    tests: what they serve must not reach it)."""
    view, calls = app.view_functions[endpoint], []

    @functools.wraps(view)  # the same name: still exempt from CSRF
    def counted(*args, **kwargs):
        calls.append(1)
        return view(*args, **kwargs)

    monkeypatch.setitem(app.view_functions, endpoint, counted)
    return calls


class LiveServer:
    """idp served by werkzeug's threaded server on a loopback port, in this process."""

    def __init__(self, app):
        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        app.config["PUBLIC_URL"] = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self):
        """Serve in the background."""
        self._thread.start()
        return self

    def stop(self):
        """Stop serving."""
        self._server.shutdown()

    def issuer(self, tenant):
        """The issuer URL of a tenant (slug or model)."""
        return f"{self.url}/{getattr(tenant, 'slug', tenant)}"


PHONES = {}


def register_phone(email, secret, before_code=None):
    """Remember a test user's authenticator secret, as their phone would."""
    PHONES[email.lower()] = (pyotp.TOTP(secret), before_code)


def phone_code(email):
    """The current code of the user's authenticator."""
    totp, before_code = PHONES[email.lower()]
    if before_code:
        before_code()
    return totp.now()


class FormParser(HTMLParser):
    """Collects every form: action, method, and inputs (including buttons with a value)."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(
                {
                    "action": attrs.get("action"),
                    "method": attrs.get("method", "get"),
                    "inputs": {},
                    "buttons": [],
                }
            )
        elif tag in ("input", "button") and self.forms and attrs.get("name"):
            if tag == "button" or attrs.get("type") == "submit":
                self.forms[-1]["buttons"].append((attrs["name"], attrs.get("value", "")))
            else:
                self.forms[-1]["inputs"][attrs["name"]] = attrs.get("value") or ""


def parse_forms(html):
    """The forms of an HTML page."""
    parser = FormParser()
    parser.feed(html)
    return parser.forms


def pkce_pair():
    """A random code_verifier and its S256 challenge (RFC 7636 §4)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Browser:
    """A scripted browser: follows idp's redirects, fills idp's forms, stops at the client."""

    def __init__(self, server):
        self.server = server
        self.http = requests.Session()
        self.last = None

    def get(self, url, **kwargs):
        """GET without following redirects."""
        self.last = self.http.get(url, allow_redirects=False, **kwargs)
        return self.last

    def follow(self, response, stop_prefix):
        """Follow redirects on idp until one leaves for ``stop_prefix`` (the client)."""
        while response.status_code in (301, 302, 303, 307):
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(stop_prefix):
                return location
            response = self.http.get(location, allow_redirects=False)
        self.last = response
        return response

    def submit(self, response, fields=None, button=None, form_index=0):
        """Submit a form of the page with ``fields`` filled in."""
        form = parse_forms(response.text)[form_index]
        data = dict(form["inputs"])
        data.update(fields or {})
        if button:
            data[button[0]] = button[1]
        action = urljoin(response.url, form["action"] or response.url)
        self.last = self.http.post(action, data=data, allow_redirects=False)
        return self.last

    def sign_in(self, response, email, password, stop_prefix):
        """Walk identify → password → authenticator code; returns the client URL reached
        or the last page."""
        page = self.follow(response, stop_prefix)
        if isinstance(page, str):
            return page
        page = self.follow(self.submit(page, {"email": email}), stop_prefix)
        if isinstance(page, str):
            return page
        page = self.follow(self.submit(page, {"password": password}), stop_prefix)
        if isinstance(page, str) or 'value="second_factor"' not in page.text:
            return page
        return self.follow(self.submit(page, {"code": phone_code(email)}), stop_prefix)


def callback_params(url):
    """Query parameters of a redirect to the client, single-valued."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
