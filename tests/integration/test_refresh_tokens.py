"""Refresh tokens: rotation, reuse detection, scope, lifetimes (RFC 6749 §6, RFC 9700 §4.14)."""

import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import update

from idp.extensions import db
from idp.models import Token
from tests.integration.test_token_endpoint import assert_error


def refresh(realm, token, **extra):
    return realm.token(grant_type="refresh_token", refresh_token=token, **extra)


def test_refresh_rotates_the_refresh_token(realm):
    tokens = realm.tokens()
    response = refresh(realm, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    fresh = response.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert fresh["access_token"] != tokens["access_token"]
    assert realm.userinfo(fresh["access_token"]).status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_family(realm, app, monkeypatch):
    monkeypatch.setitem(app.config, "REFRESH_REUSE_LEEWAY", 0)
    tokens = realm.tokens()
    fresh = refresh(realm, tokens["refresh_token"]).json()
    assert_error(refresh(realm, tokens["refresh_token"]), 400, "invalid_grant")
    assert_error(refresh(realm, fresh["refresh_token"]), 400, "invalid_grant")
    assert realm.userinfo(fresh["access_token"]).status_code == 401
    assert realm.userinfo(tokens["access_token"]).status_code == 401


def test_concurrent_refreshes_yield_one_new_token(realm):
    tokens = realm.tokens()
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: refresh(realm, tokens["refresh_token"]), range(8)))
    winners = [r.json() for r in responses if r.status_code == 200]
    assert len(winners) == 1, [r.status_code for r in responses]


def test_scope_can_narrow_but_never_widen(realm):
    tokens = realm.tokens(scope="openid email offline_access")
    assert_error(
        refresh(realm, tokens["refresh_token"], scope="openid email profile offline_access"),
        400,
        "invalid_scope",
    )
    narrowed = refresh(realm, tokens["refresh_token"], scope="openid offline_access")
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "openid offline_access"


def test_refresh_token_is_bound_to_its_client(realm, factory):
    import requests

    tokens = realm.tokens()
    other_id, other_secret = factory.client(realm.tenant)
    response = requests.post(
        f"{realm.issuer}/token",
        auth=(other_id, other_secret),
        timeout=10,
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert_error(response, 400, "invalid_grant")


def test_idle_lifetime(realm, app):
    tokens = realm.tokens()
    with app.app_context():
        db.session.execute(
            update(Token)
            .where(Token.client_id == realm.client_id)
            .values(refresh_expires_at=int(time.time()) - 1)
        )
        db.session.commit()
    assert_error(refresh(realm, tokens["refresh_token"]), 400, "invalid_grant")


def test_absolute_lifetime_survives_rotation(realm, app):
    tokens = realm.tokens()
    fresh = refresh(realm, tokens["refresh_token"]).json()
    with app.app_context():
        rows = (
            db.session.execute(db.select(Token).where(Token.client_id == realm.client_id))
            .scalars()
            .all()
        )
        assert len({row.family_expires_at for row in rows}) == 1, (
            "rotation must not extend the family"
        )
        db.session.execute(
            update(Token)
            .where(Token.client_id == realm.client_id)
            .values(family_expires_at=int(time.time()) - 1)
        )
        db.session.commit()
    assert_error(refresh(realm, fresh["refresh_token"]), 400, "invalid_grant")


def test_disabled_user_cannot_refresh(realm, app):
    from idp.models import User

    tokens = realm.tokens()
    with app.app_context():
        db.session.execute(update(User).where(User.email == realm.email).values(state="disabled"))
        db.session.commit()
    assert_error(refresh(realm, tokens["refresh_token"]), 400, "invalid_grant")


def test_a_racing_refresh_within_the_leeway_is_refused_but_keeps_the_family(realm, app):
    """Two tabs (or two nodes) refreshing at once: the loser is refused, the winner lives on."""
    assert app.config["REFRESH_REUSE_LEEWAY"] > 0
    tokens = realm.tokens()
    fresh = refresh(realm, tokens["refresh_token"]).json()
    assert_error(refresh(realm, tokens["refresh_token"]), 400, "invalid_grant")
    assert refresh(realm, fresh["refresh_token"]).status_code == 200
