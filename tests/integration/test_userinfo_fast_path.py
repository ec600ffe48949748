"""Userinfo answers alike whether ``idp.fastpath.BearerUserInfo`` or Flask serves it.

A ``GET`` with a bearer header is answered in front of Flask; the form-body ``POST`` goes
through Flask's view. Both must say the same thing, with the same headers, and a fault on
the fast path must be a clean JSON answer, never a stack trace.
"""

import logging

import requests
from psycopg import OperationalError as PsycopgOperationalError
from sqlalchemy.exc import OperationalError

from idp.extensions import db
from tests.helpers import count_view_calls

HEADERS = (
    "Cache-Control", "Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy",
    "X-Frame-Options", "WWW-Authenticate", "Content-Type",
)  # fmt: skip


def both_paths(realm, access_token):
    """(fast path answer, Flask answer) for the same token."""
    # The fast path serves tenants this process keeps; any request naming one keeps it.
    requests.get(f"{realm.issuer}/.well-known/openid-configuration", timeout=10)
    fast = realm.userinfo(access_token)
    flask = requests.post(
        f"{realm.issuer}/userinfo", data={"access_token": access_token}, timeout=10
    )
    return fast, flask


def assert_same(fast, flask):
    assert fast.status_code == flask.status_code
    assert fast.json() == flask.json()
    for name in HEADERS:
        assert fast.headers.get(name) == flask.headers.get(name), name


def test_a_live_token_gets_the_same_claims_and_headers(realm):
    fast, flask = both_paths(realm, realm.tokens()["access_token"])
    assert fast.status_code == 200 and fast.json()["email"] == realm.email
    assert fast.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in fast.headers["Content-Security-Policy"]
    assert_same(fast, flask)


def test_a_revoked_token_is_refused_alike(realm):
    access_token = realm.tokens()["access_token"]
    revoked = requests.post(
        f"{realm.issuer}/revoke", data={"token": access_token}, timeout=10,
        auth=(realm.client_id, realm.client_secret),
    )  # fmt: skip
    assert revoked.status_code == 200
    fast, flask = both_paths(realm, access_token)
    assert fast.status_code == 401
    assert 'error="invalid_token"' in fast.headers["WWW-Authenticate"]
    assert_same(fast, flask)


def test_a_garbage_token_is_refused_alike(realm):
    fast, flask = both_paths(realm, "not-a-token")
    assert fast.status_code == 401
    assert_same(fast, flask)


def test_a_token_in_the_query_string_is_still_refused(realm):
    """The fast path leaves query strings to Flask, which refuses a token there."""
    access_token = realm.tokens()["access_token"]
    response = requests.get(
        f"{realm.issuer}/userinfo", params={"access_token": access_token}, timeout=10,
        headers={"Authorization": f"Bearer {access_token}"},
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_database_outage_on_the_fast_path_is_a_503(realm, app, monkeypatch):
    access_token = realm.tokens()["access_token"]  # the tenant is now kept by this process

    def refused(*args, **kwargs):
        raise OperationalError("connect", {}, PsycopgOperationalError("connection refused"))

    with app.app_context():
        monkeypatch.setattr(db.engine, "connect", refused)
    response = app.test_client().get(
        f"/{realm.tenant.slug}/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert response.status_code == 503
    assert response.json["error"] == "temporarily_unavailable"


def test_a_bug_on_the_fast_path_is_a_json_500_and_a_log_line(realm, app, monkeypatch, caplog):
    access_token = realm.tokens()["access_token"]

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr("idp.oidc.userinfo.userinfo_answer", broken)
    with caplog.at_level(logging.ERROR, logger="idp.errors"):
        response = app.test_client().get(
            f"/{realm.tenant.slug}/userinfo", headers={"Authorization": f"Bearer {access_token}"}
        )
    assert response.status_code == 500
    assert response.json["error"] == "server_error"
    assert "a bug" not in response.get_data(as_text=True)  # no exception text, no trace
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert any(r.message == "unhandled error" for r in caplog.records)


def test_a_bearer_get_is_answered_in_front_of_flask(realm, app, monkeypatch):
    """The point of the fast path: Flask's view (and its request machinery) is not run."""
    access_token = realm.tokens()["access_token"]
    calls = count_view_calls(app, monkeypatch, "oidc.userinfo")
    assert realm.userinfo(access_token).status_code == 200
    assert calls == []
    posted = requests.post(
        f"{realm.issuer}/userinfo", data={"access_token": access_token}, timeout=10
    )
    assert posted.status_code == 200 and calls == [1]  # a form body goes to Flask's view
