"""Discovery metadata, the JWKS, key rotation and per-client signing algorithms."""

import functools
import os
import stat
from urllib.parse import urlsplit

import pytest
import requests
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata
from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet
from werkzeug.test import Client

from idp.services import keys
from tests.conftest import make_app
from tests.integration.realm import Realm


def fetch(url):
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return response


def test_discovery_document_is_valid_and_rooted_at_the_issuer(realm):
    response = fetch(f"{realm.issuer}/.well-known/openid-configuration")
    metadata = response.json()
    OpenIDProviderMetadata(metadata).validate()
    assert metadata["issuer"] == realm.issuer
    for name, value in metadata.items():
        if name.endswith("_endpoint") or name == "jwks_uri":
            assert value.startswith(realm.issuer + "/"), name
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["request_parameter_supported"] is False
    assert "none" in metadata["token_endpoint_auth_methods_supported"]


def test_rfc8414_metadata(realm):
    metadata = fetch(f"{realm.issuer}/.well-known/oauth-authorization-server").json()
    AuthorizationServerMetadata(metadata).validate()
    assert metadata["issuer"] == realm.issuer


def test_discovery_and_jwks_are_cacheable_with_etag(realm):
    for path in ("/.well-known/openid-configuration", "/jwks"):
        first = fetch(realm.issuer + path)
        assert first.headers["ETag"] and "max-age" in first.headers["Cache-Control"]
        again = requests.get(
            realm.issuer + path, headers={"If-None-Match": first.headers["ETag"]}, timeout=10
        )
        assert again.status_code == 304


@pytest.mark.parametrize("public_url", ["http://127.0.0.1:5000", "https://idp.example"])
def test_the_fast_path_sends_what_flask_would(realm, tmp_path_factory, database, public_url):
    """Discovery and JWKS come from ``fastpath.ConstantDocuments``, in front of Flask: the
    same bytes and security headers as Flask's own views, HSTS included over HTTPS."""
    app = make_app(tmp_path_factory, database, PUBLIC_URL=public_url)  # its own keys
    tenant_path = urlsplit(realm.issuer).path
    served = app.test_client()
    flask_only = Client(functools.partial(Flask.wsgi_app, app))  # no middleware
    for path in ("/.well-known/openid-configuration", "/jwks"):
        fast, flask = served.get(tenant_path + path), flask_only.get(tenant_path + path)
        assert fast.status_code == flask.status_code == 200
        assert fast.data == flask.data
        assert fast.headers["X-Frame-Options"] == "DENY"
        hsts = fast.headers.get("Strict-Transport-Security", "")
        assert hsts.startswith("max-age=") == public_url.startswith("https://")
        for name in ("Cache-Control", "Access-Control-Allow-Origin", "Content-Type", "ETag",
                     "Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy",
                     "X-Frame-Options", "Strict-Transport-Security"):  # fmt: skip
            assert fast.headers.get(name) == flask.headers.get(name), name


def test_jwks_publishes_public_keys_with_thumbprint_kids(realm):
    body = fetch(f"{realm.issuer}/jwks").json()
    assert {k["alg"] for k in body["keys"]} == {"RS256", "ES256"}
    keyset = KeySet.import_key_set(body)
    for key, raw in zip(keyset.keys, body["keys"], strict=True):
        assert raw["kid"] == key.thumbprint()
        assert "d" not in raw and "p" not in raw, "private parts must never be published"
        assert raw["use"] == "sig"


def test_key_files_are_private(app):
    folder = app.config["KEYS_DIR"]
    for name in os.listdir(folder):
        mode = stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode)
        assert mode & 0o077 == 0, f"{name} is readable by others ({oct(mode)})"


def test_rotation_publishes_next_before_it_signs_and_keeps_the_retired_key(realm, app):
    folder = app.config["KEYS_DIR"]
    before = fetch(f"{realm.issuer}/jwks").json()
    old_tokens = realm.tokens()
    old_kid = jwt.decode(old_tokens["id_token"], KeySet.import_key_set(before)).header["kid"]
    next_kid = next(
        e["kid"] for e in keys.list_keys(folder) if e["alg"] == "RS256" and e["state"] == "next"
    )
    assert next_kid in {k["kid"] for k in before["keys"]}, "the next key is published before use"

    keys.rotate_keys(folder, retain_seconds=3600)

    after = fetch(f"{realm.issuer}/jwks").json()
    published = {k["kid"] for k in after["keys"]}
    assert old_kid in published, "a retired key stays until its tokens expire"
    new_tokens = realm.tokens(prompt="login")
    assert (
        jwt.decode(new_tokens["id_token"], KeySet.import_key_set(after)).header["kid"] == next_kid
    )
    assert realm.userinfo(old_tokens["access_token"]).status_code == 200
    assert realm.userinfo(new_tokens["access_token"]).status_code == 200


def test_retired_keys_are_pruned_after_their_tokens_expire(tmp_path):
    folder = str(tmp_path)
    keys.ensure_keys(folder)
    first_active = {e["kid"] for e in keys.list_keys(folder) if e["state"] == "active"}
    keys.rotate_keys(folder, retain_seconds=3600)
    assert first_active <= {e["kid"] for e in keys.list_keys(folder)}
    keys.rotate_keys(folder, retain_seconds=-1)
    remaining = {e["kid"] for e in keys.list_keys(folder)}
    assert not first_active & remaining
    assert len([n for n in os.listdir(folder) if n.endswith(".pem")]) == len(remaining)


def test_es256_client_gets_es256_id_tokens(server, factory, browser):
    realm = Realm(
        server, factory, browser, client_metadata={"id_token_signed_response_alg": "ES256"}
    )
    token = realm.tokens()["id_token"]
    keyset = KeySet.import_key_set(fetch(f"{realm.issuer}/jwks").json())
    decoded = jwt.decode(token, keyset, algorithms=["ES256"])
    assert decoded.header["alg"] == "ES256"
