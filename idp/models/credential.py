"""One-time secrets a user proves themselves with: email codes and recovery codes.

Both are stored as keyed hashes (HMAC with a server key), so a database leak alone
does not let anyone test guesses offline.
"""

from sqlalchemy import BigInteger
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.extensions import db
from idp.models._types import tenant_fk
from idp.models._types import timestamp


class EmailCode(db.Model):
    """A 6-digit code mailed to prove an address (first sign-in, forgotten password).

    ``attempts`` counts wrong guesses; a new code for the same address and purpose
    inherits the count of the one it voids, so resending never resets it.
    """

    __tablename__ = "email_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = tenant_fk()
    email: Mapped[str] = mapped_column(String(320), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[int] = timestamp()
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = timestamp(nullable=True)
    voided_at: Mapped[int | None] = timestamp(nullable=True)


class RecoveryCode(db.Model):
    """One of ten single-use codes that stand in for an authenticator code."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = tenant_fk()
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = timestamp()
    used_at: Mapped[int | None] = timestamp(nullable=True)
