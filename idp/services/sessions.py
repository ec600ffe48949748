"""The SSO session: a server-side row behind a cookie that holds only a random secret.

A new secret is minted at every sign-in (no session fixation); idle and absolute
timeouts are checked on every use; logout ends the row on the server.
"""

import hashlib
import secrets
import time

from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy import update

from idp.extensions import db
from idp.models import SsoSession


def _hash(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def create_session(tenant, user, amr, acr, config, auth_time=None):
    """Start a session; returns ``(row, cookie_secret)``."""
    now = int(time.time())
    secret = secrets.token_urlsafe(32)
    row = SsoSession(
        id=secrets.token_urlsafe(24),
        tenant_id=tenant.id,
        user_id=user.id,
        secret_hash=_hash(secret),
        auth_time=auth_time or now,
        amr=list(amr),
        acr=acr,
        created_at=now,
        last_seen_at=now,
        expires_at=now + config["SESSION_ABSOLUTE_TTL"],
    )
    db.session.add(row)
    db.session.commit()
    return row, secret


def load_session(tenant, secret, config):
    """The live session behind a cookie value, touching its idle clock; None if over."""
    if not secret or len(secret) > 100:
        return None
    row = db.session.execute(_BY_SECRET_HASH, {"secret_hash": _hash(secret)}).scalar_one_or_none()
    now = int(time.time())
    if row is None or row.tenant_id != tenant.id:
        return None  # another tenant's session: none here
    if row.ended_at is not None or row.expires_at <= now:
        return None
    if row.last_seen_at + config["SESSION_IDLE_TTL"] <= now:
        return None
    if now - row.last_seen_at > 60:
        row.last_seen_at = now
        db.session.commit()
    return row


# By its unique column only, the tenant checked on the row: see tokens._CODE_AND_USER (every
# /authorize of a signed-in user reads it).
_BY_SECRET_HASH = select(SsoSession).where(SsoSession.secret_hash == bindparam("secret_hash"))


def end_session(row):
    """End a session on the server, whatever cookies still point at it."""
    row.ended_at = int(time.time())
    db.session.commit()


def end_user_sessions(tenant, user_id, keep_sid=None):
    """End all of a user's sessions (password change, authenticator reset), maybe but one."""
    stmt = update(SsoSession).where(
        SsoSession.tenant_id == tenant.id,
        SsoSession.user_id == user_id,
        SsoSession.ended_at.is_(None),
    )
    if keep_sid:
        stmt = stmt.where(SsoSession.id != keep_sid)
    db.session.execute(stmt.values(ended_at=int(time.time())))
    db.session.commit()
