"""The upstream OpenID Provider of the federation tests, checked without idp.

``tests/upstream.py`` runs npm ``oidc-provider`` (OpenID Certified) for idp to federate
with. Here Authlib's OAuth 2.0 client is the relying party instead of idp: PKCE S256,
state and nonce out; sign-in with the scripted browser; code exchange with
``client_secret_basic``; the ID token checked with joserfc against the provider's JWKS.
That proves the provider, its sign-in and consent pages and the helpers behave as the
federation tests will assume: ``iss`` on every authorization response (RFC 9207),
``amr``/``acr``/``email``/``email_verified`` in the ID token, a wrong password staying on
the sign-in page, and Cancel/Deny ending as ``error=access_denied`` at the client.
"""

import base64
import hashlib

import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.helpers import Browser
from tests.helpers import callback_params
from tests.upstream import DEFAULT_ACCOUNTS
from tests.upstream import DEFAULT_CLIENT_ID
from tests.upstream import DEFAULT_CLIENT_SECRET
from tests.upstream import DEFAULT_PASSWORD
from tests.upstream import deny_at_upstream
from tests.upstream import is_consent_page
from tests.upstream import is_login_page
from tests.upstream import make_upstream  # noqa: F401  (the fixture)
from tests.upstream import oidc_upstream  # noqa: F401  (the fixture)
from tests.upstream import sign_in_upstream
from tests.upstream import start_upstream

pytestmark = pytest.mark.node

REDIRECT_URI = "https://rp.example/cb"
SCOPE = "openid email profile groups"


class RP:
    """Authlib's OAuth2Session as the relying party of one upstream client."""

    def __init__(self, upstream, client_id, client_secret):
        self.upstream = upstream
        self.client_id = client_id
        self.client_secret = client_secret
        self.metadata = upstream.metadata()
        assert self.metadata["issuer"] == upstream.issuer
        self.keys = KeySet.import_key_set(upstream.jwks())

    def start(self, **params):
        """A session and its authorization URL: ``(session, url, state, nonce, verifier)``."""
        session = OAuth2Session(
            self.client_id,
            self.client_secret,
            token_endpoint_auth_method="client_secret_basic",
            scope=SCOPE,
            redirect_uri=REDIRECT_URI,
            code_challenge_method="S256",
            default_timeout=10,
        )
        verifier, nonce = generate_token(48), generate_token(24)
        url, state = session.create_authorization_url(
            self.metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **params
        )
        return session, url, state, nonce, verifier

    def finish(self, session, reached, state, nonce, verifier):
        """RFC 9207 ``iss``, the code exchange, and the ID token (OIDC Core §3.1.3.7)."""
        assert callback_params(reached)["iss"] == self.upstream.issuer
        token = session.fetch_token(
            self.metadata["token_endpoint"],
            authorization_response=reached,
            state=state,
            code_verifier=verifier,
        )
        decoded = jwt.decode(token["id_token"], self.keys, algorithms=["RS256"])
        assert decoded.header["alg"] == "RS256"
        jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": self.upstream.issuer},
            aud={"essential": True, "value": self.client_id},
            nonce={"essential": True, "value": nonce},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        ).validate(decoded.claims)
        # at_hash is optional from the token endpoint (§3.1.3.6); oidc-provider leaves it out.
        if "at_hash" in decoded.claims:
            digest = hashlib.sha256(token["access_token"].encode()).digest()
            at_hash = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
            assert decoded.claims["at_hash"] == at_hash
        return session, token, decoded.claims


@pytest.fixture
def upstream(make_upstream):  # noqa: F811
    """A fresh provider whose ``idp-fed`` client redirects to ``https://rp.example/cb``."""
    return make_upstream(redirect_uris=[REDIRECT_URI])


@pytest.fixture
def rp(upstream):
    return RP(upstream, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)


@pytest.fixture
def browser():
    """A scripted browser with no idp behind it: only the upstream is visited."""
    return Browser(None)


def sign_in(rp, browser, login, password=DEFAULT_PASSWORD, **params):
    """The whole journey; returns ``(session, token, id_token_claims)``."""
    session, url, state, nonce, verifier = rp.start(**params)
    reached = sign_in_upstream(browser, browser.get(url), login, password, REDIRECT_URI)
    assert isinstance(reached, str), f"did not return to the client: {browser.last.text[:500]}"
    return rp.finish(session, reached, state, nonce, verifier)


def test_code_flow_with_pkce_nonce_and_iss(upstream, rp, browser):
    discovery = rp.metadata
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["authorization_response_iss_parameter_supported"] is True
    assert "client_secret_basic" in discovery["token_endpoint_auth_methods_supported"]
    assert {"email", "email_verified", "groups", "amr", "acr"} <= set(discovery["claims_supported"])
    assert discovery["acr_values_supported"] == ["urn:upstream:acr:mfa"]

    session, _, claims = sign_in(rp, browser, "alice")
    alice = DEFAULT_ACCOUNTS["alice"]
    assert claims["sub"] == alice["sub"]
    assert claims["email"] == alice["email"]
    assert claims["email_verified"] is True
    assert claims["amr"] == alice["amr"]
    assert claims["acr"] == alice["acr"]
    assert claims["name"] == alice["name"]
    assert claims["groups"] == alice["groups"]

    info = session.get(rp.metadata["userinfo_endpoint"])
    assert info.status_code == 200
    assert info.json()["sub"] == alice["sub"]
    assert info.json()["groups"] == alice["groups"]

    (request,) = upstream.events("authorization")
    assert request["params"]["code_challenge_method"] == "S256"
    assert request["params"]["client_id"] == DEFAULT_CLIENT_ID
    (exchange,) = upstream.events("token")
    assert exchange == {
        "type": "token",
        "grant_type": "authorization_code",
        "client_id": DEFAULT_CLIENT_ID,
        "client_auth_method": "client_secret_basic",
    }

    # The upstream session is alive: the next request comes straight back, without a page.
    session, url, state, nonce, verifier = rp.start()
    reached = browser.follow(browser.get(url), REDIRECT_URI)
    assert isinstance(reached, str), reached.text[:500]
    _, _, again = rp.finish(session, reached, state, nonce, verifier)
    assert again["sub"] == alice["sub"]
    assert again["amr"] == alice["amr"]


def test_account_without_acr_and_with_unverified_email(rp, browser):
    _, _, claims = sign_in(rp, browser, "bob")
    assert claims["sub"] == DEFAULT_ACCOUNTS["bob"]["sub"]
    assert claims["email_verified"] is False
    assert claims["amr"] == ["pwd"]
    assert "acr" not in claims


def test_pkce_is_required_of_confidential_clients(rp, browser):
    session, url, _, _, _ = rp.start()
    url = "&".join(p for p in url.split("&") if not p.startswith("code_challenge"))
    reached = browser.follow(browser.get(url), REDIRECT_URI)
    assert isinstance(reached, str), reached.text[:500]
    params = callback_params(reached)
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]
    assert params["iss"] == rp.upstream.issuer


def test_wrong_password_stays_on_the_sign_in_page(upstream, rp, browser):
    session, url, state, nonce, verifier = rp.start()
    page = sign_in_upstream(browser, browser.get(url), "alice", "not-the-password", REDIRECT_URI)
    assert not isinstance(page, str), f"left the upstream: {page}"
    assert page.status_code == 200
    assert page.url.startswith(f"{upstream.issuer}/interaction/")
    assert is_login_page(page)
    assert 'role="alert"' in page.text and "Invalid login or password" in page.text
    page = sign_in_upstream(browser, page, "nobody", DEFAULT_PASSWORD, REDIRECT_URI)
    assert is_login_page(page) and "Invalid login or password" in page.text
    assert [e["login"] for e in upstream.events("login_failed")] == ["alice", "nobody"]

    # The same page then takes the right password.
    reached = sign_in_upstream(browser, page, "alice", DEFAULT_PASSWORD, REDIRECT_URI)
    assert isinstance(reached, str), browser.last.text[:500]
    _, _, claims = rp.finish(session, reached, state, nonce, verifier)
    assert claims["sub"] == DEFAULT_ACCOUNTS["alice"]["sub"]


def test_cancel_at_sign_in_is_access_denied_at_the_client(upstream, rp, browser):
    _, url, state, _, _ = rp.start()
    reached = deny_at_upstream(browser, browser.get(url), REDIRECT_URI)
    assert isinstance(reached, str), reached.text[:500]
    params = callback_params(reached)
    assert params["error"] == "access_denied"
    assert params["state"] == state
    assert params["iss"] == upstream.issuer
    assert "code" not in params
    assert upstream.events("denied")[0]["prompt"] == "login"


def test_consent_page_deny_then_allow(make_upstream, browser):  # noqa: F811
    upstream = make_upstream(redirect_uris=[REDIRECT_URI], consent=True)
    rp = RP(upstream, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)

    _, url, state, _, _ = rp.start()
    page = sign_in_upstream(browser, url, "alice", DEFAULT_PASSWORD, REDIRECT_URI, consent=False)
    assert is_consent_page(page), page
    assert "groups" in page.text
    reached = deny_at_upstream(browser, page, REDIRECT_URI)
    params = callback_params(reached)
    assert params["error"] == "access_denied"
    assert params["state"] == state
    assert params["iss"] == upstream.issuer

    # Still signed in at the upstream: this time only the consent page, allowed.
    session, url, state, nonce, verifier = rp.start()
    reached = sign_in_upstream(browser, url, "alice", DEFAULT_PASSWORD, REDIRECT_URI)
    assert isinstance(reached, str), browser.last.text[:500]
    _, _, claims = rp.finish(session, reached, state, nonce, verifier)
    assert claims["email"] == DEFAULT_ACCOUNTS["alice"]["email"]
    steps = {"login", "denied", "consent", "token"}
    assert [e["type"] for e in upstream.events() if e["type"] in steps] == [
        "login",
        "denied",
        "consent",
        "token",
    ]


def test_session_upstream_with_a_client_and_account_of_the_test(oidc_upstream, browser):  # noqa: F811
    client = oidc_upstream.set_client([REDIRECT_URI])
    oidc_upstream.set_account(
        "carol",
        sub="carol-3",
        email="carol@upstream.example",
        email_verified=True,
        amr=["hwk"],
        password="carols-own-password",
    )
    rp = RP(oidc_upstream, client["client_id"], client["client_secret"])
    page = sign_in_upstream(browser, rp.start()[1], "carol", DEFAULT_PASSWORD, REDIRECT_URI)
    assert is_login_page(page)
    _, _, claims = sign_in(rp, browser, "carol", "carols-own-password")
    assert claims["sub"] == "carol-3"
    assert claims["amr"] == ["hwk"]

    # Replacing the client's redirect URIs takes effect at once.
    oidc_upstream.set_client(
        ["https://other.example/cb"], client["client_id"], client["client_secret"]
    )
    response = browser.get(rp.start()[1])
    assert response.status_code == 400
    assert "redirect_uri" in response.text


def test_two_upstreams_in_one_browser_keep_their_own_sessions(make_upstream, browser):  # noqa: F811
    first = RP(make_upstream([REDIRECT_URI]), DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    second = RP(make_upstream([REDIRECT_URI]), DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    assert first.upstream.issuer != second.upstream.issuer
    assert sign_in(first, browser, "alice")[2]["sub"] == "alice-0001"
    assert sign_in(second, browser, "bob")[2]["sub"] == "bob-0002"
    for rp, sub in ((first, "alice-0001"), (second, "bob-0002")):
        session, url, state, nonce, verifier = rp.start()
        reached = browser.follow(browser.get(url), REDIRECT_URI)
        assert isinstance(reached, str), reached.text[:500]
        assert rp.finish(session, reached, state, nonce, verifier)[2]["sub"] == sub


def test_start_up_time_and_clean_shutdown():
    with start_upstream() as upstream:
        assert upstream.issuer == f"http://127.0.0.1:{upstream.port}"
        assert upstream.startup_seconds < 20
        process = upstream.process
    assert process.poll() == 0
    assert upstream.returncode == 0
    assert "READY" in upstream.output


def test_missing_node_fails_the_fixture_on_ci(make_upstream, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        make_upstream()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="node is not on PATH"):
        make_upstream()
