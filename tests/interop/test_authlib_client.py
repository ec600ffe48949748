"""idp against Authlib's own OAuth 2.0 client, as a Python relying party would use it.

The server side is Authlib too, so this catches what a shared library hides only when
the client does the checking: the RP below does what OIDC Core §3.1.3.7 asks of it
with joserfc (signature from the published JWKS, ``iss``, ``aud``, ``azp``, ``nonce``,
``at_hash``) and checks RFC 9207 ``iss`` on the authorization response itself, since
Authlib's client does not.
"""

import base64
import hashlib
from urllib.parse import urlencode

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.requests_client import OAuthError
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.helpers import callback_params

REDIRECT_URI = "https://rp.example/cb"
POST_LOGOUT_URI = "https://rp.example/bye"
SCOPE = "openid email profile offline_access"


class AuthlibRP:
    """A relying party on ``OAuth2Session``: discovery, its keys, and the OIDC checks."""

    def __init__(self, issuer, client_id, client_secret=None):
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        discovery = f"{issuer}/.well-known/openid-configuration"
        self.metadata = requests.get(discovery, timeout=10).json()
        assert self.metadata["issuer"] == issuer
        jwks = requests.get(self.metadata["jwks_uri"], timeout=10).json()
        self.keys = KeySet.import_key_set(jwks)

    def session(self):
        """A fresh OAuth2Session: client_secret_basic with a secret, else a public client."""
        return OAuth2Session(
            self.client_id,
            self.client_secret,
            token_endpoint_auth_method="client_secret_basic" if self.client_secret else "none",
            scope=SCOPE,
            redirect_uri=REDIRECT_URI,
            code_challenge_method="S256",
            default_timeout=10,
        )

    def authorization_url(self, session, **params):
        """The request, with what the RP keeps: ``(url, state, nonce, code_verifier)``."""
        verifier, nonce = generate_token(48), generate_token(24)
        url, state = session.create_authorization_url(
            self.metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **params
        )
        return url, state, nonce, verifier

    def validate_id_token(self, id_token, nonce, access_token):
        """OIDC Core §3.1.3.7 and §3.1.3.8; returns the claims."""
        token = jwt.decode(
            id_token, self.keys, algorithms=self.metadata["id_token_signing_alg_values_supported"]
        )
        jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            nonce={"essential": True, "value": nonce},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        ).validate(token.claims)
        assert token.claims.get("azp", self.client_id) == self.client_id
        digest = hashlib.sha256(access_token.encode()).digest()
        at_hash = base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
        assert token.claims["at_hash"] == at_hash
        return token.claims


def make_rp(server, factory, **metadata):
    """A tenant, a client registered with ``metadata``, a user, and the RP for that client."""
    tenant = factory.tenant()
    client_id, secret = factory.client(
        tenant,
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=[POST_LOGOUT_URI],
        **metadata,
    )
    email, password = factory.user(tenant)
    return AuthlibRP(server.issuer(tenant), client_id, secret), email, password


def sign_in(rp, browser, email, password):
    """Authorize, sign in through our pages, fetch and validate; returns (session, claims)."""
    session = rp.session()
    url, state, nonce, verifier = rp.authorization_url(session)
    reached = browser.sign_in(browser.get(url), email, password, REDIRECT_URI)
    assert isinstance(reached, str), f"did not return to the client: {browser.last.text[:500]}"
    assert callback_params(reached)["iss"] == rp.issuer
    # fetch_token compares state itself and raises MismatchingStateException on a mismatch.
    token = session.fetch_token(
        rp.metadata["token_endpoint"],
        authorization_response=reached,
        state=state,
        code_verifier=verifier,
    )
    return session, rp.validate_id_token(token["id_token"], nonce, token["access_token"])


def silent_authorize(rp, browser):
    """``prompt=none`` with the browser's cookies; returns (callback params, sent state)."""
    url, state, _, _ = rp.authorization_url(rp.session(), prompt="none")
    reached = browser.follow(browser.get(url), REDIRECT_URI)
    assert isinstance(reached, str), f"prompt=none stayed on idp: {reached.text[:500]}"
    return callback_params(reached), state


def userinfo(rp, session):
    """GET userinfo with the session's current access token."""
    return session.get(rp.metadata["userinfo_endpoint"])


def test_confidential_client_full_journey(server, factory, browser):
    rp, email, password = make_rp(server, factory)
    session, claims = sign_in(rp, browser, email, password)
    first = dict(session.token)

    refreshed = session.refresh_token(rp.metadata["token_endpoint"])
    assert refreshed["refresh_token"] != first["refresh_token"]
    assert refreshed["access_token"] != first["access_token"]
    info = userinfo(rp, session)
    assert info.status_code == 200
    assert info.json()["sub"] == claims["sub"]
    assert info.json()["email"] == email

    # RFC 7009: a revoked refresh token no longer refreshes, a revoked access token no longer works.
    revoked = session.revoke_token(
        rp.metadata["revocation_endpoint"],
        refreshed["refresh_token"],
        token_type_hint="refresh_token",
    )
    assert revoked.status_code == 200
    with pytest.raises(OAuthError) as refused:
        session.refresh_token(
            rp.metadata["token_endpoint"], refresh_token=refreshed["refresh_token"]
        )
    assert refused.value.error == "invalid_grant"
    revoked = session.revoke_token(
        rp.metadata["revocation_endpoint"],
        refreshed["access_token"],
        token_type_hint="access_token",
    )
    assert revoked.status_code == 200
    assert userinfo(rp, session).status_code == 401

    params, _ = silent_authorize(rp, browser)
    assert "code" in params, params

    query = {
        "id_token_hint": first["id_token"],
        "post_logout_redirect_uri": POST_LOGOUT_URI,
        "state": "see-you",
    }
    response = browser.get(f"{rp.metadata['end_session_endpoint']}?{urlencode(query)}")
    assert response.status_code == 303, response.text[:500]
    assert response.headers["Location"] == f"{POST_LOGOUT_URI}?state=see-you"

    params, state = silent_authorize(rp, browser)
    assert params["error"] == "login_required"
    assert params["state"] == state
    assert params["iss"] == rp.issuer


def test_public_client_code_flow(server, factory, browser):
    rp, email, password = make_rp(server, factory, token_endpoint_auth_method="none")
    assert rp.client_secret is None
    session, claims = sign_in(rp, browser, email, password)
    session.refresh_token(rp.metadata["token_endpoint"])
    info = userinfo(rp, session)
    assert info.status_code == 200
    assert info.json()["sub"] == claims["sub"]
