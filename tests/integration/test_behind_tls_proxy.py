"""A node as the production layout runs it: behind a TLS-terminating proxy.

The proxy (docs/deploy.md) passes requests on over plain HTTP with the public ``Host``,
and idp trusts no header for the scheme, so the node sees ``http://id.example.test/…``
while the clients called ``https://id.example.test/…``. Authlib refuses a non-loopback
``http`` URL (``insecure_transport``); idp gives it the public URL instead.
"""

import base64
import secrets
import time

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.conftest import Factory
from tests.conftest import make_app

PUBLIC = "https://id.example.test"
SEEN_BY_THE_NODE = "http://id.example.test"  # plain HTTP from the proxy, the public Host
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, database):
    app = make_app(tmp_path_factory, database, PUBLIC_URL=PUBLIC)
    factory = Factory(app)
    tenant = factory.tenant()
    grants = ["authorization_code", "refresh_token", "client_credentials"]
    client_id, secret = factory.client(tenant, grant_types=grants)
    return app, tenant, client_id, secret


def _basic(client_id, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def _post(app, path, data, headers=None):
    return app.test_client().post(path, base_url=SEEN_BY_THE_NODE, data=data, headers=headers)


def test_an_authorization_request_goes_to_the_sign_in_page(proxied):
    app, tenant, client_id, _ = proxied
    answer = app.test_client().get(
        f"/{tenant.slug}/authorize",
        base_url=SEEN_BY_THE_NODE,
        query_string={
            "response_type": "code", "client_id": client_id, "scope": "openid",
            "redirect_uri": "https://rp.example/cb", "code_challenge_method": "S256",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        },
    )  # fmt: skip
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"/{tenant.slug}/login")
    assert "insecure_transport" not in answer.headers["Location"]


@pytest.mark.parametrize("path", ["/token", "/token?via=flask"])  # the fast path; Flask's view
def test_a_token_request_is_answered(proxied, path):
    app, tenant, client_id, secret = proxied
    basic = _basic(client_id, secret)
    answer = _post(app, f"/{tenant.slug}{path}", {"grant_type": "client_credentials"}, basic)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    token = answer.json["access_token"]

    looked_up = _post(app, f"/{tenant.slug}/introspect", {"token": token}, basic)
    assert looked_up.status_code == 200
    assert looked_up.json["active"] is True
    assert looked_up.json["iss"] == f"{PUBLIC}/{tenant.slug}"


def test_a_private_key_jwt_names_the_public_endpoint(tmp_path_factory, proxied):
    app, tenant, _, _ = proxied
    key = RSAKey.generate_key(2048, parameters={"kid": "rp-1"})
    client_id, _ = Factory(app).client(
        tenant,
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [key.as_dict(private=False)]},
        grant_types=["client_credentials"],
    )

    def token_with_audience(audience):
        now = int(time.time())
        claims = {
            "iss": client_id, "sub": client_id, "aud": audience,
            "jti": secrets.token_urlsafe(12), "iat": now, "exp": now + 60,
        }  # fmt: skip
        value = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key, algorithms=["RS256"])
        form = {
            "grant_type": "client_credentials", "client_id": client_id,
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": value,
        }  # fmt: skip
        return _post(app, f"/{tenant.slug}/token", form)

    assert token_with_audience(f"{PUBLIC}/{tenant.slug}/token").status_code == 200
    refused = token_with_audience(f"{SEEN_BY_THE_NODE}/{tenant.slug}/token")
    assert refused.json["error"] == "invalid_client"  # only the node sees that URL
