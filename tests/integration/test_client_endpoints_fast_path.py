"""Token, introspection and revocation answer alike whether ``idp.fastpath.ClientEndpoints``
or Flask's views serve them.

A client's ``POST`` to these endpoints is served in front of Flask, by the same Authlib
server; Flask alone (the app without its WSGI layers) must say the same thing with the same
headers, and a fault on the fast path must be a clean JSON answer, never a stack trace.
"""

import base64
import functools
import logging
import secrets
import time

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import RSAKey
from psycopg import OperationalError as PsycopgOperationalError
from sqlalchemy.exc import OperationalError
from werkzeug.test import Client

from tests.helpers import count_view_calls

HEADERS = (
    "Cache-Control", "Pragma", "Content-Type", "WWW-Authenticate", "Content-Security-Policy",
    "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options",
)  # fmt: skip
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Paths:
    """One tenant's client-credentials client, called through the app and through Flask only."""

    def __init__(self, app, factory, **metadata):
        self.tenant = factory.tenant()
        metadata.setdefault("grant_types", ["client_credentials"])
        self.client_id, self.secret = factory.client(self.tenant, **metadata)
        self.public_url = app.config["PUBLIC_URL"]  # what a client calls (tenancy.public_url_of)
        self.served = app.test_client()  # idp.fastpath, then Flask
        self.flask_only = Client(functools.partial(Flask.wsgi_app, app))
        # The fast path serves tenants this process keeps; any request naming one keeps it.
        assert self.served.get(self.url("jwks")).status_code == 200

    def url(self, name):
        return f"/{self.tenant.slug}/{name}"

    def basic(self, secret=None):
        pair = f"{self.client_id}:{secret or self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}

    def both(self, name, data, headers=None):
        """(fast path answer, Flask answer) to the same request."""
        headers = self.basic() if headers is None else headers
        fast = self.served.post(self.url(name), data=data, headers=headers)
        flask = self.flask_only.post(self.url(name), data=data, headers=headers)
        return fast, flask

    def token(self):
        response = self.served.post(
            self.url("token"), data={"grant_type": "client_credentials"}, headers=self.basic()
        )
        assert response.status_code == 200, response.text
        return response.json["access_token"]


def assert_same_headers(fast, flask):
    for name in HEADERS:
        assert fast.headers.get(name) == flask.headers.get(name), name


@pytest.fixture
def paths(app, factory):
    return Paths(app, factory)


def test_a_token_gets_the_same_answer_and_headers(paths):
    fast, flask = paths.both("token", {"grant_type": "client_credentials", "scope": "openid"})
    assert fast.status_code == flask.status_code == 200
    members = {"access_token", "token_type", "expires_in", "scope"}
    assert fast.json.keys() == flask.json.keys() == members
    for member in ("token_type", "expires_in", "scope"):
        assert fast.json[member] == flask.json[member], member
    assert fast.headers["Cache-Control"] == "no-store" and fast.headers["Pragma"] == "no-cache"
    assert "frame-ancestors 'none'" in fast.headers["Content-Security-Policy"]
    assert_same_headers(fast, flask)


@pytest.mark.parametrize(
    ("data", "headers", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, "wrong secret", 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, "none", 401, "invalid_client"),
        ({"grant_type": "password", "username": "a", "password": "b"}, None, 400,
         "unsupported_grant_type"),
        ({"grant_type": ["client_credentials", "client_credentials"]}, None, 400,
         "invalid_request"),
        ({}, None, 400, "unsupported_grant_type"),
    ],
)  # fmt: skip
def test_a_refused_token_request_is_refused_alike(paths, data, headers, status, error):
    chosen = {"wrong secret": paths.basic("not-the-secret"), "none": {}}.get(headers)
    fast, flask = paths.both("token", data, chosen)
    assert fast.status_code == status, fast.json
    assert fast.json["error"] == error
    assert fast.json == flask.json and flask.status_code == status
    assert_same_headers(fast, flask)


def test_introspection_and_revocation_answer_alike(paths):
    access_token = paths.token()
    fast, flask = paths.both("introspect", {"token": access_token})
    assert fast.status_code == 200 and fast.json["active"] is True
    assert fast.json == flask.json  # the same token: the same members
    assert_same_headers(fast, flask)
    other = paths.token()
    revoked_fast, revoked_flask = paths.both("revoke", {"token": access_token})
    assert revoked_fast.status_code == revoked_flask.status_code == 200
    assert_same_headers(revoked_fast, revoked_flask)
    fast, flask = paths.both("introspect", {"token": other, "token_type_hint": "refresh"})
    assert fast.status_code == flask.status_code == 400
    assert fast.json["error"] == "unsupported_token_type" and fast.json == flask.json
    fast, flask = paths.both("introspect", {"token": access_token})
    assert fast.json == flask.json == {"active": False}
    assert paths.both("introspect", {"token": other})[0].json["active"] is True


def test_private_key_jwt_may_name_the_endpoint_it_calls(app, factory):
    """RFC 7523 §3: the audience may be the endpoint's own URL, on either path."""
    signer = RSAKey.generate_key(2048, parameters={"kid": "rp-key-1"})
    paths = Paths(
        app, factory, token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [signer.as_dict(private=False)]},
    )  # fmt: skip
    access = paths.served.post(
        paths.url("token"), headers={},
        data={"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
              "client_assertion": _assertion(paths, signer, "/token")},
    )  # fmt: skip
    assert access.status_code == 200, access.json
    for served in (paths.served, paths.flask_only):
        answer = served.post(
            paths.url("introspect"), headers={},
            data={"token": access.json["access_token"], "client_assertion_type": ASSERTION_TYPE,
                  "client_assertion": _assertion(paths, signer, "/introspect")},
        )  # fmt: skip
        assert answer.status_code == 200 and answer.json["active"] is True, answer.json
    elsewhere = paths.served.post(
        paths.url("introspect"), headers={},
        data={"token": access.json["access_token"], "client_assertion_type": ASSERTION_TYPE,
              "client_assertion": _assertion(paths, signer, "/revoke")},
    )  # fmt: skip
    assert elsewhere.status_code == 400 and elsewhere.json["error"] == "invalid_client"


def _assertion(paths, key, endpoint):
    now = int(time.time())
    claims = {
        "iss": paths.client_id, "sub": paths.client_id, "jti": secrets.token_urlsafe(12),
        "aud": paths.public_url + paths.url(endpoint.lstrip("/")), "iat": now, "exp": now + 60,
    }  # fmt: skip
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key, algorithms=["RS256"])


def test_a_query_string_goes_to_flask(paths, app, monkeypatch):
    """The point of the fast path is that Flask's view is not run; a query string (which
    Flask's ``request.values`` merges into the parameters) is left to it."""
    calls = count_view_calls(app, monkeypatch, "oidc.token")
    paths.token()
    assert calls == []
    answer = paths.served.post(
        paths.url("token") + "?grant_type=client_credentials", headers=paths.basic()
    )
    assert calls == [1], answer.json


def test_a_database_outage_on_the_fast_path_is_a_503(paths, monkeypatch):
    def refused(*args, **kwargs):
        raise OperationalError("connect", {}, PsycopgOperationalError("connection refused"))

    monkeypatch.setattr("idp.services.tokens.save_token", refused)  # the token's INSERT
    answer = paths.served.post(
        paths.url("token"), data={"grant_type": "client_credentials"}, headers=paths.basic()
    )
    assert answer.status_code == 503
    assert answer.json["error"] == "temporarily_unavailable"


def test_a_bug_on_the_fast_path_is_a_json_500_and_a_log_line(paths, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr("idp.oidc.server.find_presented_token", broken)
    with caplog.at_level(logging.ERROR, logger="idp.errors"):
        answer = paths.served.post(
            paths.url("introspect"), data={"token": "x"}, headers=paths.basic()
        )
    assert answer.status_code == 500
    assert answer.json["error"] == "server_error"
    assert "a bug" not in answer.get_data(as_text=True)  # no exception text, no trace
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert any(r.message == "unhandled error" for r in caplog.records)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"grant_type=client%5Fcredentials&scope=openid+profile", 200),  # %-escapes, + as space
        (b"grant_type=client_credentials&scope=", 200),  # a blank value is a value
        (b"grant_type=client_credentials&scope=openid&&", 200),
        (b"grant_type=client_credentials&scope=\xff", 400),  # not UTF-8: an empty form
        (b"grant_type=client_credentials&grant_type=", 400),  # repeated, even blank
    ],
)
def test_the_body_is_read_as_flask_reads_a_form(paths, app, monkeypatch, body, status):
    """The fast path parses the body itself (``fastpath._form``): Flask's view must read
    the same parameters from it, and it must not be the one answering."""
    calls = count_view_calls(app, monkeypatch, "oidc.token")
    headers = {**paths.basic(), "Content-Type": "application/x-www-form-urlencoded"}
    fast = paths.served.post(paths.url("token"), data=body, headers=headers)
    assert calls == []
    flask = paths.flask_only.post(paths.url("token"), data=body, headers=headers)
    assert fast.status_code == flask.status_code == status, fast.json
    assert fast.json.get("scope") == flask.json.get("scope")
    assert fast.json.get("error") == flask.json.get("error")
    assert_same_headers(fast, flask)


@pytest.mark.parametrize(
    ("content_type", "served_by_flask"),
    [
        ("application/x-www-form-urlencoded; charset=UTF-8", False),
        ("Application/X-WWW-Form-Urlencoded", False),
        ("application/json", True),
        ("multipart/form-data; boundary=x", True),
        (None, True),
    ],
)
def test_only_a_urlencoded_form_is_served_in_front_of_flask(
    paths, app, monkeypatch, content_type, served_by_flask
):
    """Flask reads multipart forms too, and any other body as no parameters at all."""
    calls = count_view_calls(app, monkeypatch, "oidc.introspect")
    token = paths.token()
    body = f"token={token}"
    if content_type and content_type.startswith("multipart"):
        part = 'Content-Disposition: form-data; name="token"'
        body = f"--x\r\n{part}\r\n\r\n{token}\r\n--x--\r\n"
    headers = {**paths.basic(), **({"Content-Type": content_type} if content_type else {})}
    answer = paths.served.post(paths.url("introspect"), data=body, headers=headers)
    assert calls == ([1] if served_by_flask else [])
    parsed = content_type is not None and "json" not in content_type
    assert answer.status_code == (200 if parsed else 400), answer.json
    assert answer.json.get("active") is (True if parsed else None)
