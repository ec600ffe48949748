"""Recovery codes: ten single-use codes that stand in for an authenticator code.

Each is 10 characters from an alphabet without look-alikes (no 0/o, 1/l/i), about
49 bits, shown as ``xxxxx-xxxxx``. Only ``crypto.keyed_hash("recovery", code)`` is
stored, so neither a database dump nor an admin screen reveals a usable code. A code
is spent by one conditional UPDATE, so two requests racing with it on any nodes
cannot both succeed.
"""

import secrets

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from idp.extensions import db
from idp.models import RecoveryCode
from idp.models._types import now
from idp.services import crypto

ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
COUNT = 10
LENGTH = 10
HASH_PURPOSE = "recovery"
# Longer input is refused before any work: no code is anywhere near this long.
MAX_INPUT = 64


def generate(tenant, user) -> list[str]:
    """A new set of codes for display, once; any previous set stops working."""
    _check_tenant(tenant, user)
    codes = []
    while len(codes) < COUNT:
        code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        if code not in codes:
            codes.append(code)
    db.session.execute(_delete_stmt(tenant, user))
    db.session.add_all(
        RecoveryCode(tenant_id=tenant.id, user_id=user.id, code_hash=_hash(code)) for code in codes
    )
    db.session.commit()
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def normalize(code: str) -> str | None:
    """The code as stored before hashing: lower case, no spaces or dashes; None if malformed."""
    if not isinstance(code, str) or len(code) > MAX_INPUT:
        return None
    value = "".join(code.split()).replace("-", "").lower()
    if len(value) != LENGTH or any(char not in ALPHABET for char in value):
        return None
    return value


def use(tenant, user, code: str) -> bool:
    """True, once, when ``code`` is one of the user's unused codes; it is then spent."""
    value = normalize(code)
    if value is None:
        return False
    stmt = (
        update(RecoveryCode)
        .where(
            RecoveryCode.tenant_id == tenant.id,
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _hash(value),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now())
        .execution_options(synchronize_session=False)
    )
    accepted = db.session.execute(stmt).rowcount == 1
    db.session.commit()
    return accepted


def remaining(tenant, user) -> int:
    """How many of the user's codes are still unused."""
    stmt = select(func.count(RecoveryCode.id)).where(
        RecoveryCode.tenant_id == tenant.id,
        RecoveryCode.user_id == user.id,
        RecoveryCode.used_at.is_(None),
    )
    return db.session.execute(stmt).scalar_one()


def clear(tenant, user) -> None:
    """Delete all the user's codes (authenticator removed, account reset)."""
    _check_tenant(tenant, user)
    db.session.execute(_delete_stmt(tenant, user))
    db.session.commit()


def _delete_stmt(tenant, user):
    return delete(RecoveryCode).where(
        RecoveryCode.tenant_id == tenant.id, RecoveryCode.user_id == user.id
    )


def _hash(value):
    return crypto.keyed_hash(HASH_PURPOSE, value)


def _check_tenant(tenant, user):
    """Refuse to act on a user of another tenant: that is a bug in the caller."""
    if user.tenant_id != tenant.id:
        raise ValueError("the user does not belong to this tenant")
