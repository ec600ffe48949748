"""A cluster as an operator builds it and a relying party sees it.

Everything is set up through the ``idp`` CLI (``--json``), as ``docs/deploy.md`` says:
``idp init`` once, then a tenant, a client and users; then the nodes, all with the same
environment. The relying-party calls go through the load balancer with the node named.
"""

import base64
import json
import os
import secrets
import subprocess
import uuid
from urllib.parse import urlencode

import psycopg
import pyotp
import requests

from tests.cluster.nodes import BIN
from tests.cluster.nodes import NODE_HEADER
from tests.cluster.nodes import ROOT
from tests.cluster.nodes import LoadBalancer
from tests.cluster.nodes import Node
from tests.cluster.nodes import SourceAddressAdapter
from tests.cluster.nodes import loopback_address
from tests.helpers import Browser
from tests.helpers import pkce_pair
from tests.helpers import register_phone
from tests.integration.journey import step_of

REDIRECT_URI = "https://rp.example/cb"
PASSWORD = "Correct-Horse-9"


def jwt_header(token):
    """The protected header of a compact JWS, unverified (to read its ``kid``)."""
    return _jws_part(token, 0)


def jwt_claims(token):
    """The payload of a compact JWS, unverified (to read its ``jti``)."""
    return _jws_part(token, 1)


def _jws_part(token, index):
    segment = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


class Cluster:
    """Nodes on one database, one Redis and one keys folder, behind one load balancer."""

    def __init__(self, workdir, database_url, redis_url):
        self.workdir = workdir
        self.database_url = database_url
        self.balancer = LoadBalancer()
        self.nodes = {}
        self.started = {}  # every node ever started, for the logs of a failed test
        self._sessions = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        self.env.update(
            # Only read by gunicorn (`idp serve --server gunicorn`): its own control socket each.
            GUNICORN_CMD_ARGS="--no-control-socket",
            IDP_ENV="production",
            IDP_SECRET_KEY=secrets.token_urlsafe(48),
            IDP_PUBLIC_URL=self.balancer.url,
            IDP_DATABASE_URL=database_url,
            IDP_REDIS_URL=redis_url,
            IDP_KEYS_DIR=str(workdir / "keys"),
            IDP_INSTANCE_DIR=str(workdir / "instance"),
            IDP_OUTBOX_DIR=str(workdir / "outbox"),
            IDP_TRUSTED_PROXIES="1",
            IDP_BREACH_API_URL="",  # no internet here
        )

    # Operating it ----------------------------------------------------------------------

    def cli(self, *args):
        """Run ``idp …`` with the nodes' environment; the parsed JSON with ``--json``."""
        result = subprocess.run(
            [str(BIN / "idp"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"idp {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return json.loads(result.stdout) if "--json" in args else result.stdout

    def provision(self):
        """``idp init`` once, then a tenant and a client with every grant type."""
        self.cli("init")
        self.slug = f"c-{uuid.uuid4().hex[:10]}"
        self.issuer = self.cli("tenant", "create", self.slug, "--name", "Cluster", "--json")[
            "issuer"
        ]
        grants = ["authorization_code", "refresh_token", "client_credentials"]
        client = self.cli(
            "client",
            "create",
            *("--tenant", self.slug, "--name", "Cluster RP", "--redirect-uri", REDIRECT_URI),
            *[arg for grant in grants for arg in ("--grant-type", grant)],
            "--first-party",
            "--json",
        )
        self.client_id, self.client_secret = client["client_id"], client["client_secret"]

    def new_user(self):
        """An active user with an authenticator, made with the CLI; the phone knows its secret."""
        email = f"user-{uuid.uuid4().hex[:10]}@example.com"
        secret = pyotp.random_base32()
        self.cli(
            "user",
            "create",
            *("--tenant", self.slug, "--email", email, "--password", PASSWORD),
            *("--totp-secret", secret, "--active", "--json"),
        )
        register_phone(email, secret)
        return email

    def add_node(self, name, **env):
        """Start a node with the shared environment (plus ``env``) behind the balancer."""
        node = Node(name, {**self.env, **env}, self.workdir)
        self.nodes[name] = self.started[name] = node
        self.balancer.nodes[name] = node.port
        return node.start()

    def remove_node(self, name):
        """Take a node out of the balancer and stop it."""
        self.balancer.nodes.pop(name)
        self.nodes.pop(name).stop()

    def sql(self, query, params=()):
        """Rows of a query on the cluster's database (for what no endpoint shows), or the row
        count of a change (committed: an operator's psql)."""
        url = self.database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else cursor.rowcount

    def close(self):
        """Stop every node, the balancer, every client connection."""
        for node in self.nodes.values():
            node.stop()
        for session in self._sessions:
            session.close()
        self.balancer.close()

    # Clients ----------------------------------------------------------------------------

    def session(self):
        """A requests session calling from a loopback address of its own (a client of its own)."""
        session = requests.Session()
        session.address = loopback_address()
        session.mount("http://", SourceAddressAdapter(session.address))
        self._sessions.append(session)
        return session

    def browser(self, node=None):
        """A scripted browser (no cookies) from an address of its own, pinned to ``node``."""
        browser = Browser(self)
        browser.http.close()
        browser.http = self.session()
        browser.address = browser.http.address
        if node:
            self.pin(browser, node)
        return browser

    @staticmethod
    def pin(browser, node):
        """Send this browser's next requests to ``node``."""
        browser.http.headers[NODE_HEADER] = node

    def call(self, method, node, path, session=None, **kwargs):
        """A request under the issuer, served by ``node``."""
        session = session or self.api
        headers = {NODE_HEADER: node, **kwargs.pop("headers", {})}
        url = f"{self.issuer}/{path}" if path else self.issuer
        return session.request(method, url, headers=headers, timeout=30, **kwargs)

    @property
    def api(self):
        """The relying party's own session."""
        if not hasattr(self, "_api"):
            self._api = self.session()
        return self._api

    def token(self, node, session=None, **data):
        """POST to the token endpoint with client_secret_basic."""
        auth = (self.client_id, self.client_secret)
        return self.call("POST", node, "token", session, data=data, auth=auth)

    def redeem(self, node, code, verifier):
        """Exchange an authorization code."""
        return self.token(
            node,
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT_URI,
            code_verifier=verifier,
        )

    def introspect(self, node, token, session=None):
        """RFC 7662 introspection as the client."""
        auth = (self.client_id, self.client_secret)
        return self.call("POST", node, "introspect", session, data={"token": token}, auth=auth)

    def userinfo(self, node, access_token):
        """GET userinfo with a bearer header."""
        bearer = {"Authorization": f"Bearer {access_token}"}
        return self.call("GET", node, "userinfo", headers=bearer)

    def authorize_query(self):
        """Authorization request parameters (code flow, PKCE S256) and the code_verifier."""
        verifier, challenge = pkce_pair()
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid email offline_access",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return query, verifier

    # The hosted sign-in --------------------------------------------------------------------

    def open_sign_in(self, browser):
        """Authorize: the browser lands on the email step; returns (page, code_verifier)."""
        query, verifier = self.authorize_query()
        url = f"{self.issuer}/authorize?{urlencode(query)}"
        page = browser.follow(browser.get(url), REDIRECT_URI)
        assert step_of(page) == "identify", page.text[:500]
        return page, verifier

    @staticmethod
    def step(browser, page, fields):
        """Submit the page's form; the next page, or the URL reached at the client."""
        return browser.follow(browser.submit(page, fields), REDIRECT_URI)
