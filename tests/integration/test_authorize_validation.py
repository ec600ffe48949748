"""The authorization request is validated before anyone is asked to sign in (RFC 6749 §3.1,
§4.1.2.1; RFC 9700 §2.1, §4.1; OIDC Core §3.1.2)."""

import pytest

from tests.helpers import callback_params
from tests.helpers import parse_forms
from tests.integration.realm import REDIRECT_URI
from tests.integration.realm import expect_error_page
from tests.integration.realm import expect_error_redirect


def test_unknown_client_gets_an_error_page_not_a_redirect(realm, browser):
    url, _, _ = realm.authorize_url(client_id="no-such-client")
    text = expect_error_page(browser.get(url))
    assert "not known" in text


def test_missing_redirect_uri_is_refused_without_fallback(realm, browser):
    """Authlib would fall back to the first registered URI; OIDC requires the parameter."""
    url, _, _ = realm.authorize_url(redirect_uri=None)
    expect_error_page(browser.get(url))


@pytest.mark.parametrize(
    "uri",
    [
        "https://rp.example/cb/",
        "https://rp.example/cb?x=1",
        "https://RP.example/cb",
        "https://rp.example/c",
        "https://rp.example/cb/../cb",
        "https://evil.example/cb",
        "http://rp.example/cb",
    ],
)
def test_redirect_uri_must_match_exactly(realm, browser, uri):
    url, _, _ = realm.authorize_url(redirect_uri=uri)
    text = expect_error_page(browser.get(url))
    assert "not registered" in text


def test_repeated_parameter_is_refused(realm, browser):
    url, _, _ = realm.authorize_url()
    params = expect_error_redirect(browser.get(url + "&state=second"), "invalid_request")
    assert params["iss"] == realm.issuer


def test_repeated_client_id_is_an_error_page(realm, browser):
    url, _, _ = realm.authorize_url()
    expect_error_page(browser.get(url + f"&client_id={realm.client_id}"))


@pytest.mark.parametrize(
    "param, error",
    [("request", "request_not_supported"), ("request_uri", "request_uri_not_supported")],
)
def test_request_objects_are_not_supported(realm, browser, param, error):
    url, query, _ = realm.authorize_url(**{param: "eyJhbGciOiJub25lIn0.e30."})
    params = expect_error_redirect(browser.get(url), error)
    assert params["state"] == query["state"]
    assert params["iss"] == realm.issuer


def test_pkce_plain_is_refused(realm, browser):
    url, _, _ = realm.authorize_url(code_challenge_method="plain")
    expect_error_redirect(browser.get(url), "invalid_request")


def test_pkce_challenge_without_method_is_refused(realm, browser):
    """Authlib defaults a missing method to ``plain``; we accept S256 only."""
    url, _, _ = realm.authorize_url(code_challenge_method=None)
    expect_error_redirect(browser.get(url), "invalid_request")


def test_public_client_must_use_pkce(server, factory, browser):
    from tests.integration.realm import Realm

    realm = Realm(server, factory, browser, client_metadata={"token_endpoint_auth_method": "none"})
    url, _, _ = realm.authorize_url(code_challenge=None, code_challenge_method=None)
    params = expect_error_redirect(browser.get(url), "invalid_request")
    assert "PKCE" in params["error_description"]


def test_unsupported_response_type_goes_back_with_state_and_iss(realm, browser):
    url, query, _ = realm.authorize_url(response_type="token")
    params = expect_error_redirect(browser.get(url), "unsupported_response_type")
    assert params["state"] == query["state"] and params["iss"] == realm.issuer


def test_unknown_parameters_are_ignored(realm):
    result, _, _ = realm.sign_in(foo="bar", display="page")
    assert "code" in result


def test_unknown_scopes_are_ignored(realm):
    body = realm.tokens(scope="openid email weird:scope")
    assert body["scope"] == "openid email"


def test_state_comes_back_exactly(realm):
    state = "a b+c/d=e&f%g~ü"
    result, _, _ = realm.sign_in(state=state)
    assert result["state"] == state


def test_form_post_response_mode_keeps_state_and_needs_no_inline_script(realm, browser):
    state = 'x"><script>alert(1)</script>&y=1'
    url, _, _ = realm.authorize_url(response_mode="form_post", state=state)
    page = browser.sign_in(browser.get(url), realm.email, realm.password, REDIRECT_URI)
    assert page.status_code == 200
    form = parse_forms(page.text)[0]
    assert form["action"] == REDIRECT_URI and form["method"] == "post"
    assert form["inputs"]["state"] == state
    assert form["inputs"]["iss"] == realm.issuer and form["inputs"]["code"]
    assert "<script>" not in page.text and "onload" not in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "form-action" not in csp, "form_post and sign-in redirect chains lead off-site"


def test_fragment_response_mode(realm, browser):
    url, query, _ = realm.authorize_url(response_mode="fragment")
    reached = browser.sign_in(browser.get(url), realm.email, realm.password, REDIRECT_URI)
    fragment = reached.split("#", 1)[1]
    params = callback_params("https://x/?" + fragment)
    assert params["state"] == query["state"] and params["code"]


def test_unsupported_response_mode_is_refused(realm, browser):
    url, _, _ = realm.authorize_url(response_mode="web_message")
    expect_error_redirect(browser.get(url), "invalid_request")


def test_post_authorization_request_works(realm, browser):
    _, query, _ = realm.authorize_url()
    response = browser.http.post(f"{realm.issuer}/authorize", data=query, allow_redirects=False)
    assert response.status_code == 303
    assert "/login" in response.headers["Location"]


def test_login_hint_prefills_the_email(realm, browser):
    url, _, _ = realm.authorize_url(login_hint="someone@example.com")
    page = browser.follow(browser.get(url), REDIRECT_URI)
    assert parse_forms(page.text)[0]["inputs"]["email"] == "someone@example.com"


def test_invalid_claims_parameter_is_refused(realm, browser):
    url, _, _ = realm.authorize_url(claims="not json")
    expect_error_redirect(browser.get(url), "invalid_request")


def test_invalid_max_age_is_refused(realm, browser):
    url, _, _ = realm.authorize_url(max_age="-1")
    expect_error_redirect(browser.get(url), "invalid_request")
