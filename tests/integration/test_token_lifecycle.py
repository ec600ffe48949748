"""UserInfo, revocation and introspection (OIDC Core §5.3, RFC 6750, RFC 7009, RFC 7662)."""

import time

import requests
from sqlalchemy import update

from idp.extensions import db
from idp.models import User
from tests.integration.test_token_endpoint import assert_error


def test_userinfo_by_post_form_body(realm):
    tokens = realm.tokens()
    response = requests.post(
        f"{realm.issuer}/userinfo", data={"access_token": tokens["access_token"]}, timeout=10
    )
    assert response.status_code == 200
    assert response.json()["email"] == realm.email


def test_userinfo_without_token_is_401_with_challenge(realm):
    response = requests.get(f"{realm.issuer}/userinfo", timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_userinfo_with_a_garbage_token(realm):
    response = realm.userinfo("not-a-token")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_userinfo_refuses_a_token_sent_twice(realm):
    tokens = realm.tokens()
    response = requests.post(
        f"{realm.issuer}/userinfo",
        data={"access_token": tokens["access_token"]},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    )
    assert response.status_code == 400


def test_userinfo_limits_claims_to_scope(realm):
    tokens = realm.tokens(scope="openid")
    assert set(realm.userinfo(tokens["access_token"]).json()) == {"sub"}


def test_userinfo_refuses_a_user_whose_access_date_has_passed(realm, app):
    """An access expiry set for a later date cuts nothing when it is set; once it has passed,
    the user's tokens stop answering at userinfo (the sign-in says "access expired")."""
    body = realm.tokens()
    assert realm.userinfo(body["access_token"]).status_code == 200
    with app.app_context():
        db.session.execute(
            update(User)
            .where(User.tenant_id == realm.tenant.id, User.email == realm.email)
            .values(access_expires_at=int(time.time()) - 1)
        )
        db.session.commit()
    refused = realm.userinfo(body["access_token"])
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def test_introspection_of_a_live_access_token(realm):
    tokens = realm.tokens()
    body = realm.introspect(tokens["access_token"]).json()
    assert body["active"] is True
    assert body["client_id"] == realm.client_id
    assert body["scope"] == "openid email profile offline_access"
    assert body["iss"] == realm.issuer and body["username"] == realm.email
    assert body["exp"] > body["iat"]


def test_introspection_of_a_refresh_token(realm):
    tokens = realm.tokens()
    body = requests.post(
        f"{realm.issuer}/introspect",
        auth=(realm.client_id, realm.client_secret),
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        timeout=10,
    ).json()
    assert body["active"] is True and body["token_type"] == "refresh_token"


def test_introspection_requires_client_authentication(realm):
    tokens = realm.tokens()
    response = requests.post(
        f"{realm.issuer}/introspect", data={"token": tokens["access_token"]}, timeout=10
    )
    assert_error(response, 401, "invalid_client")
    response = requests.post(
        f"{realm.issuer}/introspect",
        data={"token": tokens["access_token"]},
        auth=(realm.client_id, "wrong"),
        timeout=10,
    )
    assert_error(response, 401, "invalid_client")


def test_another_client_sees_the_token_as_inactive(realm, factory):
    tokens = realm.tokens()
    other = factory.client(realm.tenant)
    body = requests.post(
        f"{realm.issuer}/introspect", auth=other, data={"token": tokens["access_token"]}, timeout=10
    ).json()
    assert body == {"active": False}


def test_revoking_an_access_token(realm):
    tokens = realm.tokens()
    response = requests.post(
        f"{realm.issuer}/revoke",
        auth=(realm.client_id, realm.client_secret),
        data={"token": tokens["access_token"], "token_type_hint": "access_token"},
        timeout=10,
    )
    assert response.status_code == 200
    assert realm.userinfo(tokens["access_token"]).status_code == 401
    assert realm.introspect(tokens["access_token"]).json() == {"active": False}
    refreshed = realm.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200, "revoking an access token leaves its refresh token alone"


def test_revoking_a_refresh_token_revokes_its_family(realm):
    tokens = realm.tokens()
    response = requests.post(
        f"{realm.issuer}/revoke",
        auth=(realm.client_id, realm.client_secret),
        data={"token": tokens["refresh_token"]},
        timeout=10,
    )
    assert response.status_code == 200
    assert realm.userinfo(tokens["access_token"]).status_code == 401
    assert_error(
        realm.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"]),
        400,
        "invalid_grant",
    )


def test_revoking_an_unknown_token_is_200(realm):
    response = requests.post(
        f"{realm.issuer}/revoke",
        auth=(realm.client_id, realm.client_secret),
        data={"token": "nothing"},
        timeout=10,
    )
    assert response.status_code == 200


def test_revocation_with_unsupported_hint(realm):
    response = requests.post(
        f"{realm.issuer}/revoke",
        auth=(realm.client_id, realm.client_secret),
        data={"token": "x", "token_type_hint": "id_token"},
        timeout=10,
    )
    assert_error(response, 400, "unsupported_token_type")
