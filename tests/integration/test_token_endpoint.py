"""The token endpoint: codes, PKCE, client authentication, errors (RFC 6749 §3.2, §4.1.3, §5.2;
RFC 7636 §4.6; RFC 9700 §2.1.1, §4.8)."""

import time
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import update

from idp.extensions import db
from idp.models import AuthorizationCode
from tests.helpers import pkce_pair
from tests.integration.realm import REDIRECT_URI
from tests.integration.realm import Realm


def assert_error(response, status, error):
    assert response.status_code == status, response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"] == error
    return response.json()


def test_code_is_single_use_and_reuse_revokes_its_tokens(realm):
    result, _, verifier = realm.sign_in()
    first = realm.redeem(result["code"], verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert realm.userinfo(tokens["access_token"]).status_code == 200
    assert_error(realm.redeem(result["code"], verifier), 400, "invalid_grant")
    assert realm.userinfo(tokens["access_token"]).status_code == 401
    refreshed = realm.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert_error(refreshed, 400, "invalid_grant")
    assert realm.introspect(tokens["access_token"]).json() == {"active": False}


def test_twenty_concurrent_redemptions_yield_one_token_response(realm):
    result, _, verifier = realm.sign_in()
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: realm.redeem(result["code"], verifier), range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code != 200)
    # The other nineteen were the code used again: what it issued is revoked (RFC 6749 §4.1.2).
    (winner,) = [r.json() for r in responses if r.status_code == 200]
    assert realm.userinfo(winner["access_token"]).status_code == 401
    assert realm.introspect(winner["access_token"]).json() == {"active": False}


def test_expired_code_is_refused(realm, app):
    result, _, verifier = realm.sign_in()
    with app.app_context():
        db.session.execute(update(AuthorizationCode).values(expires_at=int(time.time()) - 1))
        db.session.commit()
    assert_error(realm.redeem(result["code"], verifier), 400, "invalid_grant")


def test_code_lifetime_is_sixty_seconds(realm, app):
    before = int(time.time())
    realm.sign_in()
    with app.app_context():
        row = db.session.execute(
            db.select(AuthorizationCode).order_by(AuthorizationCode.id.desc())
        ).scalar()
        assert before + 60 <= row.expires_at <= int(time.time()) + 60


def test_code_is_bound_to_the_client(server, factory, browser, realm):
    result, _, verifier = realm.sign_in()
    other_id, other_secret = factory.client(realm.tenant)
    response = requests.post(
        f"{realm.issuer}/token",
        auth=(other_id, other_secret),
        timeout=10,
        data={
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
    )
    assert_error(response, 400, "invalid_grant")


def test_code_is_bound_to_the_redirect_uri(realm):
    result, _, verifier = realm.sign_in()
    response = realm.token(
        grant_type="authorization_code",
        code=result["code"],
        redirect_uri="https://rp.example/other",
        code_verifier=verifier,
    )
    assert_error(response, 400, "invalid_grant")


def test_wrong_code_verifier_is_refused_and_spends_the_code(realm):
    result, _, verifier = realm.sign_in()
    wrong, _ = pkce_pair()
    assert_error(realm.redeem(result["code"], wrong), 400, "invalid_grant")
    # A failed redemption spends the code: the verifier cannot be guessed at, one try a code.
    assert_error(realm.redeem(result["code"], verifier), 400, "invalid_grant")


def test_missing_code_verifier_is_refused(realm):
    result, _, _ = realm.sign_in()
    response = realm.token(
        grant_type="authorization_code", code=result["code"], redirect_uri=REDIRECT_URI
    )
    assert_error(response, 400, "invalid_request")


def test_no_pkce_downgrade(realm):
    """RFC 9700 §4.8: a code_verifier for a code issued without a challenge is refused."""
    result, _, _ = realm.sign_in(code_challenge=None, code_challenge_method=None)
    verifier, _ = pkce_pair()
    assert_error(realm.redeem(result["code"], verifier), 400, "invalid_request")


def test_confidential_client_without_pkce_still_works(realm):
    result, _, _ = realm.sign_in(code_challenge=None, code_challenge_method=None)
    response = realm.token(
        grant_type="authorization_code", code=result["code"], redirect_uri=REDIRECT_URI
    )
    assert response.status_code == 200


def test_public_client_with_pkce(server, factory, browser):
    realm = Realm(server, factory, browser, client_metadata={"token_endpoint_auth_method": "none"})
    result, _, verifier = realm.sign_in()
    response = requests.post(
        f"{realm.issuer}/token",
        timeout=10,
        data={
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": realm.client_id,
        },
    )
    assert response.status_code == 200, response.text


def test_bad_client_secret_is_401_with_www_authenticate(realm):
    response = requests.post(
        f"{realm.issuer}/token",
        auth=(realm.client_id, "wrong"),
        timeout=10,
        data={"grant_type": "client_credentials"},
    )
    assert_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_unknown_client_is_401(realm):
    response = requests.post(
        f"{realm.issuer}/token",
        auth=("nobody", "x"),
        timeout=10,
        data={"grant_type": "client_credentials"},
    )
    assert_error(response, 401, "invalid_client")


def test_two_authentication_methods_at_once_are_refused(realm):
    response = requests.post(
        f"{realm.issuer}/token",
        auth=(realm.client_id, realm.client_secret),
        timeout=10,
        data={
            "grant_type": "client_credentials",
            "client_id": realm.client_id,
            "client_secret": realm.client_secret,
        },
    )
    assert_error(response, 400, "invalid_request")


def test_client_uses_only_its_registered_method(server, factory, browser):
    realm = Realm(
        server,
        factory,
        browser,
        client_metadata={
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["client_credentials"],
            "redirect_uris": [],
        },
    )
    basic = requests.post(
        f"{realm.issuer}/token",
        auth=(realm.client_id, realm.client_secret),
        data={"grant_type": "client_credentials"},
        timeout=10,
    )
    assert_error(basic, 401, "invalid_client")
    post = requests.post(
        f"{realm.issuer}/token",
        timeout=10,
        data={
            "grant_type": "client_credentials",
            "client_id": realm.client_id,
            "client_secret": realm.client_secret,
        },
    )
    assert post.status_code == 200


def test_repeated_parameter_is_refused(realm):
    response = requests.post(
        f"{realm.issuer}/token",
        auth=(realm.client_id, realm.client_secret),
        data=[("grant_type", "authorization_code"), ("code", "a"), ("code", "b")],
        timeout=10,
    )
    assert_error(response, 400, "invalid_request")


def test_unsupported_grant_type(realm):
    assert_error(
        realm.token(grant_type="password", username="u", password="p"),
        400,
        "unsupported_grant_type",
    )


def test_client_not_allowed_the_grant_type(realm):
    assert_error(realm.token(grant_type="client_credentials"), 400, "unauthorized_client")


def test_get_is_not_allowed(realm):
    response = requests.get(f"{realm.issuer}/token", timeout=10)
    assert response.status_code == 405
    assert response.headers["Content-Type"].startswith("application/json")


def test_client_credentials(server, factory, browser):
    realm = Realm(
        server,
        factory,
        browser,
        client_metadata={
            "grant_types": ["client_credentials"],
            "redirect_uris": [],
            "scope": "profile",
        },
    )
    response = realm.token(grant_type="client_credentials", scope="profile")
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body and "id_token" not in body
    introspection = realm.introspect(body["access_token"]).json()
    assert introspection["active"] is True and introspection["sub"] == realm.client_id
    assert realm.userinfo(body["access_token"]).status_code == 401


def test_public_client_cannot_use_client_credentials(factory, realm):
    from idp.errors import ValidationFailed

    try:
        factory.client(
            realm.tenant,
            token_endpoint_auth_method="none",
            grant_types=["client_credentials"],
            redirect_uris=[],
        )
    except ValidationFailed as exc:
        assert exc.error == "invalid_client_metadata"
    else:
        raise AssertionError("a public client was given client_credentials")
