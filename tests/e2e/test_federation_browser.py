"""Federation in a real browser: every message of both Flexopus error tables (the sign-in
table and the "Multiple Single Sign On" one), and the journeys that work: SSO with
just-in-time accounts, "Mixed Log In" for externals, and the admin back door.

One idp (`idp serve`) and one npm ``oidc-provider`` upstream serve the whole module; an
operator sets them up with the ``idp`` CLI as the guide's administrator would: tenant
``acme`` has three upstreams on that provider (``corp`` with JIT and trusted MFA, ``staff``
without JIT, ``broken`` registered with the wrong client secret), password sign-in for
externals and whitelisted guests; ``globex`` claims its own domain; ``locked`` has no
password sign-in at all. Chromium types at idp's pages and at the upstream's (Sign in /
Cancel). The relying party is only a redirect URI: Playwright answers it with
``page.route``, and the test redeems the code over HTTP like the application's back end.

Failure pages are recognised by their ``data-error-code``, which never changes, and by
their English wording; each is saved at phone and at desktop width.
"""

import secrets
from concurrent.futures import ThreadPoolExecutor
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
from tests.upstream import DEFAULT_CLIENT_ID
from tests.upstream import DEFAULT_CLIENT_SECRET
from tests.upstream import DEFAULT_PASSWORD
from tests.upstream import default_config
from tests.upstream import start_upstream

pytestmark = [pytest.mark.e2e, pytest.mark.node]

RP_REDIRECT_URI = "https://rp.example/cb"
RP_HTML = "<!doctype html><title>Relying party</title><h1>Back at the relying party</h1>"
EXTERNAL_PASSWORD = "Contractor-Pass-9"
ADMIN_PASSWORD = "Admin-Back-Door-7"
ADMIN = "admin@corp.example"
ALIASES = ("corp", "staff", "broken")
PRE_PROVISIONED = ("dave@staff.example", "dora@staff.example", "erin@staff.example")


def _account(email, **claims):
    """An upstream account whose login is its email, so idp's ``login_hint`` fills it in."""
    return email, {
        "sub": f"up-{email.split('@')[0]}",
        "email": email,
        "email_verified": True,
        "name": email.split("@")[0].title(),
        **claims,
    }


UPSTREAM_ACCOUNTS = dict(
    [
        _account("alice@corp.example", amr=["pwd", "otp"]),  # JIT, her MFA trusted
        _account("dave@staff.example"),  # pre-provisioned, then disabled
        _account("dora@staff.example"),  # pre-provisioned, then deleted
        _account("erin@staff.example"),  # pre-provisioned, access expired
        _account("frank@staff.example"),  # no local account, no JIT
        _account("gina@broken.example"),  # her upstream is misconfigured at idp
        _account("otto@corp.example"),  # signs in where the upstream was stopped
    ]
)


# -- the module's idp and upstream ----------------------------------------------------------


@pytest.fixture(scope="module")
def federated_idp(e2e_environment, tmp_path_factory):
    """idp (`idp serve`) and its upstream (node), set up with the CLI; ``idp(*args)`` runs more."""
    base = tmp_path_factory.mktemp("federation")
    env = _server_env(base, _free_port(), IDP_BREACH_API_URL="")
    url = env["IDP_PUBLIC_URL"]
    callbacks = [f"{url}/acme/federation/{alias}/callback" for alias in ALIASES]
    config = default_config(redirect_uris=callbacks, accounts=UPSTREAM_ACCOUNTS)
    with start_upstream(config) as upstream:
        world = SimpleNamespace(url=url, env=env, upstream=upstream, base=base)
        world.idp = lambda *args: run_idp(env, *args)
        _set_up(world)
        with serving(base, env, "--workers", "2") as server:
            world.log_path = server.log_path
            yield world


def _set_up(world):
    """The operator's commands; independent ones at once (each is mostly Python start-up)."""
    world.idp("init")
    _at_once(
        world,
        ("tenant", "create", "acme", "--name", "Acme"),
        ("tenant", "create", "globex", "--name", "Globex", "--domain", "globex.example"),
        ("tenant", "create", "locked", "--name", "Locked", "--no-password-login"),
    )
    world.totp = {who: pyotp.random_base32() for who in ("contractor", "admin")}
    client = ("--name", "Browser RP", "--redirect-uri", RP_REDIRECT_URI, "--first-party")
    issuer = world.upstream.issuer
    roll_out = world.base / "roll-out.csv"
    roll_out.write_text("email,name\n" + "".join(f"{email},\n" for email in PRE_PROVISIONED))
    answers = _at_once(
        world,
        ("client", "create", "--tenant", "acme", *client, "--json"),
        ("client", "create", "--tenant", "locked", *client, "--json"),
        ("tenant", "update", "acme", "--allowed-domain", "guest.example"),
        _upstream("acme", "corp", issuer, "corp.example", "--jit", "--trust-mfa"),
        _upstream("acme", "staff", issuer, "staff.example", "--no-jit"),
        _upstream("acme", "broken", issuer, "broken.example", "--jit", secret="not-the-secret"),
        (
            "user", "create", "--tenant", "acme", "--email", "contractor@corp.example",
            "--password", EXTERNAL_PASSWORD, "--totp-secret", world.totp["contractor"],
            "--active", "--external",
        ),
        (
            "user", "create", "--tenant", "locked", "--email", ADMIN, "--password",
            ADMIN_PASSWORD, "--totp-secret", world.totp["admin"], "--active", "--admin",
        ),
        # Imported weeks ahead of the roll-out, as the guide tells; linked at the first SSO.
        ("user", "import", "--tenant", "acme", "--no-welcome-email", str(roll_out)),
    )  # fmt: skip
    world.clients = {
        tenant: (answer["client_id"], answer["client_secret"])
        for tenant, answer in zip(("acme", "locked"), answers, strict=False)
    }


def _at_once(world, *commands):
    """Run independent ``idp`` commands side by side; their answers, in order."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: world.idp(*args), commands))


def _upstream(tenant, alias, issuer, domain, *flags, secret=DEFAULT_CLIENT_SECRET):
    """``idp upstream add`` for the provider on loopback (hence ``--allow-private-network``)."""
    return (
        "upstream", "add", "--tenant", tenant, alias, "--name", f"{alias.title()} SSO",
        "--issuer", issuer, "--client-id", DEFAULT_CLIENT_ID, "--client-secret", secret,
        "--domain", domain, "--allow-private-network", *flags, "--json",
    )  # fmt: skip


# -- the browser ----------------------------------------------------------------------------


@pytest.fixture
def tab(open_page, request):
    """A fresh desktop tab, its screenshots named after the test; the relying party is
    answered by Playwright (there is no server behind ``RP_REDIRECT_URI``)."""
    name = request.node.name.removeprefix("test_").replace("_", "-").replace("[", "-")
    watched = open_page("desktop", prefix=f"federation-{name.rstrip(']')}")
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


def _button(page, name):
    return page.get_by_role("button", name=name, exact=True)


class SignIn:
    """One authorization request of the relying party, walked through in the browser."""

    def __init__(self, world, watched, tenant):
        self.world, self.watched, self.page, self.tenant = world, watched, watched.page, tenant
        self.issuer = f"{world.url}/{tenant}"
        self.client_id, self.client_secret = world.clients[tenant]
        self.verifier, challenge = pkce_pair()
        self.nonce = secrets.token_urlsafe(12)
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": RP_REDIRECT_URI,
            "scope": "openid email profile",
            "state": secrets.token_urlsafe(12),
            "nonce": self.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        self.page.goto(f"{self.issuer}/authorize?{urlencode(query)}")

    def shot(self, name):
        """An idp page: at phone and desktop width."""
        self.watched.screenshots(name)

    def email(self, address):
        """The email-first step: type the address and continue."""
        expect = _expect()
        field = self.page.get_by_label("Email address")
        expect(field).to_be_editable()
        assert self.page.url.startswith(f"{self.issuer}/login"), self.page.url
        field.fill(address)
        self.shot("identify")
        _button(self.page, "Continue").click()
        return self

    def at_upstream(self, login=None):
        """The upstream's own sign-in page, reached by redirect with ``login_hint``."""
        expect = _expect()
        expect(_button(self.page, "Cancel")).to_be_visible()
        assert self.page.url.startswith(self.world.upstream.issuer), self.page.url
        if login is not None:
            self.page.get_by_label("Login").fill(login)
        self.watched.screenshot("upstream-sign-in")
        return self

    def upstream_sign_in(self, login=None, password=DEFAULT_PASSWORD):
        """Sign in at the upstream; the browser comes back to idp."""
        self.at_upstream(login)
        self.page.get_by_label("Password").fill(password)
        _button(self.page, "Sign in").click()
        return self

    def upstream_cancel(self):
        """Press Cancel at the upstream: it answers idp with ``access_denied``."""
        self.at_upstream()
        _button(self.page, "Cancel").click()
        return self

    def password(self, secret):
        """idp's password step."""
        expect = _expect()
        field = self.page.get_by_label("Password", exact=True)
        expect(field).to_be_visible()
        field.fill(secret)
        self.shot("password")
        _button(self.page, "Sign in").click()
        return self

    def authenticator(self, totp_secret):
        """idp's second factor: the code the user's app shows now."""
        expect = _expect()
        field = self.page.get_by_label("Enter your code")
        expect(field).to_be_visible()
        field.fill(pyotp.TOTP(totp_secret).now())
        self.shot("authenticator-code")
        _button(self.page, "Verify").click()
        return self

    def failure(self, code, title, *phrases):
        """A failure page: its heading, its stable code, its explanation."""
        expect = _expect()
        alert = self.page.locator(f'[role="alert"][data-error-code="{code}"]')
        expect(alert).to_be_visible()
        expect(self.page.get_by_role("heading", level=1)).to_have_text(title)
        for phrase in phrases:
            expect(alert).to_contain_text(phrase)
        assert self.page.url.startswith(self.issuer), self.page.url
        self.shot(f"failure-{code.replace('_', '-')}")
        return alert

    def tokens(self):
        """Back at the relying party with a code: redeem it as the application would."""
        self.page.wait_for_url(f"{RP_REDIRECT_URI}?**")
        self.watched.screenshot("relying-party")
        params = callback_params(self.page.url)
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


# -- the Flexopus messages ------------------------------------------------------------------


def test_invalid_email_password_combination(federated_idp, tab):
    """Mixed tenant, password side: an external of the SSO domain types a wrong password."""
    journey = SignIn(federated_idp, tab, "acme").email("contractor@corp.example")
    journey.password("Not-The-Password-1")
    expect = _expect()
    alert = tab.page.get_by_role("alert")
    expect(alert).to_have_text("Invalid email and password combination.")
    expect(tab.page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")
    journey.shot("invalid-email-password-combination")


def test_incorrect_sign_in_address(federated_idp, tab):
    """Flexopus "Incorrect Flexopus URL": another tenant (globex) claims the domain."""
    journey = SignIn(federated_idp, tab, "acme").email("someone@globex.example")
    journey.failure("wrong_tenant", "Incorrect sign-in address", "wrong organisation")


@pytest.mark.parametrize("action", ["disable", "delete"])
def test_user_account_disabled_or_deleted(federated_idp, tab, action):
    """A pre-provisioned user whom the administrator disabled (deleted) signs in with SSO:
    the upstream vouches for them, and idp refuses the local account."""
    email = {"disable": "dave@staff.example", "delete": "dora@staff.example"}[action]
    federated_idp.idp("user", action, "--tenant", "acme", "--email", email)
    journey = SignIn(federated_idp, tab, "acme").email(email).upstream_sign_in(email)
    journey.failure(
        "account_disabled", "User account disabled or deleted", "deactivated or deleted"
    )


def test_access_expired(federated_idp, tab):
    """A pre-provisioned SSO user whose access ended today (``idp user expire``)."""
    email = "erin@staff.example"
    federated_idp.idp("user", "expire", "--tenant", "acme", "--email", email)
    journey = SignIn(federated_idp, tab, "acme").email(email).upstream_sign_in(email)
    journey.failure("access_expired", "Access expired", "access has expired")


def test_user_does_not_exist(federated_idp, tab):
    """The upstream knows frank, idp does not, and ``staff`` provisions nobody (no JIT)."""
    email = "frank@staff.example"
    journey = SignIn(federated_idp, tab, "acme").email(email).upstream_sign_in(email)
    journey.failure("user_not_found", "User does not exist", "does not exist")


def test_email_domain_is_not_allowed(federated_idp, tab):
    """acme whitelists guest.example for passwords; elsewhere.example is nobody's domain."""
    journey = SignIn(federated_idp, tab, "acme").email("someone@elsewhere.example")
    journey.failure("domain_not_allowed", "Email domain is not allowed", "whitelisted")


def test_identity_provider_does_not_allow_access(federated_idp, tab):
    """The user presses Cancel at the upstream, which answers ``access_denied``."""
    journey = SignIn(federated_idp, tab, "acme").email("alice@corp.example").upstream_cancel()
    journey.failure(
        "idp_denied", "Identity provider does not allow access", "did not allow this sign-in"
    )
    assert federated_idp.upstream.events("denied"), federated_idp.upstream.output


def test_sso_misconfiguration(federated_idp, tab):
    """``broken`` was registered with a wrong client secret: the code cannot be redeemed."""
    email = "gina@broken.example"
    journey = SignIn(federated_idp, tab, "acme").email(email).upstream_sign_in(email)
    journey.failure("sso_misconfigured", "SSO misconfiguration", "not set up correctly")


def test_incorrect_sso_selection_names_the_right_one(federated_idp, tab):
    """Typed a staff.example address, then signed in at that upstream as a corp.example
    user: corp.example signs in with Corp SSO, and the page says so."""
    journey = SignIn(federated_idp, tab, "acme").email("someone@staff.example")
    journey.upstream_sign_in("alice@corp.example")
    journey.failure("wrong_sso", "Incorrect SSO selection", "Please sign in with Corp SSO.")


# -- the journeys that work -----------------------------------------------------------------


def test_sso_with_just_in_time_provisioning(federated_idp, tab):
    """alice has no account at acme: corp creates it, trusts her MFA, and the relying party
    gets tokens for her without any page of idp's after the email."""
    email = "alice@corp.example"
    journey = SignIn(federated_idp, tab, "acme").email(email)
    _expect()(tab.page.get_by_label("Login")).to_have_value(email)  # login_hint
    journey.upstream_sign_in()
    tokens, claims = journey.tokens()
    assert claims["amr"] == ["fed", "mfa"]
    info = requests.get(
        f"{journey.issuer}/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    ).json()
    assert info["email"] == email and info["sub"] == claims["sub"]


def test_mixed_login_external_uses_password_and_authenticator(federated_idp, tab):
    """corp.example goes to SSO, but the contractor (``--external``) of that domain signs in
    with password and authenticator, and never sees the upstream."""
    journey = SignIn(federated_idp, tab, "acme").email("contractor@corp.example")
    journey.password(EXTERNAL_PASSWORD)
    journey.authenticator(federated_idp.totp["contractor"])
    _, claims = journey.tokens()
    assert {"pwd", "otp"} <= set(claims["amr"]) and "fed" not in claims["amr"]
    hints = [e["params"].get("login_hint") for e in federated_idp.upstream.events("authorization")]
    assert "contractor@corp.example" not in hints


def test_admin_back_door_with_sso_broken_and_passwords_off(federated_idp, tab):
    """locked has no password sign-in and its SSO is down (the upstream stopped): users get
    "SSO misconfiguration", the administrator signs in through ``/locked/login/admin``."""
    with start_upstream(default_config(accounts=dict([_account("otto@corp.example")]))) as down:
        federated_idp.idp(*_upstream("locked", "corp", down.issuer, "corp.example", "--jit"))
    assert down.returncode is not None  # stopped: discovery now meets a closed port

    user = SignIn(federated_idp, tab, "locked").email("otto@corp.example")
    user.failure("sso_misconfigured", "SSO misconfiguration", "not set up correctly")
    also_admin = SignIn(federated_idp, tab, "locked").email(ADMIN)  # routing ignores roles
    also_admin.failure("sso_misconfigured", "SSO misconfiguration")
    unrouted = SignIn(federated_idp, tab, "locked").email("otto@elsewhere.example")
    unrouted.failure("domain_not_allowed", "Email domain is not allowed")  # no passwords here

    journey = SignIn(federated_idp, tab, "locked")
    _expect()(tab.page.get_by_label("Email address")).to_be_visible()
    tab.page.goto(f"{journey.issuer}/login/admin")
    journey.email(ADMIN).password(ADMIN_PASSWORD)
    journey.authenticator(federated_idp.totp["admin"])
    _, claims = journey.tokens()
    assert {"pwd", "otp"} <= set(claims["amr"])
