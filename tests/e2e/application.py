"""A relying party as an operator registers it with the ``idp`` CLI, and its users.

``Application`` makes a tenant and a first-party client with ``idp … --json``; the
redirect URI is a small page served here on a loopback port, so the browser really
arrives at the application with the ``code``, which the test redeems over HTTP.
Users are invited or created with ``idp user …`` on the server's own database, and
the few states no command can reach (an expired code, a passed activation deadline)
are set by editing the SQLite rows, as an hour's wait would.
"""

import http.server
import itertools
import secrets
import sqlite3
import threading
import uuid
from contextlib import closing
from contextlib import contextmanager
from types import SimpleNamespace
from urllib.parse import urlencode

import pyotp
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.helpers import pkce_pair
from tests.integration.journey import Authenticator

PASSWORD = "Correct-Horse-9"  # what ``idp user create --password`` gives returning users
NEW_PASSWORD = "Fresh-Start-26!"  # chosen in the journey: B2C's 8–16 characters, 3 of 4 classes
APPLICATION_HTML = (
    b'<!doctype html><html lang="en"><head><meta charset="utf-8">'
    b'<meta name="viewport" content="width=device-width, initial-scale=1">'
    b'<link rel="icon" href="data:,"><title>Acme portal</title></head>'
    b"<body><h1>Acme portal</h1><p>Back at the application with an authorization code.</p>"
    b"</body></html>"
)
# Each browser claims its own address (TEST-NET-2, RFC 5737) for idp's per-IP limits.
_ADDRESSES = (f"198.51.100.{n}" for n in itertools.cycle(range(1, 255)))


def client_ip():
    """An address no other browser of this run claims (within 254 browsers)."""
    return next(_ADDRESSES)


def new_email(tag):
    """A fresh address: every journey has its own user, TOTP steps and throttles."""
    return f"{tag}-{uuid.uuid4().hex[:8]}@example.com"


class _ApplicationHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # the name http.server calls
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(APPLICATION_HTML)))
        self.end_headers()
        self.wfile.write(APPLICATION_HTML)

    def log_message(self, format, *args):
        """Quiet: the test reads the URL the browser reached, not this log."""


@contextmanager
def running_application_page():
    """The relying party's redirect URI: a static page on a loopback port, for the block."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ApplicationHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Application:
    """A tenant and its first-party client, made with the CLI as an operator would."""

    def __init__(self, idp, slug, name, *tenant_options):
        self.idp = idp
        self.slug = slug
        self.issuer = idp.idp("tenant", "create", slug, "--name", name, "--json")["issuer"]
        if tenant_options:
            idp.idp("tenant", "update", slug, *tenant_options, "--json")
        self.redirect_uri = f"{idp.application_page.url}/callback"
        client = idp.idp(
            "client", "create", "--tenant", slug, "--name", f"{name} portal",
            "--redirect-uri", self.redirect_uri, "--first-party", "--json",
        )  # fmt: skip
        self.client_id = client["client_id"]
        self.client_secret = client["client_secret"]

    def cli(self, *args):
        """``idp user ARGS --tenant SLUG``: invite, create, disable, expire, reset-mfa …"""
        return self.idp.idp("user", *args, "--tenant", self.slug)

    def invite(self, email):
        """An invited account without the welcome mail; it activates by "First time login"."""
        self.cli("invite", "--email", email, "--no-welcome-email", "--json")
        return email

    def create_user(self, email):
        """An active account with a password and an authenticator; returns its phone."""
        phone = Authenticator(pyotp.random_base32())
        self.cli(
            "create", "--email", email, "--password", PASSWORD,
            "--totp-secret", phone.totp.secret, "--active", "--json",
        )  # fmt: skip
        return phone

    def authorize_request(self):
        """An authorization code request with PKCE, state and nonce (OIDC Core §3.1.2.1)."""
        verifier, challenge = pkce_pair()
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid email profile",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.issuer}/authorize?{urlencode(query)}", query, verifier

    def redeem(self, code, verifier):
        """The token response for ``code`` (RFC 6749 §4.1.3, client_secret_basic)."""
        return redeem_code(
            self.issuer, self.client_id, self.client_secret, self.redirect_uri, code, verifier
        )

    def id_token_claims(self, id_token, nonce):
        """The ID token's claims, its signature checked against the tenant's JWKS."""
        return verified_claims(self.issuer, self.client_id, id_token, nonce)

    def userinfo(self, access_token):
        """The UserInfo answer for ``access_token``."""
        response = requests.get(
            f"{self.issuer}/userinfo",
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()


def age_email_codes(database, email, seconds):
    """Move the address's emailed codes ``seconds`` into the past (expired, cooldown over)."""
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute(
            "UPDATE email_codes SET created_at = created_at - ?, expires_at = expires_at - ?"
            " WHERE email = ?",
            (seconds, seconds, email),
        )


def set_activation_deadline(database, email, when):
    """Put an invited account's activation deadline at ``when`` (epoch seconds)."""
    with closing(sqlite3.connect(database)) as connection, connection:
        updated = connection.execute(
            "UPDATE users SET activation_deadline = ? WHERE email = ?", (when, email)
        ).rowcount
    assert updated == 1, f"no user {email}"


def redeem_code(issuer, client_id, client_secret, redirect_uri, code, verifier):
    """What a relying party does with its code: the token response (client_secret_basic)."""
    response = requests.post(
        f"{issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(client_id, client_secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def verified_claims(issuer, client_id, id_token, nonce):
    """The ID token's claims, its signature checked against the issuer's JWKS."""
    keys = KeySet.import_key_set(requests.get(f"{issuer}/jwks", timeout=10).json())
    claims = jwt.decode(id_token, keys, algorithms=["RS256", "ES256"]).claims
    assert claims["iss"] == issuer
    assert claims["aud"] in (client_id, [client_id])
    assert claims["nonce"] == nonce
    return claims
