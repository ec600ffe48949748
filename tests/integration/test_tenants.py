"""Tenants are isolated realms: nothing of one is known to another (DESIGN §3)."""

import requests

from idp.services import clients
from idp.services import sessions
from idp.services import tenants
from idp.services import users
from tests.helpers import Browser
from tests.integration.realm import REDIRECT_URI
from tests.integration.realm import Realm
from tests.integration.realm import expect_error_page
from tests.integration.realm import expect_error_redirect
from tests.integration.test_prompts import authorize_silently


def other_tenant_view(realm, factory, server):
    """The same client id and user, asked of another tenant."""
    other = Realm.__new__(Realm)
    other.__dict__.update(realm.__dict__)
    other.tenant = factory.tenant()
    other.issuer = server.issuer(other.tenant)
    return other


def test_client_of_one_tenant_is_unknown_to_another(realm, factory, server, browser):
    other = other_tenant_view(realm, factory, server)
    url, _, _ = other.authorize_url()
    expect_error_page(browser.get(url))
    response = requests.post(
        f"{other.issuer}/token",
        auth=(realm.client_id, realm.client_secret),
        data={"grant_type": "client_credentials"},
        timeout=10,
    )
    assert response.status_code == 401


def test_user_of_one_tenant_cannot_sign_in_at_another(realm, factory, server, browser):
    other = other_tenant_view(realm, factory, server)
    other.client_id, other.client_secret = factory.client(other.tenant)
    url, _, _ = other.authorize_url()
    page = browser.sign_in(browser.get(url), realm.email, realm.password, REDIRECT_URI)
    assert "Invalid email and password combination." in page.text


def test_session_of_one_tenant_does_not_apply_to_another(realm, factory, server):
    realm.tokens()
    other = other_tenant_view(realm, factory, server)
    other.client_id, other.client_secret = factory.client(other.tenant)
    expect_error_redirect(authorize_silently(other, prompt="none"), "login_required")


def test_a_session_cookie_value_of_one_tenant_is_unknown_at_another(realm, factory, app):
    """Whatever cookie carries it: sessions are found by their secret's hash alone (see
    sessions._BY_SECRET_HASH), and the tenant is checked on the row."""
    other = factory.tenant()
    with app.app_context():
        here = tenants.query_tenant(realm.tenant.slug)
        user = users.find_user_by_email(here, realm.email)
        _, secret = sessions.create_session(here, user, ["pwd"], None, app.config)
        assert sessions.load_session(here, secret, app.config) is not None
        elsewhere = tenants.query_tenant(other.slug)
        assert sessions.load_session(elsewhere, secret, app.config) is None


def test_tokens_of_one_tenant_are_worthless_at_another(realm, factory, server):
    tokens = realm.tokens()
    other = other_tenant_view(realm, factory, server)
    assert (
        requests.get(
            f"{other.issuer}/userinfo",
            timeout=10,
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        ).status_code
        == 401
    )
    other_client = factory.client(other.tenant)
    body = requests.post(
        f"{other.issuer}/introspect",
        auth=other_client,
        data={"token": tokens["access_token"]},
        timeout=10,
    ).json()
    assert body == {"active": False}


def test_codes_and_refresh_tokens_of_one_tenant_are_unknown_at_another(realm, factory, server, app):
    """Even to a client of the same id there: codes and refresh tokens are found by their
    unique hash alone (see tokens._CODE_AND_USER), and the tenant is checked on the row."""
    other = other_tenant_view(realm, factory, server)
    with app.app_context():
        _, secret = clients.create_client(
            tenants.query_tenant(other.tenant.slug), "Same id", {
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
            }, first_party=True, client_id=realm.client_id,
        )  # fmt: skip
    twin = (realm.client_id, secret)
    result, _, verifier = realm.sign_in()
    code = {"grant_type": "authorization_code", "code": result["code"],
            "redirect_uri": REDIRECT_URI, "code_verifier": verifier}  # fmt: skip
    elsewhere = requests.post(f"{other.issuer}/token", data=code, auth=twin, timeout=10)
    assert elsewhere.status_code == 400 and elsewhere.json()["error"] == "invalid_grant"
    issued = realm.redeem(result["code"], verifier)  # still good where it was issued
    assert issued.status_code == 200, issued.text
    refresh = issued.json()["refresh_token"]
    data = {"grant_type": "refresh_token", "refresh_token": refresh}
    elsewhere = requests.post(f"{other.issuer}/token", data=data, auth=twin, timeout=10)
    assert elsewhere.status_code == 400 and elsewhere.json()["error"] == "invalid_grant"
    looked_up = requests.post(
        f"{other.issuer}/introspect", data={"token": refresh}, auth=twin, timeout=10
    )
    assert looked_up.json() == {"active": False}
    assert realm.token(grant_type="refresh_token", refresh_token=refresh).status_code == 200


def test_unknown_tenant_is_a_404_page(server):
    response = Browser(server).get(f"{server.url}/no-such-tenant/authorize?client_id=x")
    assert response.status_code == 404 and "not found" in response.text.lower()


def test_unknown_tenant_api_is_json_404(server):
    response = requests.get(
        f"{server.url}/no-such-tenant/.well-known/openid-configuration", timeout=10
    )
    assert response.status_code == 404 and response.json()["error"]


def test_reserved_and_malformed_slugs_are_refused(app):
    from idp.errors import ValidationFailed
    from idp.services import tenants

    with app.app_context():
        for slug in ("admin", "static", "api", "A", "x", "bad_slug", "a" * 64):
            try:
                tenants.create_tenant(slug, "x")
            except ValidationFailed:
                continue
            raise AssertionError(f"{slug!r} was accepted")


def test_unknown_tenant_at_the_rfc8414_location_is_json_404(server):
    response = requests.get(f"{server.url}/.well-known/oauth-authorization-server/nope", timeout=10)
    assert response.status_code == 404 and response.json()["error"]
