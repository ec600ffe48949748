"""Federation to another idp tenant: routing by domain, linking, JIT, MFA trust, the messages.

The upstream here is a second tenant of the same idp — a real OpenID provider over
HTTP, with its own sign-in journey — so every step the browser takes is real. (The
npm oidc-provider upstream has its own tests in tests/interop.)
"""

import uuid

import pyotp
import pytest

from idp.extensions import db
from idp.federation import registry
from idp.services import tenants
from idp.services import users
from tests.helpers import phone_code
from tests.helpers import register_phone
from tests.integration.journey import Authenticator
from tests.integration.journey import Journey
from tests.integration.realm import Realm
from tests.integration.test_code_flow import decode_id_token

CORP = "corp.example"


class Federation:
    """A relying-party tenant whose ``corp.example`` users sign in at an upstream idp tenant."""

    def __init__(self, app, server, factory, browser, **upstream_options):
        self.app, self.server, self.factory = app, server, factory
        self.realm = Realm(server, factory, browser)
        self.upstream_tenant = factory.tenant()
        self.upstream_issuer = server.issuer(self.upstream_tenant)
        self.alias = "corp"
        callback = f"{self.realm.issuer}/federation/{self.alias}/callback"
        client_id, secret = factory.client(self.upstream_tenant, redirect_uris=[callback])
        options = {"jit": False, "trust_mfa": False, **upstream_options}
        self.add_upstream(self.alias, client_id, secret, [CORP], **options)

    def add_upstream(self, alias, client_id, secret, domains, **options):
        """Register an upstream on the relying-party tenant (loopback: private allowed)."""
        with self.app.app_context():
            registry.add(
                tenants.query_tenant(self.realm.tenant.slug),
                alias,
                client_secret=secret,
                issuer=self.upstream_issuer,
                client_id=client_id,
                domains=domains,
                display_name=f"{alias.title()} SSO",
                allow_private_network=True,
                **options,
            )

    def upstream_user(self, local=None):
        """A user at the upstream (with its own authenticator); maybe also a local account."""
        email = f"{local or 'emp'}-{uuid.uuid4().hex[:6]}@{CORP}"
        self.factory.user(self.upstream_tenant, email=email, password="Upstream-Pass-1")
        return email

    def local_user(self, email, **kwargs):
        """A pre-provisioned account at the relying-party tenant."""
        kwargs.setdefault("totp_secret", None)
        return self.factory.user(self.realm.tenant, email=email, **kwargs)

    def sign_in_upstream(self, journey, email):
        """Email at the RP tenant → upstream's pages → back; returns the journey."""
        journey.expect("identify").submit({"email": email})
        assert self.upstream_issuer in journey.page.url, journey.page.url
        journey.expect("identify").submit({"email": email}).expect("password")
        journey.submit({"password": "Upstream-Pass-1"}).expect("second_factor")
        return journey.submit({"code": phone_code(email)})


@pytest.fixture
def federation(app, server, factory, browser):
    return Federation(app, server, factory, browser)


def test_routed_domain_goes_to_the_upstream_with_login_hint(federation, browser):
    email = federation.upstream_user()
    journey = Journey(federation.realm, browser).start()
    journey.submit({"email": email})
    assert journey.page.url.startswith(federation.upstream_issuer + "/login")
    assert f'value="{email}"' in journey.page.text, "login_hint pre-fills the upstream's email"


def test_pre_provisioned_user_links_by_verified_email_then_local_mfa(federation, browser, app):
    email = federation.upstream_user()
    federation.local_user(email)
    journey = Journey(federation.realm, browser).start()
    federation.sign_in_upstream(journey, email).expect("totp_enrol")
    phone = Authenticator(journey.totp_secret())
    journey.submit().submit({"code": phone.code()}).expect("recovery_codes").submit()
    claims = decode_id_token(federation.realm, journey.tokens()["id_token"]).claims
    assert "fed" in claims["amr"] and "mfa" in claims["amr"] and "pwd" not in claims["amr"]


def test_unlinked_user_without_jit_is_told_the_user_does_not_exist(federation, browser):
    email = federation.upstream_user()
    journey = Journey(federation.realm, browser).start()
    federation.sign_in_upstream(journey, email)
    assert 'data-error-code="user_not_found"' in journey.page.text


def test_jit_provisioning_and_trusted_mfa(app, server, factory, browser):
    federation = Federation(app, server, factory, browser, jit=True, trust_mfa=True)
    email = federation.upstream_user()
    journey = Journey(federation.realm, browser).start()
    federation.sign_in_upstream(journey, email)
    claims = decode_id_token(federation.realm, journey.tokens()["id_token"]).claims
    assert claims["amr"] == ["fed", "mfa"], "the upstream asserted mfa and is trusted for it"
    with app.app_context():
        user = users.find_user_by_email(tenants.query_tenant(federation.realm.tenant.slug), email)
        assert user is not None and user.state == "active" and not user.has_totp


def test_the_link_is_by_iss_and_sub_and_used_again(app, server, factory, browser):
    federation = Federation(app, server, factory, browser, jit=True, trust_mfa=True)
    email = federation.upstream_user()
    first = Journey(federation.realm, browser).start()
    federation.sign_in_upstream(first, email)
    sub = decode_id_token(federation.realm, first.tokens()["id_token"]).claims["sub"]
    again = Journey(federation.realm, type(browser)(server)).start()
    federation.sign_in_upstream(again, email)
    assert decode_id_token(federation.realm, again.tokens()["id_token"]).claims["sub"] == sub


def test_disabled_local_account_gets_its_message_after_the_upstream(federation, browser, app):
    email = federation.upstream_user()
    federation.local_user(email)
    with app.app_context():
        user = users.find_user_by_email(tenants.query_tenant(federation.realm.tenant.slug), email)
        user.state = "disabled"
        db.session.commit()
    journey = Journey(federation.realm, browser).start()
    federation.sign_in_upstream(journey, email)
    assert 'data-error-code="account_disabled"' in journey.page.text


def test_incorrect_sso_selection_names_the_right_one(app, server, factory, browser):
    federation = Federation(app, server, factory, browser, jit=True)
    other_cb = f"{federation.realm.issuer}/federation/other/callback"
    client_id, secret = factory.client(federation.upstream_tenant, redirect_uris=[other_cb])
    federation.add_upstream("other", client_id, secret, ["other.example"], jit=True)
    email = federation.upstream_user()
    journey = Journey(federation.realm, browser).start()
    journey.submit({"email": "someone@other.example"})
    assert federation.upstream_issuer in journey.page.url
    journey.submit({"email": email}).submit({"password": "Upstream-Pass-1"})
    journey.submit({"code": phone_code(email)})
    assert 'data-error-code="wrong_sso"' in journey.page.text
    assert "Corp SSO" in journey.page.text


def test_several_upstreams_for_one_domain_show_buttons(app, server, factory, browser):
    federation = Federation(app, server, factory, browser, jit=True, trust_mfa=True)
    second_cb = f"{federation.realm.issuer}/federation/second/callback"
    client_id, secret = factory.client(federation.upstream_tenant, redirect_uris=[second_cb])
    federation.add_upstream("second", client_id, secret, [CORP], jit=True)
    email = federation.upstream_user()
    journey = Journey(federation.realm, browser).start()
    journey.submit({"email": email}).expect("choose_sso")
    assert "Continue with Corp SSO" in journey.page.text
    assert "Continue with Second SSO" in journey.page.text
    journey.submit(button=("upstream", "corp"))
    assert journey.page.url.startswith(federation.upstream_issuer)


def test_domain_not_allowed(app, federation, browser):
    with app.app_context():
        tenants.update_tenant(
            tenants.query_tenant(federation.realm.tenant.slug), allowed_domains=["partner.example"]
        )
    journey = Journey(federation.realm, browser).start()
    journey.submit({"email": "someone@elsewhere.example"})
    assert 'data-error-code="domain_not_allowed"' in journey.page.text
    partner = Journey(federation.realm, type(browser)(federation.server)).start()
    partner.submit({"email": "x@partner.example"}).expect("password")


def test_wrong_tenant_when_another_tenant_claims_the_domain(app, federation, browser, factory):
    with app.app_context():
        tenants.update_tenant(
            tenants.query_tenant(federation.realm.tenant.slug), allowed_domains=["partner.example"]
        )
        other = tenants.query_tenant(factory.tenant().slug)
        tenants.update_tenant(other, domains=[f"{other.slug}.example"])
        domain = f"{other.slug}.example"
    journey = Journey(federation.realm, browser).start()
    journey.submit({"email": f"someone@{domain}"})
    assert 'data-error-code="wrong_tenant"' in journey.page.text


def test_sso_only_tenant_refuses_password_users(app, federation, browser):
    with app.app_context():
        tenant = tenants.query_tenant(federation.realm.tenant.slug)
        tenant.password_login = False
        db.session.commit()
    journey = Journey(federation.realm, browser).start()
    journey.submit({"email": federation.realm.email})
    assert 'data-error-code="domain_not_allowed"' in journey.page.text


def test_mixed_login_external_uses_password(app, federation, browser):
    """SSO for the routed domain, password + authenticator for an external of that domain."""
    email = f"contractor-{uuid.uuid4().hex[:6]}@{CORP}"
    with app.app_context():
        tenant = tenants.query_tenant(federation.realm.tenant.slug)
        secret = pyotp.random_base32()
        user = users.create_user(
            tenant, email, password="Extern-Pass-1", totp_secret=secret, active=True
        )
        user.is_external = True
        db.session.commit()
    register_phone(email, secret)
    journey = Journey(federation.realm, browser).start()
    journey.submit({"email": email}).expect("password").submit({"password": "Extern-Pass-1"})
    journey.expect("second_factor").submit({"code": phone_code(email)}).code_at_client()


def test_admin_back_door_works_when_sso_is_broken(app, federation, browser, factory):
    admin_email = f"admin-{uuid.uuid4().hex[:6]}@{CORP}"
    factory.user(federation.realm.tenant, email=admin_email, admin=True)
    with app.app_context():
        tenant = tenants.query_tenant(federation.realm.tenant.slug)
        registry.update(tenant, "corp", issuer="http://127.0.0.1:9/broken")
        tenant.password_login = False
        db.session.commit()
    ordinary = Journey(federation.realm, browser).start()
    ordinary.submit({"email": admin_email})
    assert 'data-error-code="sso_misconfigured"' in ordinary.page.text
    journey = Journey(federation.realm, type(browser)(federation.server)).start()
    journey.page = journey.browser.follow(
        journey.browser.get(f"{federation.realm.issuer}/login/admin"), "https://rp.example/cb"
    )
    journey.expect("identify").submit({"email": admin_email}).expect("password")
    journey.submit({"password": "Correct-Horse-9"}).expect("second_factor")
    journey.submit({"code": phone_code(admin_email)}).code_at_client()


def test_admin_back_door_refuses_non_admins(federation, browser):
    journey = Journey(federation.realm, browser).start()
    journey.page = journey.browser.follow(
        journey.browser.get(f"{federation.realm.issuer}/login/admin"), "https://rp.example/cb"
    )
    journey.submit({"email": federation.realm.email}).submit(
        {"password": federation.realm.password}
    )
    assert "Invalid email and password combination." in journey.page.text


def test_domain_hint_goes_straight_to_the_upstream(federation, browser):
    journey = Journey(federation.realm, browser).start(domain_hint=CORP)
    assert journey.page.url.startswith(federation.upstream_issuer + "/login")


def test_unknown_domain_hint_shows_the_email_page(federation, browser):
    Journey(federation.realm, browser).start(domain_hint="nowhere.example").expect("identify")


def test_domain_hint_with_several_upstreams_shows_their_buttons(app, server, factory, browser):
    federation = Federation(app, server, factory, browser, jit=True)
    second_cb = f"{federation.realm.issuer}/federation/second/callback"
    client_id, secret = factory.client(federation.upstream_tenant, redirect_uris=[second_cb])
    federation.add_upstream("second", client_id, secret, [CORP], jit=True)
    Journey(federation.realm, browser).start(domain_hint=CORP).expect("choose_sso")
