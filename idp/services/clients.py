"""Clients: metadata validation (shared by the CLI and RFC 7591 registration), create, look up,
update and delete (RFC 7592)."""

import secrets
import time
from urllib.parse import urlsplit

from flask import g
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update

from idp.errors import ValidationFailed
from idp.extensions import db
from idp.extensions import serving_request
from idp.extensions import when_committed
from idp.models import AuthorizationCode
from idp.models import Client
from idp.models import Consent
from idp.models import Token
from idp.models.client import hash_secret
from idp.services import token_cache

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
RESPONSE_TYPES = ("code",)
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
SIGNING_ALGS = ("RS256", "ES256")
SCOPES = ("openid", "profile", "email", "offline_access")
LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")


def _invalid(description, error="invalid_client_metadata"):
    return ValidationFailed(description, error=error)


def validate_redirect_uri(uri, public):
    """Absolute, no fragment, no wildcard; https unless loopback, custom schemes for native apps."""
    if not isinstance(uri, str) or "*" in uri or any(c.isspace() for c in uri):
        raise _invalid(f"redirect URI {uri!r} is not valid", "invalid_redirect_uri")
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment or "#" in uri:
        raise _invalid(
            f"redirect URI {uri!r} must be absolute, without fragment", "invalid_redirect_uri"
        )
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise _invalid(f"redirect URI {uri!r} has no host", "invalid_redirect_uri")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK:
            raise _invalid(f"redirect URI {uri!r} must use https", "invalid_redirect_uri")
    elif parts.scheme in ("javascript", "data", "file", "vbscript") or not public:
        raise _invalid(f"redirect URI scheme of {uri!r} is not allowed", "invalid_redirect_uri")
    return uri


def _string_list(metadata, name, default):
    value = metadata.get(name, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"{name} must be an array of strings")
    return value


def validate_metadata(metadata):
    """Normalise and check client metadata (RFC 7591 §2); raises ValidationFailed."""
    if not isinstance(metadata, dict):
        raise _invalid("client metadata must be a JSON object")
    method = metadata.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise _invalid(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    public = method == "none"
    grant_types = _string_list(metadata, "grant_types", ["authorization_code"])
    response_types = _string_list(
        metadata, "response_types", ["code"] if "authorization_code" in grant_types else []
    )
    redirect_uris = _string_list(metadata, "redirect_uris", [])
    post_logout = _string_list(metadata, "post_logout_redirect_uris", [])
    if not grant_types or set(grant_types) - set(GRANT_TYPES):
        raise _invalid(f"grant_types must be among {', '.join(GRANT_TYPES)}")
    if set(response_types) - set(RESPONSE_TYPES):
        raise _invalid("only the response type 'code' is supported")
    if ("authorization_code" in grant_types) != ("code" in response_types):
        raise _invalid("grant type authorization_code goes with response type code")
    if public and "client_credentials" in grant_types:
        raise _invalid("a public client cannot use client_credentials")
    if "authorization_code" in grant_types and not redirect_uris:
        raise _invalid(
            "redirect_uris is required for the authorization_code grant", "invalid_redirect_uri"
        )
    for uri in redirect_uris + post_logout:
        validate_redirect_uri(uri, public)
    alg = _signing_alg(metadata, "id_token_signed_response_alg")
    # Not in RFC 7591's registry: Keycloak's per-client "access token signature algorithm"
    # under the registry's naming pattern. RS256 by default, the one RFC 9068 §4 requires
    # every resource server to accept; ES256 signs ~10 times faster, for resource servers
    # known to verify it.
    access_alg = _signing_alg(metadata, "access_token_signed_response_alg")
    scope = metadata.get("scope", " ".join(SCOPES))
    if not isinstance(scope, str) or set(scope.split()) - set(SCOPES):
        raise _invalid(f"scope must be among {' '.join(SCOPES)}")
    jwks = metadata.get("jwks")
    if method == "private_key_jwt":
        _validate_jwks(jwks)
    if "jwks_uri" in metadata:
        raise _invalid("jwks_uri is not supported; register the keys with jwks")
    clean = {
        "redirect_uris": redirect_uris,
        "post_logout_redirect_uris": post_logout,
        "grant_types": grant_types,
        "response_types": response_types,
        "token_endpoint_auth_method": method,
        "id_token_signed_response_alg": alg,
        "access_token_signed_response_alg": access_alg,
        "scope": scope,
    }
    if jwks is not None:
        clean["jwks"] = jwks
    return clean


def _signing_alg(metadata, name):
    """A ``*_signed_response_alg`` member: RS256 unless one of SIGNING_ALGS is given."""
    alg = metadata.get(name, "RS256")
    if alg not in SIGNING_ALGS:
        raise _invalid(f"{name} must be one of {', '.join(SIGNING_ALGS)}")
    return alg


def _validate_jwks(jwks):
    if not isinstance(jwks, dict) or not jwks.get("keys"):
        raise _invalid("private_key_jwt needs jwks with at least one public key")
    try:
        keyset = KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise _invalid("jwks is not a valid JWK set") from exc
    if any(key.is_private for key in keyset.keys):
        raise _invalid("jwks must hold public keys only")


def create_client(tenant, name, metadata, first_party=False, client_id=None):
    """A new client; returns ``(client, secret)`` — the secret is shown once, stored hashed."""
    clean = validate_metadata(metadata)
    secret = None
    if clean["token_endpoint_auth_method"] in ("client_secret_basic", "client_secret_post"):
        secret = secrets.token_urlsafe(32)
    client = Client(
        tenant_id=tenant.id,
        client_id=client_id or secrets.token_urlsafe(16),
        secret_hash=hash_secret(secret) if secret else None,
        name=name,
        first_party=first_party,
        meta=clean,
    )
    db.session.add(client)
    db.session.commit()
    return client, secret


def query_client(tenant, client_id):
    """The tenant's client with this id, or None.

    Remembered for the rest of the request: the authorization endpoint and its resumption
    check the client at several stages (request validation, Authlib's grant, consent), and
    each asked the database again.
    """
    seen = _request_memo()
    if seen is not None and (tenant.id, client_id) in seen:
        return seen[(tenant.id, client_id)]
    return read_client(tenant, client_id)


def read_client(tenant, client_id):
    """The client as the database has it now, even if this request read it before (its
    loaded object is refreshed); remembered for the rest of the request like
    ``query_client``'s. What ``client_cache`` keeps comes from here."""
    if not client_id or len(client_id) > 64:
        return None
    client = db.session.execute(
        _BY_CLIENT_ID, {"tenant_id": tenant.id, "client_id": client_id}
    ).scalar_one_or_none()
    seen = _request_memo()
    if seen is not None and client is not None:
        seen[(tenant.id, client_id)] = client
    return client


# Built once: every token, introspection and authorization request looks its client up, and
# building the statement (and its cache key) anew each time was a tenth of the lookup. The
# rows overwrite what an object already loaded holds (``read_client``: now, not then).
_BY_CLIENT_ID = (
    select(Client)
    .where(Client.tenant_id == bindparam("tenant_id"), Client.client_id == bindparam("client_id"))
    .execution_options(populate_existing=True)
)


def _request_memo():
    """This request's clients by (tenant id, client id); None outside a request."""
    if not serving_request():
        return None
    return g.setdefault("_clients_seen", {})


def describe_client(client, secret=None):
    """The client as RFC 7591 metadata, with the secret only when freshly issued."""
    info = {"client_id": client.client_id, "client_name": client.name, **client.meta}
    info["client_id_issued_at"] = client.created_at
    if secret:
        info["client_secret"] = secret
        info["client_secret_expires_at"] = 0
    return info


def validate_client_name(name, default="Unnamed client"):
    """``client_name`` (RFC 7591 §2): a short human-readable string shown on the consent page."""
    if name is None:
        return default
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise _invalid("client_name must be a non-empty string of at most 200 characters")
    return name.strip()


def _credential_kind(method):
    return {"client_secret_basic": "secret", "client_secret_post": "secret"}.get(method, method)


def update_client(client, name, metadata):
    """Replace a client's name and metadata (RFC 7592 §2.2); returns the client.

    The credential kind (secret, private_key_jwt, none) may not change: a secret
    client turned public would keep a secret nobody checks, a public one turned
    confidential would have none. Switching basic and post is harmless.
    """
    clean = validate_metadata(metadata)
    old, new = client.token_endpoint_auth_method, clean["token_endpoint_auth_method"]
    if _credential_kind(old) != _credential_kind(new):
        raise _invalid(
            f"token_endpoint_auth_method cannot change from {old} to {new}; register a new client"
        )
    client.name = name
    client.meta = clean
    db.session.commit()
    _forget_kept(client)
    return client


def delete_client(tenant, client):
    """Delete a client, revoke its tokens and drop its codes and consents (RFC 7592 §2.3)."""
    client_id = client.client_id
    db.session.execute(
        update(Token)
        .where(Token.tenant_id == tenant.id, Token.client_id == client_id)
        .where(Token.revoked_at.is_(None))
        .values(revoked_at=int(time.time()))
    )
    for model in (AuthorizationCode, Consent):
        db.session.execute(
            delete(model).where(model.tenant_id == tenant.id, model.client_id == client_id)
        )
    db.session.delete(client)
    db.session.commit()
    when_committed(token_cache.forget_revoked)
    _forget_kept(client)
    if serving_request():
        g.pop("_clients_seen", None)


def _forget_kept(client):
    """This process forgets the changed client now; PostgreSQL tells the other nodes."""
    from idp.services import client_cache  # it reads clients through this module

    client_cache.forget(client.tenant_id, client.client_id)
