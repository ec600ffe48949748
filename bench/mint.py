"""What the timed loops consume, made before them over HTTP: sessions, codes and tokens.

idp: its real authorization endpoint and hosted sign-in forms (email, password, the
authenticator code), once; the SSO session then lets every further authorization request
return a code at once. oidc-provider: its authorization endpoint, whose interactions the
bench server finishes through the interaction API.
"""

import base64
import hashlib
import hmac
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from html.parser import HTMLParser
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urljoin
from urllib.parse import urlsplit

import requests

from servers import REDIRECT_URI
from servers import TENANT

# RFC 7636 §4.1: one verifier for every code; the server only checks it matches the challenge.
VERIFIER = "bench-code-verifier-" + "0123456789abcdef" * 3
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).decode()
CHALLENGE = CHALLENGE.rstrip("=")
MAX_HOPS = 20
RETRY_S = 60
SESSIONS = 32  # oidc-provider sessions (and grants) the codes are minted from


@dataclass
class Target:
    """One server as the load sees it: where each endpoint is, and the client to use."""

    name: str
    base: str
    paths: dict
    client_id: str
    client_secret: str
    user: dict | None = None
    # oidc-provider's in-memory adapter keeps a list of every token of a grant and walks it
    # on each save, so one session (one grant) minting thousands of codes would slow it down
    # in a way no real load does: there, codes and seeds come from many sessions and grants.
    sessions_per_grant: bool = False
    session: requests.Session = field(default_factory=requests.Session)
    cookie_headers: list = field(default_factory=list)
    # idp: a client whose JWT access tokens are ES256 (``--access-token-alg ES256``); on
    # oidc-provider, whose access tokens are opaque, the same client as every other row.
    es256_client: tuple | None = None

    @property
    def basic(self):
        """RFC 6749 §2.3.1 client_secret_basic."""
        return _basic(self.client_id, self.client_secret)

    @property
    def es256_basic(self):
        """client_secret_basic of the ES256 client (or of the only one)."""
        return _basic(*self.es256_client) if self.es256_client else self.basic

    def url(self, name):
        """Absolute URL of an endpoint."""
        return self.base + self.paths[name]

    def authorization_url(self, scope, prompt=None):
        """A code request with PKCE S256 (the path and query, for wrk and for requests)."""
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": scope,
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
        }
        if prompt:
            params["prompt"] = prompt
        return self.paths["authorize"] + "?" + urlencode(params)


def _basic(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def cookie_header(session):
    """A browser's cookies, as one header value."""
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def idp_target(server):
    """Paths under the tenant's issuer."""
    prefix = f"/{TENANT}"
    paths = {
        "discovery": f"{prefix}/.well-known/openid-configuration",
        "jwks": f"{prefix}/jwks",
        "authorize": f"{prefix}/authorize",
        "token": f"{prefix}/token",
        "userinfo": f"{prefix}/userinfo",
        "introspection": f"{prefix}/introspect",
    }
    client, es256 = server.client, server.es256_client
    return Target("idp", server.base, paths, client["client_id"], client["client_secret"],
                  server.user,
                  es256_client=(es256["client_id"], es256["client_secret"]))  # fmt: skip


def node_target(server):
    """oidc-provider's default routes."""
    paths = {
        "discovery": "/.well-known/openid-configuration",
        "jwks": "/jwks",
        "authorize": "/auth",
        "token": "/token",
        "userinfo": "/me",
        "introspection": "/token/introspection",
    }
    client = server.client
    return Target("oidc-provider", server.base, paths, client["client_id"],
                  client["client_secret"], sessions_per_grant=True)  # fmt: skip


def totp_now(secret_b32, at=None):
    """RFC 6238 with SHA-1, 6 digits, 30 s steps (what authenticator apps use)."""
    key = base64.b32decode(secret_b32)
    counter = int((at or time.time()) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


class FormReader(HTMLParser):
    """The first form of a journey page: its action and its hidden fields."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = {}
        self._in_form = self._done = False

    def handle_starttag(self, tag, attrs):
        """Remember the first form's action and its hidden inputs."""
        attrs = dict(attrs)
        if tag == "form" and not self._done:
            self.action, self._in_form = attrs.get("action") or "", True
        elif tag == "input" and self._in_form and attrs.get("type") == "hidden":
            self.fields[attrs.get("name")] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        """Stop at the end of the first form (the others restart or switch modes)."""
        if tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def _answer(step, user):
    """What a returning user types at each step of idp's sign-in."""
    if step == "identify":
        return {"email": user["email"]}
    if step == "password":
        return {"username": user["email"], "password": user["password"]}
    if step == "second_factor":
        return {"code": totp_now(user["totp_secret"])}
    if step == "select_account":
        return {"choice": "current"}
    raise RuntimeError(f"idp's sign-in asked for step {step!r}, which the benchmark cannot drive")


def _send(session, method, url, **kwargs):
    """One request; a 503 or a refused connection (the shared PostgreSQL restarting, say)
    is retried for up to RETRY_S, since minting happens outside the timed loop."""
    deadline = time.monotonic() + RETRY_S
    while True:
        try:
            response = session.request(method, url, allow_redirects=False, timeout=30, **kwargs)
            if response.status_code != 503 or time.monotonic() > deadline:
                return response
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def _submit_form(target, session, url, html):
    form = FormReader()
    form.feed(html)
    if "step" not in form.fields:
        raise RuntimeError(f"no journey form at {url}:\n{html[:2000]}")
    data = {**form.fields, **_answer(form.fields["step"], target.user)}
    return _send(session, "POST", urljoin(url, form.action), data=data)


def authorize(target, scope, prompt=None, session=None):
    """Follow the authorization request to its redirect, signing in on the way if asked."""
    session = session or target.session
    url = target.base + target.authorization_url(scope, prompt)
    response = _send(session, "GET", url)
    for _ in range(MAX_HOPS):
        if response.is_redirect:
            location = urljoin(url, response.headers["Location"])
            if location.startswith(REDIRECT_URI):
                query = parse_qs(urlsplit(location).query)
                if "code" not in query:
                    raise RuntimeError(f"{target.name} refused the authorization: {location}")
                return query["code"][0]
            url = location
            response = _send(session, "GET", url)
        elif response.status_code in (200, 400) and target.user is not None:
            response = _submit_form(target, session, url, response.text)
        else:
            raise RuntimeError(f"{target.name}: {response.status_code} at {url}")
    raise RuntimeError(f"{target.name}: more than {MAX_HOPS} hops to the redirect URI")


def sign_in(target):
    """The signed-in sessions codes are minted with: idp, one (through its sign-in forms);
    oidc-provider, one per connection, each with its own grant (see ``sessions_per_grant``)."""
    if not target.sessions_per_grant:
        authorize(target, "openid email offline_access")
        target.cookie_headers = [cookie_header(target.session)]
        return
    sessions = [requests.Session() for _ in range(SESSIONS)]
    for session in sessions:
        authorize(target, "openid email offline_access", "consent", session)
    target.cookie_headers = [cookie_header(session) for session in sessions]


def exchange(target, code):
    """RFC 6749 §4.1.3: the code for tokens."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": VERIFIER,
    }
    response = _send(requests, "POST", target.url("token"), data=data, auth=_auth(target))
    response.raise_for_status()
    return response.json()


def _auth(target):
    return (target.client_id, target.client_secret)


def token_sets(target, count, offline):
    """``count`` token responses from full code flows (with a refresh token when offline)."""
    scope = "openid email offline_access" if offline else "openid email"
    if target.sessions_per_grant:  # oidc-provider grants offline_access only with consent
        prompt = "consent" if offline else None
        codes = [authorize(target, scope, prompt, requests.Session()) for _ in range(count)]
    else:
        codes = [authorize(target, scope) for _ in range(count)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda code: exchange(target, code), codes))
