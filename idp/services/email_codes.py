"""Emailed one-time codes (DESIGN §4): 6 digits, 5 minutes, single use, 5 tries, throttled.

A code proves control of an address for a ``purpose`` (such as ``"recover"``). Only a
keyed hash of it is stored, bound to tenant, address and purpose, so neither a
database leak nor a row copied elsewhere lets anyone test guesses. Resending voids the
previous code but passes on its failure count: a million codes cannot be guessed
five tries per resend. The count lapses an hour after the last code was issued, so a
user is held back, never locked out for good.

Every state change is a conditional UPDATE, so tries are counted and a code is used
exactly once even when requests race on several nodes.
"""

import hmac
import secrets
import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy import update

from idp.extensions import db
from idp.models import EmailCode
from idp.services import crypto
from idp.services.users import normalize_email

MAX_ATTEMPTS = 5
# Throttling and the inherited failure count look back this far (and no further).
WINDOW = 3600
DIGITS = 6
PURPOSE_MAX_LENGTH = 32
HASH_PURPOSE = "email-code"


@dataclass(frozen=True)
class Issued:
    """The outcome of :func:`issue`: a code to mail, or why none was made."""

    code: str | None
    refused: str | None = None
    retry_after: int = 0
    expires_at: int | None = None


def issue(tenant, email, purpose, now=None):
    """A fresh code for ``email`` and ``purpose``, voiding any live one; or a refusal.

    ``refused`` is ``"cooldown"`` (a code went out less than ``EMAIL_CODE_COOLDOWN``
    ago) or ``"hourly_limit"`` (``EMAIL_CODE_HOURLY_LIMIT`` codes this hour, or the
    tries are spent until the count lapses); ``retry_after`` says when to ask again.
    """
    now = _now(now)
    email = normalize_email(email)
    _check_purpose(purpose)
    recent = _recent_codes(tenant, email, purpose, now)
    refusal = _refusal(recent, now)
    if refusal:
        return refusal
    inherited = _void_live_codes(tenant, email, purpose, now, recent[0] if recent else None)
    if inherited >= MAX_ATTEMPTS:
        # A try spent while we were voiding: keep the spent code live so verify says "locked".
        db.session.rollback()
        return _locked_refusal(recent[0], now)
    code = _new_code()
    expires_at = now + current_app.config["EMAIL_CODE_TTL"]
    db.session.add(
        EmailCode(
            tenant_id=tenant.id,
            email=email,
            purpose=purpose,
            code_hash=_code_hash(tenant, email, purpose, code),
            attempts=inherited,
            created_at=now,
            expires_at=expires_at,
        )
    )
    db.session.commit()
    return Issued(code=code, expires_at=expires_at)


def verify(tenant, email, purpose, code, now=None):
    """Check ``code``: ``"ok"`` (and used), ``"wrong"``, ``"expired"``, ``"locked"``, ``"missing"``.

    ``"locked"`` also answers the wrong try that spends the last one, so nobody is
    invited to type a sixth code. An expired code costs no try.
    """
    now = _now(now)
    email = normalize_email(email)
    _check_purpose(purpose)
    row = _latest_code(tenant, email, purpose)
    if row is None or row.used_at is not None or row.voided_at is not None:
        return "missing"
    if row.attempts >= MAX_ATTEMPTS and row.created_at > now - WINDOW:
        return "locked"
    if now >= row.expires_at:
        return "expired"
    expected = row.code_hash
    tries = _reserve_try(row.id)
    if tries is None:
        db.session.rollback()
        return _settled(row.id)
    candidate = "".join((code or "").split())
    if hmac.compare_digest(expected, _code_hash(tenant, email, purpose, candidate)):
        return _use(row.id, now)
    db.session.commit()
    return "locked" if tries >= MAX_ATTEMPTS else "wrong"


def _new_code():
    """Six uniformly random digits, leading zeros kept."""
    return f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"


def _now(now):
    return int(time.time()) if now is None else int(now)


def _check_purpose(purpose):
    if not purpose or len(purpose) > PURPOSE_MAX_LENGTH:
        raise ValueError(f"purpose must be 1 to {PURPOSE_MAX_LENGTH} characters")


def _recent_codes(tenant, email, purpose, now):
    """Codes issued for the address and purpose within the window, newest first."""
    stmt = (
        select(EmailCode)
        .where(
            EmailCode.tenant_id == tenant.id,
            EmailCode.email == email,
            EmailCode.purpose == purpose,
            EmailCode.created_at > now - WINDOW,
        )
        .order_by(EmailCode.created_at.desc(), EmailCode.id.desc())
    )
    return list(db.session.execute(stmt).scalars())


def _latest_code(tenant, email, purpose):
    stmt = (
        select(EmailCode)
        .where(
            EmailCode.tenant_id == tenant.id,
            EmailCode.email == email,
            EmailCode.purpose == purpose,
        )
        .order_by(EmailCode.created_at.desc(), EmailCode.id.desc())
        .limit(1)
    )
    return db.session.execute(stmt).scalar_one_or_none()


def _refusal(recent, now):
    """Cooldown, then the hourly budget, then spent tries: the order a user can act on."""
    config = current_app.config
    if not recent:
        return None
    cooldown_ends = recent[0].created_at + config["EMAIL_CODE_COOLDOWN"]
    if now < cooldown_ends:
        return Issued(code=None, refused="cooldown", retry_after=cooldown_ends - now)
    limit = config["EMAIL_CODE_HOURLY_LIMIT"]
    if len(recent) >= limit:
        # The budget frees up when the limit-th newest code leaves the window.
        retry = recent[limit - 1].created_at + WINDOW - now
        return Issued(code=None, refused="hourly_limit", retry_after=max(1, retry))
    if recent[0].used_at is None and recent[0].attempts >= MAX_ATTEMPTS:
        return _locked_refusal(recent[0], now)
    return None


def _locked_refusal(latest, now):
    """Spent tries: no new code (it could not be used) until the count lapses."""
    return Issued(
        code=None, refused="hourly_limit", retry_after=max(1, latest.created_at + WINDOW - now)
    )


def _void_live_codes(tenant, email, purpose, now, latest):
    """Void every live code; return the failure count the next code inherits.

    The count is read after the void, when no try can land on the old code any more,
    so a try racing the resend is never lost. A used code passes nothing on: the
    address was proven.
    """
    db.session.execute(
        update(EmailCode)
        .where(
            EmailCode.tenant_id == tenant.id,
            EmailCode.email == email,
            EmailCode.purpose == purpose,
            EmailCode.used_at.is_(None),
            EmailCode.voided_at.is_(None),
        )
        .values(voided_at=now)
    )
    if latest is None:
        return 0
    stmt = select(EmailCode.attempts, EmailCode.used_at).where(EmailCode.id == latest.id)
    attempts, used_at = db.session.execute(stmt).one()
    return 0 if used_at is not None else attempts


def _reserve_try(code_id):
    """Count a try before comparing, so parallel guesses cannot exceed the limit.

    Returns the tries counted so far, this one included, or None when none is left.
    """
    stmt = (
        update(EmailCode)
        .where(
            EmailCode.id == code_id,
            EmailCode.used_at.is_(None),
            EmailCode.voided_at.is_(None),
            EmailCode.attempts < MAX_ATTEMPTS,
        )
        .values(attempts=EmailCode.attempts + 1)
        .returning(EmailCode.attempts)
    )
    return db.session.execute(stmt).scalar_one_or_none()


def _use(code_id, now):
    """Mark the code used, giving back the try it reserved: a right code is no failure."""
    stmt = (
        update(EmailCode)
        .where(EmailCode.id == code_id, EmailCode.used_at.is_(None))
        .values(used_at=now, attempts=EmailCode.attempts - 1)
    )
    used = db.session.execute(stmt).rowcount == 1
    db.session.commit()
    return "ok" if used else "missing"


def _settled(code_id):
    """Why a racing request found no try left: tries spent, or the code gone."""
    stmt = select(EmailCode.attempts, EmailCode.used_at, EmailCode.voided_at)
    attempts, used_at, voided_at = db.session.execute(stmt.where(EmailCode.id == code_id)).one()
    if used_at is None and voided_at is None and attempts >= MAX_ATTEMPTS:
        return "locked"
    return "missing"


def _code_hash(tenant, email, purpose, code):
    """The stored form of a code, bound to where it may be used."""
    return crypto.keyed_hash(HASH_PURPOSE, f"{tenant.id}\x00{email}\x00{purpose}\x00{code}")
