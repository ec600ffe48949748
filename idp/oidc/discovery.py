"""OpenID Connect Discovery 1.0 and RFC 8414 metadata, built once per tenant and key set.

Metadata and JWKS are constant between rotations, so they are served from
precomputed bytes with an ETag, out of the way of per-request work.
"""

import hashlib
import json

from idp.oidc.claims import SUPPORTED_CLAIMS
from idp.oidc.grants import AUTH_METHODS
from idp.services.clients import GRANT_TYPES
from idp.services.clients import SCOPES

_cache = {}


# Discovery and the JWKS are public and constant between key rotations: any origin may
# read them, and caches may keep them a few minutes. Set by Flask's views and by
# ``idp.fastpath.ConstantDocuments`` alike.
DOCUMENT_HEADERS = (("Cache-Control", "public, max-age=300"), ("Access-Control-Allow-Origin", "*"))


def provider_metadata(issuer, signing_algs):
    """The metadata document of one issuer."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks",
        "registration_endpoint": f"{issuer}/register",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "end_session_endpoint": f"{issuer}/logout",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": list(GRANT_TYPES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": signing_algs,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "PS256", "EdDSA"],
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": [
            "RS256",
            "ES256",
            "PS256",
            "EdDSA",
        ],
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": [
            "RS256",
            "ES256",
            "PS256",
            "EdDSA",
        ],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": list(SUPPORTED_CLAIMS),
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": ["en", "nl", "fr", "de"],
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": False,
        "frontchannel_logout_supported": False,
    }


def metadata_bytes(issuer, keyring):
    """``(body, etag)`` of the metadata, cached per issuer and key set."""
    key = (issuer, keyring.jwks_etag)
    cached = _cache.get(key)
    if cached is None:
        body = json.dumps(
            provider_metadata(issuer, keyring.algorithms()), separators=(",", ":")
        ).encode()
        cached = (body, hashlib.sha256(body).hexdigest()[:32])
        if len(_cache) > 1000:
            _cache.clear()
        _cache[key] = cached
    return cached
