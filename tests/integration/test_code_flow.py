"""Authorization code flow with PKCE, end to end over HTTP (OIDC Core §3.1, RFC 7636)."""

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.integration.realm import REDIRECT_URI
from tests.integration.realm import Realm


def decode_id_token(realm, id_token):
    keys = KeySet.import_key_set(requests.get(f"{realm.issuer}/jwks", timeout=10).json())
    return jwt.decode(id_token, keys, algorithms=["RS256", "ES256"])


def test_code_flow_returns_code_state_and_iss(realm):
    result, query, _ = realm.sign_in()
    assert result["state"] == query["state"]
    assert result["iss"] == realm.issuer
    assert len(result["code"]) >= 32


def test_tokens_and_id_token_claims(realm):
    result, query, verifier = realm.sign_in()
    response = realm.redeem(result["code"], verifier)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert {"access_token", "id_token", "refresh_token", "expires_in"} <= set(body)
    token = decode_id_token(realm, body["id_token"])
    claims = token.claims
    assert token.header["kid"]
    assert claims["iss"] == realm.issuer
    assert claims["aud"] == [realm.client_id]
    assert claims["azp"] == realm.client_id
    assert claims["nonce"] == query["nonce"]
    assert claims["amr"] == ["mfa", "otp", "pwd"]
    assert claims["sid"]
    assert claims["exp"] > claims["iat"]
    assert claims["auth_time"] <= claims["iat"]
    assert "at_hash" in claims
    # Scope claims come from userinfo; the ID token carries nothing that was not requested.
    assert "email" not in claims and "acr" not in claims


def test_access_token_is_rfc9068_jwt_and_userinfo_answers(realm):
    body = realm.tokens()
    token = decode_id_token(realm, body["access_token"])
    assert token.header["typ"] == "at+jwt"
    assert token.claims["client_id"] == realm.client_id
    assert token.claims["jti"]
    info = realm.userinfo(body["access_token"])
    assert info.status_code == 200
    assert info.json()["email"] == realm.email
    assert info.json()["sub"] == decode_id_token(realm, body["id_token"]).claims["sub"]


def test_access_tokens_are_rs256_unless_the_client_chose_es256(server, factory, browser, realm):
    assert decode_id_token(realm, realm.tokens()["access_token"]).header["alg"] == "RS256"
    es256 = Realm(
        server,
        factory,
        browser,
        client_metadata={
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "access_token_signed_response_alg": "ES256",
        },
    )
    body = es256.tokens()
    token = decode_id_token(es256, body["access_token"])  # by the ES256 key of the JWKS
    assert token.header["alg"] == "ES256" and token.header["typ"] == "at+jwt"
    assert decode_id_token(es256, body["id_token"]).header["alg"] == "RS256"  # its own setting
    assert es256.userinfo(body["access_token"]).json()["email"] == es256.email
    issued = es256.token(grant_type="client_credentials").json()["access_token"]
    assert decode_id_token(es256, issued).header["alg"] == "ES256"
    assert es256.introspect(issued).json()["active"] is True


def test_sub_is_stable_and_opaque(realm, browser):
    first = decode_id_token(realm, realm.tokens()["id_token"]).claims["sub"]
    second = decode_id_token(realm, realm.tokens(prompt="login")["id_token"]).claims["sub"]
    assert first == second
    assert realm.email not in first and not first.isdigit()


def test_wrong_password_shows_one_message_and_no_code(realm, browser):
    url, _, _ = realm.authorize_url()
    page = browser.follow(browser.get(url), REDIRECT_URI)
    page = browser.follow(browser.submit(page, {"email": realm.email}), REDIRECT_URI)
    wrong = browser.submit(page, {"password": "not-the-password"})
    assert wrong.status_code == 400
    assert "Invalid email and password combination." in wrong.text
    assert "code=" not in wrong.headers.get("Location", "")


def test_unknown_email_gets_the_same_answer_as_wrong_password(server, factory, browser):
    realm = Realm(server, factory, browser)
    answers = []
    for email in (realm.email, "nobody-here@example.com"):
        fresh = type(browser)(server)
        url, _, _ = realm.authorize_url()
        page = fresh.follow(fresh.get(url), REDIRECT_URI)
        page = fresh.follow(fresh.submit(page, {"email": email}), REDIRECT_URI)
        answer = fresh.submit(page, {"password": "Wrong-Password-1"})
        answers.append((answer.status_code, answer.text.replace(email, "EMAIL")))
    assert answers[0][0] == answers[1][0] == 400
    assert without_csrf(answers[0][1]) == without_csrf(answers[1][1])


def without_csrf(html):
    """The page minus its per-request CSRF token."""
    return "\n".join(line for line in html.splitlines() if "csrf_token" not in line)
