"""prompt, max_age, id_token_hint, consent, claims and acr_values (OIDC Core §3.1.2.1, §5.5)."""

import json
import time

from tests.helpers import callback_params
from tests.helpers import phone_code
from tests.integration.realm import REDIRECT_URI
from tests.integration.realm import Realm
from tests.integration.realm import expect_error_redirect
from tests.integration.test_code_flow import decode_id_token


def authorize_silently(realm, **params):
    """An authorization request with the browser's existing session; returns the response."""
    url, _, verifier = realm.authorize_url(**params)
    realm.last_verifier = verifier
    return realm.browser.get(url)


def test_prompt_none_without_session_is_login_required(realm):
    params = expect_error_redirect(authorize_silently(realm, prompt="none"), "login_required")
    assert params["iss"] == realm.issuer


def test_session_is_reused_and_prompt_none_succeeds(realm):
    first = decode_id_token(realm, realm.tokens()["id_token"]).claims
    response = authorize_silently(realm, prompt="none")
    assert response.status_code == 303
    result = callback_params(response.headers["Location"])
    body = realm.redeem(result["code"], realm.last_verifier).json()
    second = decode_id_token(realm, body["id_token"]).claims
    assert second["sid"] == first["sid"] and second["auth_time"] == first["auth_time"]


def test_prompt_none_cannot_be_combined(realm):
    expect_error_redirect(authorize_silently(realm, prompt="none login"), "invalid_request")


def test_prompt_login_asks_again_despite_a_session(realm):
    realm.tokens()
    response = authorize_silently(realm, prompt="login")
    assert "/login" in response.headers["Location"]


def test_max_age_forces_a_fresh_sign_in_and_auth_time_reflects_it(realm):
    first = decode_id_token(realm, realm.tokens()["id_token"]).claims
    time.sleep(1.1)
    response = authorize_silently(realm, max_age="0")
    assert "/login" in response.headers["Location"]
    second = decode_id_token(realm, realm.tokens(max_age="0")["id_token"]).claims
    assert second["auth_time"] > first["auth_time"]
    assert second["sid"] != first["sid"], "a new sign-in gets a new session id"


def test_max_age_within_the_session_age_does_not_ask(realm):
    realm.tokens()
    response = authorize_silently(realm, max_age="3600", prompt="none")
    assert "code=" in response.headers["Location"]


def test_id_token_hint_for_another_user_requires_sign_in(server, factory, browser):
    realm = Realm(server, factory, browser)
    other = Realm(server, factory, type(browser)(server))
    other.tenant, other.issuer = realm.tenant, realm.issuer
    other.client_id, other.client_secret = realm.client_id, realm.client_secret
    other.email, other.password = factory.user(realm.tenant)
    hint = other.tokens()["id_token"]
    realm.tokens()
    expect_error_redirect(
        authorize_silently(realm, prompt="none", id_token_hint=hint), "login_required"
    )
    own = realm.tokens()["id_token"]
    assert (
        "code=" in authorize_silently(realm, prompt="none", id_token_hint=own).headers["Location"]
    )


def test_id_token_hint_from_another_issuer_is_refused(realm):
    expect_error_redirect(authorize_silently(realm, id_token_hint="e30.e30.e30"), "invalid_request")


def test_claims_parameter_adds_requested_claims_to_the_id_token(realm):
    claims = json.dumps({"id_token": {"email": None}, "userinfo": {"name": None}})
    body = realm.tokens(scope="openid", claims=claims)
    id_claims = decode_id_token(realm, body["id_token"]).claims
    assert id_claims["email"] == realm.email
    info = realm.userinfo(body["access_token"]).json()
    assert "email" not in info and set(info) <= {"sub", "name"}


def test_acr_values_puts_acr_in_the_id_token(realm):
    claims = decode_id_token(realm, realm.tokens(acr_values="urn:idp:loa:2fa")["id_token"]).claims
    assert claims["acr"] == "urn:idp:loa:2fa"


def test_no_refresh_token_without_offline_access(realm):
    body = realm.tokens(scope="openid email")
    assert "refresh_token" not in body


def third_party(server, factory, browser):
    return Realm(server, factory, browser, client_metadata={"first_party": False})


def test_third_party_client_gets_consent_once(server, factory, browser):
    realm = third_party(server, factory, browser)
    url, _, _ = realm.authorize_url(scope="openid email")
    page = browser.sign_in(browser.get(url), realm.email, realm.password, REDIRECT_URI)
    assert "wants to access your account" in page.text
    assert "See your email address" in page.text
    reached = browser.follow(browser.submit(page, button=("decision", "allow")), REDIRECT_URI)
    assert "code" in callback_params(reached)
    again = authorize_silently(realm, scope="openid email", prompt="none")
    assert "code=" in again.headers["Location"]
    expect_error_redirect(
        authorize_silently(realm, scope="openid email profile", prompt="none"), "consent_required"
    )
    forced = browser.follow(
        authorize_silently(realm, scope="openid email", prompt="consent"), REDIRECT_URI
    )
    assert "wants to access your account" in forced.text


def test_denied_consent_returns_access_denied(server, factory, browser):
    realm = third_party(server, factory, browser)
    url, query, _ = realm.authorize_url()
    page = browser.sign_in(browser.get(url), realm.email, realm.password, REDIRECT_URI)
    response = browser.submit(page, button=("decision", "deny"))
    params = expect_error_redirect(response, "access_denied")
    assert params["state"] == query["state"] and params["iss"] == realm.issuer


def test_first_party_client_skips_consent(realm):
    assert "code" in realm.sign_in()[0]


def test_select_account_can_continue_with_the_session(realm, browser):
    first = decode_id_token(realm, realm.tokens()["id_token"]).claims
    page = browser.follow(authorize_silently(realm, prompt="select_account"), REDIRECT_URI)
    assert f"Continue as {realm.email}" in page.text
    reached = browser.follow(browser.submit(page, button=("choice", "current")), REDIRECT_URI)
    body = realm.redeem(callback_params(reached)["code"], realm.last_verifier).json()
    claims = decode_id_token(realm, body["id_token"]).claims
    assert claims["sid"] == first["sid"] and claims["auth_time"] == first["auth_time"]


def test_select_account_can_switch_to_another_account(realm, browser, factory):
    realm.tokens()
    other_email, other_password = factory.user(realm.tenant)
    page = browser.follow(authorize_silently(realm, prompt="select_account"), REDIRECT_URI)
    page = browser.follow(browser.submit(page, button=("choice", "other")), REDIRECT_URI)
    page = browser.follow(browser.submit(page, {"email": other_email}), REDIRECT_URI)
    page = browser.follow(browser.submit(page, {"password": other_password}), REDIRECT_URI)
    reached = browser.follow(browser.submit(page, {"code": phone_code(other_email)}), REDIRECT_URI)
    body = realm.redeem(callback_params(reached)["code"], realm.last_verifier).json()
    assert realm.userinfo(body["access_token"]).json()["email"] == other_email


def test_select_account_with_prompt_none_is_an_error(realm):
    realm.tokens()
    expect_error_redirect(
        authorize_silently(realm, prompt="none select_account"), "invalid_request"
    )
