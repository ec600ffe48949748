"""``private_key_jwt`` client authentication (OIDC Core §9, RFC 7523 §3) with jti replay refusal."""

import base64
import hashlib
import hmac
import json
import secrets
import time

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey
from joserfc.jwk import RSAKey

from tests.integration.realm import Realm
from tests.integration.test_token_endpoint import assert_error

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def signer():
    return RSAKey.generate_key(2048, parameters={"kid": "rp-key-1"})


@pytest.fixture
def realm(server, factory, browser, signer):
    jwks = {"keys": [signer.as_dict(private=False)]}
    return Realm(
        server,
        factory,
        browser,
        client_metadata={
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks,
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        },
    )


def assertion(realm, key, alg="RS256", **overrides):
    now = int(time.time())
    claims = {
        "iss": realm.client_id,
        "sub": realm.client_id,
        "aud": f"{realm.issuer}/token",
        "jti": secrets.token_urlsafe(12),
        "iat": now,
        "exp": now + 60,
        **overrides,
    }
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])


def client_credentials(realm, value):
    return requests.post(
        f"{realm.issuer}/token",
        timeout=10,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": value,
        },
    )


def test_signed_assertion_authenticates(realm, signer):
    response = client_credentials(realm, assertion(realm, signer))
    assert response.status_code == 200, response.text


def test_issuer_as_audience_is_accepted(realm, signer):
    assert client_credentials(realm, assertion(realm, signer, aud=realm.issuer)).status_code == 200


def test_replayed_assertion_is_refused(realm, signer):
    value = assertion(realm, signer)
    assert client_credentials(realm, value).status_code == 200
    assert_error(client_credentials(realm, value), 400, "invalid_client")


def test_assertion_signed_by_another_key_is_refused(realm):
    stranger = RSAKey.generate_key(2048, parameters={"kid": "rp-key-1"})
    assert_error(client_credentials(realm, assertion(realm, stranger)), 400, "invalid_client")


def test_expired_assertion_is_refused(realm, signer):
    old = int(time.time()) - 600
    value = assertion(realm, signer, iat=old, exp=old + 60)
    assert_error(client_credentials(realm, value), 400, "invalid_client")


def test_wrong_audience_is_refused(realm, signer):
    value = assertion(realm, signer, aud="https://elsewhere.example/token")
    assert_error(client_credentials(realm, value), 400, "invalid_client")


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def test_hs256_with_the_public_key_is_refused(realm, signer):
    """The algorithm-confusion attack: an HMAC keyed with the registered public key."""
    now = int(time.time())
    claims = {
        "iss": realm.client_id,
        "sub": realm.client_id,
        "aud": f"{realm.issuer}/token",
        "jti": "x1",
        "iat": now,
        "exp": now + 60,
    }
    signing_input = _b64(b'{"alg":"HS256"}') + b"." + _b64(json.dumps(claims).encode())
    mac = hmac.new(signer.as_pem(private=False), signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + _b64(mac)).decode()
    assert_error(client_credentials(realm, forged), 400, "invalid_client")


def test_alg_none_is_refused(realm):
    now = int(time.time())
    claims = {
        "iss": realm.client_id,
        "sub": realm.client_id,
        "aud": f"{realm.issuer}/token",
        "jti": "x2",
        "iat": now,
        "exp": now + 60,
    }
    forged = (_b64(b'{"alg":"none"}') + b"." + _b64(json.dumps(claims).encode()) + b".").decode()
    assert_error(client_credentials(realm, forged), 400, "invalid_client")


def test_code_flow_with_private_key_jwt(realm, signer):
    result, _, verifier = realm.sign_in()
    response = requests.post(
        f"{realm.issuer}/token",
        timeout=10,
        data={
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": "https://rp.example/cb",
            "code_verifier": verifier,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(realm, signer),
        },
    )
    assert response.status_code == 200, response.text


def test_secret_is_not_accepted_for_a_key_client(realm):
    response = requests.post(
        f"{realm.issuer}/token",
        auth=(realm.client_id, "anything"),
        timeout=10,
        data={"grant_type": "client_credentials"},
    )
    assert_error(response, 401, "invalid_client")


def test_private_jwks_are_refused_at_registration(factory, realm):
    from idp.errors import ValidationFailed

    private = ECKey.generate_key("P-256")
    with pytest.raises(ValidationFailed):
        factory.client(
            realm.tenant,
            token_endpoint_auth_method="private_key_jwt",
            jwks={"keys": [private.as_dict(private=True)]},
        )
