"""Codes and tokens: issue, consume once, rotate, revoke by family, look up for introspection.

Every grant is persisted. Codes and refresh tokens are stored as SHA-256 hashes;
access tokens are RFC 9068 JWTs whose ``jti`` is recorded so that revocation and
introspection work. Single use is enforced with a conditional UPDATE, so it holds
across threads, processes and nodes on one database.
"""

import hashlib
import secrets
import time
from typing import NamedTuple

from flask import current_app
from joserfc import jwt
from sqlalchemy import bindparam
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update

from idp.extensions import autocommit_connection
from idp.extensions import db
from idp.extensions import when_committed
from idp.models import AuthorizationCode
from idp.models import Token
from idp.models import User
from idp.services import audit
from idp.services import token_cache
from idp.services.direct_reads import DirectRead
from idp.services.keys import load_keyring
from idp.services.users import keep_user


def hash_token(value):
    """Lookup key for a secret we must be able to find but never store in clear."""
    return hashlib.sha256(value.encode()).hexdigest()


def keyring():
    """The signing keys of this process (re-read on rotation)."""
    return load_keyring(current_app.config["KEYS_DIR"])


def sign_jwt(claims, alg="RS256", typ=None):
    """Sign ``claims`` with the active key for ``alg``; the header names its ``kid``."""
    key = keyring().signing_key(alg)
    header = {"alg": alg, "kid": key.kid}
    if typ:
        header["typ"] = typ
    return jwt.encode(header, claims, key, algorithms=[alg])


def verify_jwt(value, issuer, typ=None):
    """Claims of a JWT this issuer signed, or None (bad signature, alg, typ, iss or expired).

    The signature is checked once per process and key ring (``KeyRing.verified``); the
    claims are checked here on every call. They are shared: read them, never change them.
    """
    verified = keyring().verified(value)
    if verified is None:
        return None
    header, claims = verified
    if typ and header.get("typ") != typ:
        return None
    if claims.get("iss") != issuer or not isinstance(claims.get("exp"), int):
        return None
    if claims["exp"] <= time.time():
        return None
    return claims


# Authorization codes ------------------------------------------------------------------


def save_authorization_code(tenant, code, **fields):
    """Persist a fresh code (hashed) with everything the token request will need."""
    ttl = current_app.config["AUTH_CODE_TTL"]
    row = AuthorizationCode(
        tenant_id=tenant.id, code_hash=hash_token(code), expires_at=int(time.time()) + ttl, **fields
    )
    db.session.add(row)
    db.session.commit()
    return row


def find_authorization_code(tenant, code, client):
    """The unused, unexpired code of this client, its user held for the request; else None.

    One statement reads the code and its user. The code is not claimed here but where its
    token is saved (``save_token``), in the same statement as the token's INSERT, so of
    concurrent redemptions exactly one issues a token. RFC 6749 §4.1.2: a code used twice
    MUST be refused and SHOULD revoke every token issued from it — done here for a code
    already used, and by the token endpoint's ``_save_token`` for the loser of a race.
    """
    found = db.session.execute(_CODE_AND_USER, {"code_hash": hash_token(code)}).one_or_none()
    if found is None:
        return None
    row, user = found
    if row.tenant_id != tenant.id or row.client_id != client.get_client_id():
        return None  # another tenant's or another client's code: unknown here
    keep_user(user)
    if row.used_at is not None:
        code_reused(tenant, row)
        return None
    return row if row.expires_at > time.time() else None


# The hot lookups name only their credential's unique column and check the tenant (and
# client) on the row they get: with ``tenant_id = …`` in the WHERE clause as well, a table
# PostgreSQL has not analysed yet (a new deployment, or one that grew fast, like the bench's)
# was read through its tenant_id index, every row of the tenant filtered one by one.
_CODE_AND_USER = (
    select(AuthorizationCode, User)
    .outerjoin(User, User.id == AuthorizationCode.user_id)
    .where(AuthorizationCode.code_hash == bindparam("code_hash"))
)


def code_reused(tenant, row):
    """A used code came back (a replay, or the loser of a race): revoke what it issued."""
    revoke_family(tenant, row.family)
    audit.record(tenant, "token.code_reuse", client_id=row.client_id, user_id=row.user_id)


def spend_authorization_code(code_id):
    """Mark a code used without issuing anything: a redemption that failed its checks
    (PKCE, redirect URI, the user) still spends the code, so it cannot be tried again."""
    db.session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.id == code_id, AuthorizationCode.used_at.is_(None))
        .values(used_at=int(time.time()))
    )
    db.session.commit()


# Access and refresh tokens ------------------------------------------------------------


def create_access_token(tenant, issuer, client, user, scope, expires_in):
    """An RFC 9068 access token JWT and its ``jti``."""
    now = int(time.time())
    jti = secrets.token_urlsafe(16)
    claims = {
        "iss": issuer,
        "sub": user.sub if user else client.client_id,
        "aud": issuer,
        "client_id": client.client_id,
        "iat": now,
        "exp": now + expires_in,
        "jti": jti,
        "scope": scope or "",
    }
    return sign_jwt(claims, client.access_token_signed_response_alg, typ="at+jwt"), jti


def save_token(tenant, token, meta):
    """Record one issuance — the access token's jti, the refresh token's hash — and claim
    what it was issued from; False, with nothing written, if that was claimed first.

    ``meta["claim"]``: ``("code", id)`` of the code being redeemed, ``("refresh", id)`` of
    the refresh token being rotated, or absent (client credentials). The claim (a
    conditional UPDATE) and the INSERT are one transaction, so of two racing requests one
    issues and the other finds the winner's token already committed. On PostgreSQL they
    are one statement (the UPDATE in a CTE), so a token request needs no BEGIN and COMMIT
    round trips; elsewhere they are two in the session's transaction. A Core INSERT, not
    an ORM object: nothing reads the row back.

    With nothing to claim (client credentials) the INSERT is the request's only statement:
    it runs on a connection of its own in autocommit (``extensions.autocommit_connection``),
    not through the ORM session, whose connection, isolation switch and commit were a
    quarter of such a token's Python calls. SQLAlchemy still executes it, so a dead
    connection is handled as anywhere else (the pool dropped, 503).
    """
    values = _token_values(tenant, token, meta)
    claim = meta.get("claim")
    if claim is None:
        with autocommit_connection() as connection:
            connection.execute(_INSERT_TOKEN, values)
        return True
    if claims_in_one_statement():
        params = {f"new_{name}": value for name, value in values.items()}
        params.update(claim_id=claim[1], claimed_at=values["issued_at"])
        saved = db.session.execute(_CLAIMING_INSERT[claim[0]], params).first() is not None
    else:
        claimed = db.session.execute(
            _CLAIM[claim[0]], {"claim_id": claim[1], "claimed_at": values["issued_at"]}
        ).rowcount
        if claimed == 1:
            db.session.execute(_INSERT_TOKEN, values)
        saved = claimed == 1
    db.session.commit()
    return saved


def claims_in_one_statement():
    """Whether ``save_token`` claims and inserts in one statement (PostgreSQL), so that a
    token request can run in autocommit."""
    return db.session.get_bind().dialect.name == "postgresql"


def _token_values(tenant, token, meta):
    config = current_app.config
    now = int(time.time())
    refresh = token.get("refresh_token")
    return {
        "tenant_id": tenant.id,
        "client_id": meta["client_id"],
        "user_id": meta.get("user_id"),
        "grant_id": meta["grant_id"],
        "jti": meta["jti"],
        "refresh_hash": hash_token(refresh) if refresh else None,
        "scope": token.get("scope", ""),
        "issued_at": now,
        "access_expires_at": now + token["expires_in"],
        "refresh_expires_at": now + config["REFRESH_IDLE_TTL"] if refresh else None,
        "family_expires_at": meta.get("family_expires_at")
        or (now + config["REFRESH_ABSOLUTE_TTL"] if refresh else None),
        "auth_time": meta.get("auth_time"),
        "sid": meta.get("sid"),
        "amr": meta.get("amr") or [],
        "acr": meta.get("acr"),
        "claims": meta.get("claims"),
    }


# Built once: the parameters go with each execution, so no request builds (and caches a
# key for) a statement of its own.
_TOKENS = Token.__table__
_CODES = AuthorizationCode.__table__
_INSERT_TOKEN = insert(_TOKENS).inline()  # no RETURNING: nothing reads the id back
_TOKEN_FIELDS = (
    "tenant_id", "client_id", "user_id", "grant_id", "jti", "refresh_hash", "scope",
    "issued_at", "access_expires_at", "refresh_expires_at", "family_expires_at", "auth_time",
    "sid", "amr", "acr", "claims",
)  # fmt: skip
_CLAIM = {
    "code": update(_CODES)
    .where(_CODES.c.id == bindparam("claim_id"), _CODES.c.used_at.is_(None))
    .values(used_at=bindparam("claimed_at")),
    "refresh": update(_TOKENS)
    .where(
        _TOKENS.c.id == bindparam("claim_id"),
        _TOKENS.c.rotated_at.is_(None),
        _TOKENS.c.revoked_at.is_(None),
    )
    .values(rotated_at=bindparam("claimed_at")),
}


def _claiming_insert(claim):
    """``WITH claimed AS (UPDATE … RETURNING id) INSERT INTO tokens SELECT … FROM claimed``:
    the row is inserted only if this statement's UPDATE claimed the code or refresh token.
    The values are ``new_*`` parameters: under a column's own name SQLAlchemy would take a
    parameter for one more SET clause of the UPDATE."""
    claimed = claim.returning(claim.table.c.id).cte("claimed")
    row = select(*(bindparam(f"new_{f}", type_=_TOKENS.c[f].type) for f in _TOKEN_FIELDS))
    statement = insert(_TOKENS).from_select(_TOKEN_FIELDS, row.select_from(claimed))
    return statement.add_cte(claimed).returning(_TOKENS.c.id)  # (rowcount reads -1 here)


_CLAIMING_INSERT = {kind: _claiming_insert(claim) for kind, claim in _CLAIM.items()}


def find_refresh_token(tenant, value):
    """A refresh token row (ORM, for the refresh grant) by its value, whatever its state.

    Its user comes with it in the same statement (an outer join) and is held for the
    request, where ``users.get_user`` then finds it without a second round trip.
    """
    found = db.session.execute(
        _REFRESH_AND_USER, {"refresh_hash": hash_token(value)}
    ).one_or_none()
    if found is None or found[0].tenant_id != tenant.id:
        return None
    keep_user(found[1])
    return found[0]


_REFRESH_AND_USER = (  # by its unique column only: see _CODE_AND_USER
    select(Token, User)
    .outerjoin(User, User.id == Token.user_id)
    .where(Token.refresh_hash == bindparam("refresh_hash"))
)


def refresh_token_is_live(row, now=None):
    """Not rotated, not revoked, within both its idle and its absolute lifetime."""
    now = now or int(time.time())
    return (
        row.rotated_at is None
        and row.revoked_at is None
        and (row.refresh_expires_at or 0) > now
        and (row.family_expires_at or 0) > now
    )


def access_token_is_live(row, now=None):
    """Not revoked (alone, or with its whole family) and not expired."""
    now = now or time.time()
    return row.revoked_at is None and row.access_revoked_at is None and row.access_expires_at > now


def find_access_token(tenant, issuer, value, connect=None):
    """The live grant behind an access token JWT (``lookup_access_token``), or None."""
    row = lookup_access_token(tenant, issuer, value, connect)
    return row if row is not None and access_token_is_live(row) else None


# What userinfo, introspection and revocation read of a presented token: the token row's
# columns and its user's, in one Core statement built once. No ORM objects: building them
# (and a second statement for the user, whom the identity map had already let go of) was
# most of these endpoints' Python time. Labels ``user_*`` keep the two tables apart.
_LOOKUP_COLUMNS = (
    Token.id, Token.tenant_id, Token.client_id, Token.user_id, Token.grant_id, Token.jti,
    Token.scope, Token.issued_at, Token.access_expires_at, Token.refresh_expires_at,
    Token.family_expires_at,
    Token.rotated_at, Token.revoked_at, Token.access_revoked_at, Token.claims,
    User.sub.label("user_sub"), User.email.label("user_email"), User.name.label("user_name"),
    User.email_verified.label("user_email_verified"), User.state.label("user_state"),
    User.activation_deadline.label("user_activation_deadline"),
    User.access_expires_at.label("user_access_expires_at"),
)  # fmt: skip
_LOOKUP = select(*_LOOKUP_COLUMNS).outerjoin(User, User.id == Token.user_id)
# By unique columns only (see _CODE_AND_USER); run on psycopg directly (``direct_reads``).
_BY_JTI = DirectRead(_LOOKUP.where(Token.jti == bindparam("key")), "TokenByJti")
_BY_REFRESH_HASH = DirectRead(
    _LOOKUP.where(Token.refresh_hash == bindparam("key")), "TokenByRefreshHash"
)


def lookup_access_token(tenant, issuer, value, connect=None):
    """The lookup row of a valid, unexpired access token JWT of this issuer, revoked or not:
    from this process's ``token_cache`` when it keeps it, else read (and kept).

    ``connect``: returns where to read (the request session's connection when None).
    """
    claims = verify_jwt(value, issuer, typ="at+jwt")
    if claims is None or not isinstance(claims.get("jti"), str):
        return None
    jti = claims["jti"]
    row = token_cache.lookup(jti, lambda: _read(_BY_JTI, jti, connect))
    return row if row is not None and row.tenant_id == tenant.id else None


def lookup_refresh_token(tenant, value, connect=None):
    """The lookup row of a refresh token by its value, whatever its state (never kept: a
    refresh token is presented once, then rotated).

    ``connect``: returns where to read (the request session's connection when None).
    """
    row = _read(_BY_REFRESH_HASH, hash_token(value), connect)
    return row if row is not None and row.tenant_id == tenant.id else None


def _read(read, key, connect=None):
    return read.one_or_none(connect() if connect else db.session.connection(), {"key": key})


def lookup_user(row):
    """The user columns of a lookup row, under the model's attribute names (None without one).

    Enough for ``claims.user_claims`` and ``accounts.problem``; not a ``User``.
    """
    if row.user_sub is None:
        return None
    return LookedUpUser(
        row.user_sub, row.user_email, row.user_name, row.user_email_verified, row.user_state,
        row.user_activation_deadline, row.user_access_expires_at,
    )  # fmt: skip


class LookedUpUser(NamedTuple):
    """A user as a lookup row carries it."""

    sub: str
    email: str
    name: str
    email_verified: bool
    state: str
    activation_deadline: int | None
    access_expires_at: int | None


def revoke_family(tenant, grant_id):
    """Revoke every token issued under one grant (code reuse, refresh reuse, revocation)."""
    db.session.execute(
        update(Token)
        .where(Token.tenant_id == tenant.id, Token.grant_id == grant_id, Token.revoked_at.is_(None))
        .values(revoked_at=int(time.time()))
    )
    db.session.commit()
    when_committed(token_cache.forget_revoked)


def revoke_access_token(token_id):
    """Revoke one access token, leaving its refresh token alone (RFC 7009 §2.1)."""
    db.session.execute(
        update(Token)
        .where(Token.id == token_id, Token.access_revoked_at.is_(None))
        .values(access_revoked_at=int(time.time()))
    )
    db.session.commit()
    when_committed(token_cache.forget_revoked)


def revoke_user_tokens(tenant, user_id):
    """Revoke every token of a user (password change, authenticator reset, disable)."""
    db.session.execute(
        update(Token)
        .where(Token.tenant_id == tenant.id, Token.user_id == user_id, Token.revoked_at.is_(None))
        .values(revoked_at=int(time.time()))
    )
    db.session.commit()
    when_committed(token_cache.forget_revoked)


def revoke_session_tokens(tenant, sid):
    """At logout, revoke what the session issued — except offline access, which outlives it."""
    db.session.execute(
        update(Token)
        .where(
            Token.tenant_id == tenant.id,
            Token.sid == sid,
            Token.revoked_at.is_(None),
            ~Token.scope.contains("offline_access"),
        )
        .values(revoked_at=int(time.time()))
    )
    db.session.commit()
    when_committed(token_cache.forget_revoked)
