"""A tenant with a client and a user, and the calls a relying party makes against it."""

import secrets
from urllib.parse import urlencode

import requests

from tests.helpers import callback_params
from tests.helpers import pkce_pair

REDIRECT_URI = "https://rp.example/cb"


class Realm:
    """One tenant as a relying party sees it: issuer, client credentials, a user."""

    def __init__(self, server, factory, browser, client_metadata=None, **user_kwargs):
        self.server = server
        self.factory = factory
        self.browser = browser
        self.tenant = factory.tenant()
        self.issuer = server.issuer(self.tenant)
        self.client_id, self.client_secret = factory.client(self.tenant, **(client_metadata or {}))
        self.email, self.password = factory.user(self.tenant, **user_kwargs)

    def authorize_url(self, **params):
        """An authorization request URL with sensible defaults (PKCE, state, nonce)."""
        verifier, challenge = pkce_pair()
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid email profile offline_access",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        query.update(params)
        query = {k: v for k, v in query.items() if v is not None}
        self.last_verifier = verifier
        return f"{self.issuer}/authorize?{urlencode(query)}", query, verifier

    def sign_in(self, **params):
        """Authorize and sign in; returns (callback params, sent query, code_verifier)."""
        url, query, verifier = self.authorize_url(**params)
        reached = self.browser.sign_in(
            self.browser.get(url), self.email, self.password, REDIRECT_URI
        )
        assert isinstance(reached, str), (
            f"did not return to the client: {self.browser.last.text[:500]}"
        )
        return callback_params(reached), query, verifier

    def token(self, auth=True, **data):
        """POST to the token endpoint with client_secret_basic."""
        kwargs = {"auth": (self.client_id, self.client_secret)} if auth else {}
        return requests.post(f"{self.issuer}/token", data=data, timeout=10, **kwargs)

    def redeem(self, code, verifier):
        """Exchange a code for tokens."""
        return self.token(
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT_URI,
            code_verifier=verifier,
        )

    def tokens(self, **params):
        """Sign in and redeem; returns the token response JSON."""
        result, _, verifier = self.sign_in(**params)
        response = self.redeem(result["code"], verifier)
        assert response.status_code == 200, response.text
        return response.json()

    def userinfo(self, access_token):
        """GET userinfo with a bearer header."""
        return requests.get(
            f"{self.issuer}/userinfo",
            timeout=10,
            headers={"Authorization": f"Bearer {access_token}"},
        )

    def introspect(self, token):
        """POST to introspection as the client."""
        return requests.post(
            f"{self.issuer}/introspect",
            data={"token": token},
            timeout=10,
            auth=(self.client_id, self.client_secret),
        )


def expect_error_redirect(response, error):
    """The authorization endpoint redirected to the client with ``error`` (and ``iss``)."""
    assert response.status_code in (302, 303), response.text[:300]
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI), location
    params = callback_params(location)
    assert params["error"] == error, params
    return params


def expect_error_page(response):
    """The authorization endpoint refused without redirecting anywhere."""
    assert response.status_code == 400, response.status_code
    assert "Location" not in response.headers
    assert "text/html" in response.headers["Content-Type"]
    return response.text
