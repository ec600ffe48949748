"""A person who signs in to one tenant. ``sub`` is opaque, stable and never reassigned."""

from sqlalchemy import BigInteger
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy import false
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.extensions import db
from idp.models._types import tenant_fk
from idp.models._types import timestamp

USER_STATES = ("invited", "active", "disabled", "deleted")


class User(db.Model):
    """Account state follows the Flexopus/Fluxys guides: invited → active → disabled/deleted."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "email", name="uq_users_tenant_email"),
        UniqueConstraint("tenant_id", "sub", name="uq_users_tenant_sub"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = tenant_fk()
    sub: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    totp_secret: Mapped[str | None] = mapped_column(String(300), nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    totp_enrolled_at: Mapped[int | None] = timestamp(nullable=True)
    password_changed_at: Mapped[int | None] = timestamp(nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="invited")
    is_admin: Mapped[bool] = mapped_column(default=False)
    is_external: Mapped[bool] = mapped_column(default=False, server_default=false())
    email_verified: Mapped[bool] = mapped_column(default=False)
    invited_at: Mapped[int] = timestamp()
    activation_deadline: Mapped[int | None] = timestamp(nullable=True)
    access_expires_at: Mapped[int | None] = timestamp(nullable=True)
    created_at: Mapped[int] = timestamp()

    @property
    def has_totp(self):
        """An authenticator app is enrolled."""
        return self.totp_secret is not None

    def get_user_id(self):
        """Authlib's hook: the subject identifier, never the database id."""
        return self.sub
