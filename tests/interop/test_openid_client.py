"""idp against openid-client v6, a certified OpenID Connect relying party (node).

openid-client (on oauth4webapi) checks what our own tests could get wrong the same
way the server does: RFC 9207 ``iss`` in the authorization response, PKCE, the ID
token's signature, ``iss``/``aud``/``azp``/``nonce``/``iat``, the userinfo ``sub``
(OIDC Core §5.3.2) and the discovery document itself. Each step runs in a fresh
node process through ``tests/peers/openid_client_rp.mjs``.
"""

from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest

from tests.helpers import callback_params
from tests.interop.peers import PeerError
from tests.interop.peers import require_node_peers
from tests.interop.peers import run_node_step

pytestmark = pytest.mark.node

REDIRECT_URI = "https://rp.example/cb"
POST_LOGOUT_URI = "https://rp.example/bye"


class OpenIdClientRP:
    """One relying party: its registration, and the steps of ``openid_client_rp.mjs``."""

    def __init__(self, node, issuer, client_id, client_secret=None):
        self.node = node
        self.registration = {"issuer": issuer, "client_id": client_id}
        if client_secret:
            self.registration["client_secret"] = client_secret

    def step(self, name, **fields):
        """Run one step; raises PeerError when openid-client refuses."""
        return run_node_step(
            self.node, "openid_client_rp.mjs", name, {**self.registration, **fields}
        )

    def authorize(self, **params):
        """Discovery and an authorization request: URL plus what the RP must remember."""
        return self.step("discover+authorize-url", redirect_uri=REDIRECT_URI, params=params)

    def callback(self, started, callback_url):
        """Exchange the code the browser brought back, as openid-client validates it."""
        return self.step(
            "callback",
            callback_url=callback_url,
            code_verifier=started["code_verifier"],
            state=started["state"],
            nonce=started["nonce"],
        )


def make_rp(server, factory, **metadata):
    """A tenant, a client registered with ``metadata``, a user, and the RP for that client.

    Without node or the npm peers this skips, or fails when ``CI=true``; it runs in the
    test's body so that CI reports a failed test rather than a setup error.
    """
    node = require_node_peers()
    tenant = factory.tenant()
    client_id, secret = factory.client(
        tenant,
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=[POST_LOGOUT_URI],
        **metadata,
    )
    email, password = factory.user(tenant)
    rp = OpenIdClientRP(node, server.issuer(tenant), client_id, secret)
    return rp, email, password


def sign_in(rp, browser, email, password, **params):
    """Authorization URL from node, the journey in our browser, the code exchange in node."""
    started = rp.authorize(**params)
    page = browser.get(started["authorization_url"])
    reached = browser.sign_in(page, email, password, REDIRECT_URI)
    assert isinstance(reached, str), f"did not return to the client: {browser.last.text[:500]}"
    return started, reached, rp.callback(started, reached)


def silent_authorize(rp, browser):
    """``prompt=none`` with the browser's cookies: the request node built, and the callback URL."""
    started = rp.authorize(prompt="none")
    reached = browser.follow(browser.get(started["authorization_url"]), REDIRECT_URI)
    assert isinstance(reached, str), f"prompt=none stayed on idp: {reached.text[:500]}"
    return started, reached


def test_confidential_client_full_journey(server, factory, browser):
    rp, email, password = make_rp(server, factory)

    started, reached, login = sign_in(rp, browser, email, password)
    query = parse_qs(urlsplit(started["authorization_url"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert started["server_metadata"]["issuer"] == rp.registration["issuer"]
    claims = login["claims"]
    assert claims["iss"] == rp.registration["issuer"]
    assert rp.registration["client_id"] in claims["aud"]
    assert claims["nonce"] == started["nonce"]
    tokens = login["tokens"]
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["refresh_token"] and login["expires_in"] > 0

    refreshed = rp.step("refresh", refresh_token=tokens["refresh_token"])
    assert refreshed["tokens"]["access_token"] != tokens["access_token"]
    assert refreshed["tokens"]["refresh_token"] != tokens["refresh_token"]
    # OIDC Core §12.2: an ID token on refresh is optional; if one comes, node validated it.
    if refreshed["claims"] is not None:
        assert refreshed["claims"]["sub"] == claims["sub"]

    info = rp.step("userinfo", access_token=refreshed["tokens"]["access_token"], sub=claims["sub"])
    assert info["userinfo"]["sub"] == claims["sub"]
    assert info["userinfo"]["email"] == email

    # The SSO session is alive: a silent request gets a code, which node accepts.
    silent, reached = silent_authorize(rp, browser)
    assert "code" in callback_params(reached)
    assert rp.callback(silent, reached)["claims"]["sub"] == claims["sub"]

    logout = rp.step(
        "logout-url",
        id_token=tokens["id_token"],
        post_logout_redirect_uri=POST_LOGOUT_URI,
        state="see-you",
    )
    assert logout["logout_url"].startswith(rp.registration["issuer"] + "/logout?")
    response = browser.get(logout["logout_url"])
    assert response.status_code == 303, response.text[:500]
    assert response.headers["Location"] == f"{POST_LOGOUT_URI}?state=see-you"

    # Signed out: the same silent request now needs the user, and node reads the error.
    silent, reached = silent_authorize(rp, browser)
    params = callback_params(reached)
    assert params["error"] == "login_required"
    assert params["state"] == silent["state"]
    with pytest.raises(PeerError) as refused:
        rp.callback(silent, reached)
    assert refused.value.error["error"] == "login_required"


def test_public_client_code_flow(server, factory, browser):
    rp, email, password = make_rp(server, factory, token_endpoint_auth_method="none")
    assert "client_secret" not in rp.registration

    started, reached, login = sign_in(rp, browser, email, password)
    claims = login["claims"]
    assert rp.registration["client_id"] in claims["aud"]
    assert claims["nonce"] == started["nonce"]

    refreshed = rp.step("refresh", refresh_token=login["tokens"]["refresh_token"])
    info = rp.step("userinfo", access_token=refreshed["tokens"]["access_token"], sub=claims["sub"])
    assert info["userinfo"]["email"] == email

    # The code is single use (RFC 6749 §4.1.2): the same callback a second time is refused.
    with pytest.raises(PeerError) as replayed:
        rp.callback(started, reached)
    assert replayed.value.error["error"] == "invalid_grant"


def test_userinfo_for_another_subject_is_rejected_by_the_client(server, factory, browser):
    """The §5.3.2 check must bite, or the userinfo step above proves nothing about ``sub``."""
    rp, email, password = make_rp(server, factory)
    _, _, login = sign_in(rp, browser, email, password)
    with pytest.raises(PeerError) as refused:
        rp.step("userinfo", access_token=login["tokens"]["access_token"], sub="someone-else")
    assert refused.value.error["code"] == "OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED"


def test_rfc8414_discovery_at_the_path_inserted_location(server, factory, browser):
    """RFC 8414 §3.1: for an issuer with a path, metadata lives at the path-inserted URL.

    That is ``/.well-known/oauth-authorization-server/{tenant}``; openid-client's ``oauth2``
    discovery looks only there, and checks ``issuer`` in the answer.
    """
    rp, email, password = make_rp(server, factory)
    rp.registration["discovery"] = "oauth2"
    started, _, login = sign_in(rp, browser, email, password)
    assert started["server_metadata"]["issuer"] == rp.registration["issuer"]
    assert login["claims"]["iss"] == rp.registration["issuer"]
