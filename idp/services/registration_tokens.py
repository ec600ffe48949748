"""The bearer tokens of dynamic registration: initial access tokens and registration access tokens.

Both are 256-bit random values shown once and stored as SHA-256 hashes, like client
secrets: a database leak must not let anyone register or manage clients.
"""

import hmac
import secrets
import time

from sqlalchemy import select

from idp.extensions import db
from idp.models import InitialAccessToken
from idp.services.tokens import hash_token


def issue_initial_access_token(tenant, expires_in=None):
    """A new initial access token for ``tenant`` (RFC 7591 §3); returns ``(token, row)``.

    The value is returned once, for the operator to hand to a developer; only its hash
    is kept. Without ``expires_in`` it stays valid until the row is deleted.
    """
    token = secrets.token_urlsafe(32)
    expires_at = int(time.time()) + expires_in if expires_in else None
    row = InitialAccessToken(
        tenant_id=tenant.id, token_hash=hash_token(token), expires_at=expires_at
    )
    db.session.add(row)
    db.session.commit()
    return token, row


def query_initial_access_token(tenant, value):
    """The tenant's live initial access token with this value, or None.

    Looking up by the hash of a high-entropy value leaks nothing through timing,
    and the tenant filter keeps one tenant's tokens useless at another's endpoint.
    """
    if not value or len(value) > 200:
        return None
    stmt = select(InitialAccessToken).where(
        InitialAccessToken.tenant_id == tenant.id,
        InitialAccessToken.token_hash == hash_token(value),
    )
    row = db.session.execute(stmt).scalar_one_or_none()
    if row is None or (row.expires_at is not None and row.expires_at <= time.time()):
        return None
    return row


def issue_registration_access_token(client):
    """A new registration access token for ``client`` (RFC 7592 §3); replaces any previous one."""
    token = secrets.token_urlsafe(32)
    client.registration_token_hash = hash_token(token)
    db.session.commit()
    return token


def check_registration_access_token(client, value):
    """True if ``value`` is this client's registration access token (constant-time compare).

    RFC 7592 §2: the token is bound to one client; a client registered by the CLI has
    none, so it cannot be managed through the API at all.
    """
    if client is None or not client.registration_token_hash or not value:
        return False
    return hmac.compare_digest(hash_token(value), client.registration_token_hash)
