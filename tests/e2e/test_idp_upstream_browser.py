"""Federation to another idp tenant in a real browser: idp as its own upstream.

One idp (`idp serve`), set up with the ``idp`` CLI as an operator would: tenant
``corp-idp`` is the company's identity provider (alice, with password and authenticator,
and one client per relying-party tenant); tenants ``acme`` and ``beta`` route
``corp.example`` to it as the upstream ``corp``, both creating accounts just in time.
``acme`` trusts corp's MFA, ``beta`` does not, so there alice must also enrol an
authenticator of beta's own. Chromium types at both tenants' pages, the upstream's
sign-in included (the same journey as tests/integration/test_federation.py, over HTTP).

The relying party is only a redirect URI: Playwright answers it with ``page.route``,
and the test redeems the code over HTTP like the application's back end. Every page is
saved at phone and at desktop width.
"""

import secrets
from types import SimpleNamespace
from urllib.parse import urlencode

import pyotp
import pytest
import requests

from tests.e2e.application import redeem_code
from tests.e2e.application import verified_claims
from tests.e2e.conftest import _free_port
from tests.e2e.conftest import _server_env
from tests.e2e.conftest import run_idp
from tests.e2e.conftest import serving
from tests.helpers import callback_params
from tests.helpers import pkce_pair
from tests.integration.journey import Authenticator

pytestmark = pytest.mark.e2e

RP_REDIRECT_URI = "https://rp.example/cb"
RP_HTML = "<!doctype html><title>Relying party</title><h1>Back at the relying party</h1>"
UPSTREAM = "corp-idp"
ALICE = "alice@corp.example"
ALICE_PASSWORD = "Corp-Upstream-Pass-7"
RP_TENANTS = {"acme": ("--trust-mfa",), "beta": ("--no-trust-mfa",)}


# -- the module's idp ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def federated_idp(e2e_environment, tmp_path_factory):
    """idp (`idp serve`) with the upstream and the relying-party tenants, set up with the CLI.

    Named as conftest's failure report looks for it: a failed journey shows the server's log.
    """
    base = tmp_path_factory.mktemp("idp-upstream")
    env = _server_env(base, _free_port(), IDP_BREACH_API_URL="")
    world = SimpleNamespace(url=env["IDP_PUBLIC_URL"], env=env, base=base)
    world.idp = lambda *args: run_idp(env, *args)
    _set_up(world)
    with serving(base, env, "--workers", "2") as server:
        world.log_path = server.log_path
        yield world


def _set_up(world):
    """The operator's commands, in the order the guide gives them."""
    world.idp("init")
    world.idp("tenant", "create", UPSTREAM, "--name", "Corp")
    secret = pyotp.random_base32()
    world.alice_phone = Authenticator(secret)  # shared: no two journeys reuse a TOTP step
    world.idp(
        "user", "create", "--tenant", UPSTREAM, "--email", ALICE, "--password", ALICE_PASSWORD,
        "--totp-secret", secret, "--active",
    )  # fmt: skip
    world.clients = {}
    for tenant, trust in RP_TENANTS.items():
        world.idp("tenant", "create", tenant, "--name", tenant.title())
        callback = f"{world.url}/{tenant}/federation/corp/callback"
        at_corp = world.idp(
            "client", "create", "--tenant", UPSTREAM, "--name", f"{tenant.title()} tenant",
            "--redirect-uri", callback, "--first-party", "--json",
        )  # fmt: skip
        world.idp(
            "upstream", "add", "--tenant", tenant, "corp", "--name", "Corp SSO",
            "--issuer", f"{world.url}/{UPSTREAM}", "--client-id", at_corp["client_id"],
            "--client-secret", at_corp["client_secret"], "--domain", "corp.example",
            "--jit", *trust, "--allow-private-network", "--json",
        )  # fmt: skip
        rp = world.idp(
            "client", "create", "--tenant", tenant, "--name", "Browser RP",
            "--redirect-uri", RP_REDIRECT_URI, "--first-party", "--json",
        )  # fmt: skip
        world.clients[tenant] = (rp["client_id"], rp["client_secret"])


# -- the browser ----------------------------------------------------------------------------


@pytest.fixture
def tab(open_page, request):
    """A fresh desktop tab, its screenshots named after the test; the relying party is
    answered by Playwright (there is no server behind ``RP_REDIRECT_URI``)."""
    name = request.node.name.removeprefix("test_").replace("_", "-")
    watched = open_page("desktop", prefix=f"idp-upstream-{name}")
    watched.page.route(
        f"{RP_REDIRECT_URI}**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=RP_HTML),
    )
    yield watched
    assert watched.csp_violations() == [], watched.console_errors
    assert watched.page_errors == []


def _expect():
    """Playwright's auto-waiting assertions (imported late: the package may be missing)."""
    from playwright.sync_api import expect

    return expect


class SignIn:
    """One authorization request of the relying party at ``tenant``, walked in the browser."""

    def __init__(self, world, watched, tenant):
        self.world, self.watched, self.page = world, watched, watched.page
        self.issuer = f"{world.url}/{tenant}"
        self.upstream_issuer = f"{world.url}/{UPSTREAM}"
        self.client_id, self.client_secret = world.clients[tenant]
        self.verifier, challenge = pkce_pair()
        self.nonce = secrets.token_urlsafe(12)
        self.state = secrets.token_urlsafe(12)
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": RP_REDIRECT_URI,
            "scope": "openid email profile",
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        self.page.goto(f"{self.issuer}/authorize?{urlencode(query)}")

    # -- looking and acting --------------------------------------------------------------

    def at(self, step, issuer):
        """Assert the page is ``step`` of the tenant at ``issuer``, and save it."""
        _expect()(self.page.locator("input[name=step]").first).to_have_value(step)
        self.page.wait_for_load_state()
        assert self.page.url.startswith(f"{issuer}/"), (step, self.page.url)
        where = "corp" if issuer == self.upstream_issuer else "rp"
        self.watched.screenshots(f"{where}-{step.replace('_', '-')}")

    def field(self, label):
        return self.page.get_by_label(label, exact=True)

    def press(self, name):
        self.page.get_by_role("button", name=name, exact=True).click()

    # -- the steps -----------------------------------------------------------------------

    def email(self, address):
        """The relying-party tenant's email-first step."""
        self.at("identify", self.issuer)
        self.field("Email address").fill(address)
        self.press("Continue")
        return self

    def upstream_sign_in(self, email, password, phone):
        """corp-idp's own sign-in: the email already filled in (``login_hint``), password,
        authenticator code; the browser then goes back to the relying-party tenant."""
        expect = _expect()
        self.at("identify", self.upstream_issuer)
        expect(self.field("Email address")).to_have_value(email)
        self.press("Continue")
        self.at("password", self.upstream_issuer)
        self.field("Password").fill(password)
        self.press("Sign in")
        self.at("second_factor", self.upstream_issuer)
        self.field("Enter your code").fill(phone.code())
        self.press("Verify")
        return self

    def enrol_local_authenticator(self):
        """Back at the relying-party tenant, which does not trust corp's MFA: its QR code,
        the key under "Still having trouble?", the app's first code, the recovery codes."""
        expect = _expect()
        self.at("totp_enrol", self.issuer)
        expect(self.page.locator("figure.qr svg")).to_be_visible()
        self.page.get_by_text("Still having trouble?").click()
        key = "".join(self.page.locator("#totp-secret").inner_text().split())
        self.watched.screenshots("rp-totp-enrol-key")
        self.press("Continue")
        phone = Authenticator(key)
        self.at("totp_confirm", self.issuer)
        self.field("Enter your code").fill(phone.code())
        self.press("Verify")
        self.at("recovery_codes", self.issuer)
        codes = self.page.locator("#recovery-codes li").all_inner_texts()
        assert codes, "no recovery codes shown"
        self.press("I have saved my recovery codes")
        return phone

    def tokens(self):
        """Back at the relying party with a code: redeem it as the application would."""
        self.page.wait_for_url(f"{RP_REDIRECT_URI}?**")
        self.watched.screenshots("relying-party")
        params = callback_params(self.page.url)
        assert params["state"] == self.state, params
        assert params.get("iss") in (None, self.issuer), params
        tokens = redeem_code(
            self.issuer,
            self.client_id,
            self.client_secret,
            RP_REDIRECT_URI,
            params["code"],
            self.verifier,
        )
        claims = verified_claims(self.issuer, self.client_id, tokens["id_token"], self.nonce)
        return tokens, claims


def _userinfo(journey, tokens):
    response = requests.get(
        f"{journey.issuer}/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


# -- the journeys ---------------------------------------------------------------------------


def test_upstream_idp_tenant_with_trusted_mfa(federated_idp, tab):
    """acme: alice's email sends her to corp-idp, where she signs in with password and
    authenticator; acme creates her account and trusts that MFA, so no page of acme's
    follows and the relying party gets tokens with ``amr`` ["fed", "mfa"]."""
    journey = SignIn(federated_idp, tab, "acme").email(ALICE)
    journey.upstream_sign_in(ALICE, ALICE_PASSWORD, federated_idp.alice_phone)
    tokens, claims = journey.tokens()
    assert claims["amr"] == ["fed", "mfa"]
    info = _userinfo(journey, tokens)
    assert info["email"] == ALICE and info["sub"] == claims["sub"]


def test_upstream_idp_tenant_without_trusted_mfa_needs_local_authenticator(federated_idp, tab):
    """beta: the same upstream sign-in, but beta does not trust corp's MFA: alice's new
    account at beta enrols an authenticator of its own before the relying party's code."""
    journey = SignIn(federated_idp, tab, "beta").email(ALICE)
    journey.upstream_sign_in(ALICE, ALICE_PASSWORD, federated_idp.alice_phone)
    journey.enrol_local_authenticator()
    tokens, claims = journey.tokens()
    assert "fed" in claims["amr"] and "mfa" in claims["amr"], claims["amr"]
    assert "pwd" not in claims["amr"], claims["amr"]
    assert _userinfo(journey, tokens)["email"] == ALICE
