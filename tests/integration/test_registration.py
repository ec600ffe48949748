"""Dynamic client registration (RFC 7591) and client management (RFC 7592), over HTTP."""

import json
import time

import pytest
import requests

from idp.extensions import db
from idp.services import registration_tokens
from idp.services import tenants
from tests.helpers import callback_params
from tests.integration.realm import REDIRECT_URI
from tests.integration.realm import Realm

METADATA = {
    "client_name": "Registered RP",
    "redirect_uris": [REDIRECT_URI],
    "grant_types": ["authorization_code", "refresh_token"],
}


def initial_token(app, tenant, expired=False):
    """An initial access token issued through the service, as the CLI would."""
    with app.app_context():
        token, row = registration_tokens.issue_initial_access_token(
            tenants.query_tenant(tenant.slug), expires_in=3600
        )
        if expired:
            row.expires_at = int(time.time()) - 1
            db.session.commit()
    return token


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def register(issuer, token, metadata=None, **kwargs):
    """POST client metadata to the registration endpoint."""
    headers = bearer(token) if token else {}
    body = METADATA if metadata is None else metadata
    return requests.post(f"{issuer}/register", json=body, headers=headers, timeout=10, **kwargs)


def manage(method, info, token=None, **kwargs):
    """Call a client's configuration endpoint with its registration access token."""
    token = info["registration_access_token"] if token is None else token
    return requests.request(
        method, info["registration_client_uri"], headers=bearer(token), timeout=10, **kwargs
    )


def update_body(info, **changes):
    """The metadata a client sends back in an RFC 7592 §2.2 update."""
    body = {
        k: v
        for k, v in info.items()
        if k
        not in (
            "registration_access_token",
            "registration_client_uri",
            "client_secret_expires_at",
            "client_id_issued_at",
            "client_secret",
        )
    }
    body.update(changes)
    return body


@pytest.fixture
def tenant(factory):
    return factory.tenant()


@pytest.fixture
def issuer(server, tenant):
    return server.issuer(tenant)


@pytest.fixture
def registered(app, tenant, issuer):
    """A client registered over HTTP; returns the 201 response body."""
    response = register(issuer, initial_token(app, tenant))
    assert response.status_code == 201, response.text
    return response.json()


# RFC 7591 §3: the initial access token ------------------------------------------------


def test_registration_without_token_is_refused(issuer):
    response = register(issuer, None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"] == "invalid_token"


@pytest.mark.parametrize("case", ["unknown", "expired", "other_tenant"])
def test_registration_with_bad_token_is_refused(app, factory, tenant, issuer, case):
    token = {
        "unknown": lambda: "not-a-token",
        "expired": lambda: initial_token(app, tenant, expired=True),
        "other_tenant": lambda: initial_token(app, factory.tenant()),
    }[case]()
    response = register(issuer, token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json()["error"] == "invalid_token"


def test_registration_body_must_be_json(app, tenant, issuer):
    response = requests.post(
        f"{issuer}/register",
        data={"client_name": "x"},
        timeout=10,
        headers=bearer(initial_token(app, tenant)),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


# RFC 7591 §3.2.1: the registration response -------------------------------------------


def test_registration_returns_secret_and_management_credentials(issuer, registered):
    assert registered["client_name"] == "Registered RP"
    assert registered["redirect_uris"] == [REDIRECT_URI]
    assert registered["token_endpoint_auth_method"] == "client_secret_basic"
    assert len(registered["client_secret"]) >= 43  # >= 32 random bytes, base64url
    assert registered["client_secret_expires_at"] == 0
    assert len(registered["registration_access_token"]) >= 43
    assert registered["registration_client_uri"] == f"{issuer}/register/{registered['client_id']}"


def test_registration_response_is_no_store_and_public_client_gets_no_secret(app, tenant, issuer):
    metadata = {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}
    response = register(issuer, initial_token(app, tenant), metadata)
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert "client_secret" not in body
    assert body["client_name"] == "Unnamed client"
    assert body["registration_access_token"]


def test_registered_client_is_third_party_and_runs_the_code_flow(app, server, factory, browser):
    realm = Realm(server, factory, browser)
    info = register(realm.issuer, initial_token(app, realm.tenant)).json()
    realm.client_id, realm.client_secret = info["client_id"], info["client_secret"]
    url, query, verifier = realm.authorize_url()
    page = browser.sign_in(browser.get(url), realm.email, realm.password, REDIRECT_URI)
    assert not isinstance(page, str), "a third-party client must get a consent page"
    assert "Registered RP wants to access your account" in page.text
    reached = browser.follow(browser.submit(page, button=("decision", "allow")), REDIRECT_URI)
    assert isinstance(reached, str), browser.last.text[:500]
    result = callback_params(reached)
    assert result["state"] == query["state"]
    tokens = realm.redeem(result["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    assert {"access_token", "id_token"} <= set(tokens.json())


# RFC 7591 §3.2.2: metadata errors -----------------------------------------------------


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"redirect_uris": ["https://*.rp.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["http://rp.example/cb"]}, "invalid_redirect_uri"),
        ({"grant_types": ["authorization_code", "password"]}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({"client_name": ""}, "invalid_client_metadata"),
        ({"access_token_signed_response_alg": "HS256"}, "invalid_client_metadata"),
    ],
    ids=[
        "wildcard",
        "http-non-loopback",
        "unknown-grant",
        "pkjwt-without-jwks",
        "empty-name",
        "access-token-alg",
    ],
)
def test_metadata_errors(app, tenant, issuer, change, error):
    response = register(issuer, initial_token(app, tenant), {**METADATA, **change})
    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json()["error"] == error
    assert response.json()["error_description"]


# RFC 7592: read, update, delete -------------------------------------------------------


def test_read_returns_current_metadata_without_secret(registered):
    response = manage("GET", registered)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["client_id"] == registered["client_id"]
    assert body["redirect_uris"] == [REDIRECT_URI]
    assert body["registration_access_token"] == registered["registration_access_token"]
    assert "client_secret" not in body


def test_update_replaces_metadata(registered):
    new_uri = "https://rp.example/other"
    body = update_body(
        registered,
        client_name="Renamed",
        redirect_uris=[new_uri],
        client_secret=registered["client_secret"],
    )
    response = manage("PUT", registered, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["redirect_uris"] == [new_uri]
    read = manage("GET", registered).json()
    assert read["client_name"] == "Renamed"
    assert read["redirect_uris"] == [new_uri]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"client_id": "someone-else"}, "invalid_request"),
        ({"client_secret": "not-the-secret"}, "invalid_request"),
        ({"registration_access_token": "x"}, "invalid_request"),
        ({"redirect_uris": ["https://*.rp.example/cb"]}, "invalid_redirect_uri"),
        ({"token_endpoint_auth_method": "none"}, "invalid_client_metadata"),
    ],
    ids=["other-client-id", "wrong-secret", "server-field", "wildcard", "to-public"],
)
def test_update_errors_leave_the_client_unchanged(registered, changes, error):
    response = manage("PUT", registered, json=update_body(registered, **changes))
    assert response.status_code == 400
    assert response.json()["error"] == error
    read = manage("GET", registered).json()
    assert read["redirect_uris"] == [REDIRECT_URI]
    assert read["token_endpoint_auth_method"] == "client_secret_basic"


def test_public_client_cannot_become_confidential_by_omission(app, tenant, issuer):
    metadata = {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}
    info = register(issuer, initial_token(app, tenant), metadata).json()
    body = update_body(info)
    del body["token_endpoint_auth_method"]  # omitted fields take their defaults (RFC 7592 §2.2)
    response = manage("PUT", info, json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def test_delete_removes_client_and_revokes_its_tokens(app, server, factory, browser):
    realm = Realm(server, factory, browser)
    info = register(realm.issuer, initial_token(app, realm.tenant)).json()
    realm.client_id, realm.client_secret = info["client_id"], info["client_secret"]
    url, _, verifier = realm.authorize_url()
    page = browser.sign_in(browser.get(url), realm.email, realm.password, REDIRECT_URI)
    reached = browser.follow(browser.submit(page, button=("decision", "allow")), REDIRECT_URI)
    access_token = realm.redeem(callback_params(reached)["code"], verifier).json()["access_token"]
    assert realm.userinfo(access_token).status_code == 200

    response = manage("DELETE", info)
    assert response.status_code == 204
    assert manage("GET", info).status_code == 401
    assert realm.userinfo(access_token).status_code == 401
    refused = realm.token(grant_type="client_credentials")
    assert refused.status_code == 401


def test_management_refuses_missing_or_wrong_token(registered):
    response = requests.get(registered["registration_client_uri"], timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    response = manage("GET", registered, token="not-the-token")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_token_of_one_client_cannot_manage_another(app, tenant, issuer, registered):
    other = register(issuer, initial_token(app, tenant)).json()
    with_mine = {**other, "registration_access_token": registered["registration_access_token"]}
    assert manage("GET", with_mine).status_code == 401
    hijack = update_body(other, client_name="Hijacked")
    assert manage("PUT", with_mine, json=hijack).status_code == 401
    assert manage("DELETE", with_mine).status_code == 401
    assert manage("GET", other).json()["client_name"] == "Registered RP"


def test_registration_token_does_not_work_across_tenants(server, factory, registered):
    elsewhere = server.issuer(factory.tenant())
    moved = {
        **registered,
        "registration_client_uri": f"{elsewhere}/register/{registered['client_id']}",
    }
    assert manage("GET", moved).status_code == 401
    assert manage("DELETE", moved).status_code == 401
    assert manage("GET", registered).status_code == 200


# CLI -----------------------------------------------------------------------------------


def test_cli_issues_initial_token_once_as_json(app, tenant, issuer):
    before = int(time.time())
    result = app.test_cli_runner().invoke(
        args=[
            "idp",
            "client",
            "initial-token",
            "--tenant",
            tenant.slug,
            "--expires-in",
            "600",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["tenant"] == tenant.slug
    assert payload["registration_endpoint"] == f"{issuer}/register"
    assert before + 600 <= payload["expires_at"] <= int(time.time()) + 600
    assert register(issuer, payload["initial_access_token"]).status_code == 201


def test_cli_refuses_unknown_tenant(app):
    result = app.test_cli_runner().invoke(
        args=["idp", "client", "initial-token", "--tenant", "no-such-tenant", "--json"]
    )
    assert result.exit_code != 0
    assert "no tenant" in result.output
