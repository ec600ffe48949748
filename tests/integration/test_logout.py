"""RP-Initiated Logout 1.0: trusted requests end the session at once, others are confirmed."""

from urllib.parse import urlencode

import pytest

from tests.helpers import callback_params
from tests.integration.realm import Realm
from tests.integration.realm import expect_error_redirect
from tests.integration.test_prompts import authorize_silently

BYE = "https://rp.example/bye"


@pytest.fixture
def realm(server, factory, browser):
    return Realm(server, factory, browser, client_metadata={"post_logout_redirect_uris": [BYE]})


def logout_url(realm, **params):
    return f"{realm.issuer}/logout?{urlencode(params)}"


def test_trusted_logout_redirects_with_state_and_ends_the_session(realm, browser):
    tokens = realm.tokens(scope="openid email")
    response = browser.get(
        logout_url(
            realm, id_token_hint=tokens["id_token"], post_logout_redirect_uri=BYE, state="s 1"
        )
    )
    assert response.status_code == 303
    assert response.headers["Location"].startswith(BYE)
    assert callback_params(response.headers["Location"])["state"] == "s 1"
    expect_error_redirect(authorize_silently(realm, prompt="none"), "login_required")
    assert realm.userinfo(tokens["access_token"]).status_code == 401


def test_offline_access_survives_logout(realm, browser):
    tokens = realm.tokens()
    browser.get(logout_url(realm, id_token_hint=tokens["id_token"]))
    refreshed = realm.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200


def test_unregistered_post_logout_redirect_uri_is_never_followed(realm, browser):
    tokens = realm.tokens()
    response = browser.get(
        logout_url(
            realm,
            id_token_hint=tokens["id_token"],
            post_logout_redirect_uri="https://evil.example/",
        )
    )
    assert response.status_code == 400 and "Location" not in response.headers


def test_logout_without_hint_asks_for_confirmation(realm, browser):
    realm.tokens()
    page = browser.get(
        logout_url(realm, client_id=realm.client_id, post_logout_redirect_uri=BYE, state="x")
    )
    assert page.status_code == 200 and "Sign out?" in page.text
    assert "code=" in authorize_silently(realm, prompt="none").headers["Location"], (
        "not yet signed out"
    )
    done = browser.submit(page, button=("decision", "logout"))
    assert done.status_code == 303 and done.headers["Location"] == f"{BYE}?state=x"
    expect_error_redirect(authorize_silently(realm, prompt="none"), "login_required")


def test_staying_signed_in(realm, browser):
    realm.tokens()
    page = browser.get(logout_url(realm))
    stayed = browser.submit(page, button=("decision", "stay"))
    assert "still signed in" in stayed.text
    assert "code=" in authorize_silently(realm, prompt="none").headers["Location"]


def test_confirmation_needs_the_csrf_token(realm, browser):
    realm.tokens()
    response = browser.http.post(
        f"{realm.issuer}/logout/confirm", data={"decision": "logout"}, allow_redirects=False
    )
    assert response.status_code == 400
    assert "code=" in authorize_silently(realm, prompt="none").headers["Location"]


def test_hint_of_another_client_with_mismatching_client_id(realm, browser, factory):
    tokens = realm.tokens()
    other_id, _ = factory.client(realm.tenant)
    response = browser.get(logout_url(realm, id_token_hint=tokens["id_token"], client_id=other_id))
    assert response.status_code == 400


def test_logout_without_session_just_says_signed_out(realm, browser):
    response = browser.get(logout_url(realm))
    assert response.status_code == 200 and "signed out" in response.text
