"""Server-side state of a browser: the pending login transaction and the SSO session."""

from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.extensions import db
from idp.models._types import tenant_fk
from idp.models._types import timestamp


class LoginTransaction(db.Model):
    """A sign-in in progress (DESIGN §4): the authorization request and what is proven so far.

    The primary key is the SHA-256 of the 256-bit id the browser's cookie holds, so a
    database leak does not hand out live transactions. Any node can continue it.
    """

    __tablename__ = "login_transactions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[int] = tenant_fk()
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[int] = timestamp()
    expires_at: Mapped[int] = mapped_column(BigInteger)


class SsoSession(db.Model):
    """The signed-in browser. ``id`` is the public ``sid`` claim; the cookie holds a secret."""

    __tablename__ = "sso_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[int] = tenant_fk()
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    amr: Mapped[list] = mapped_column(JSON, default=list)
    acr: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[int] = timestamp()
    last_seen_at: Mapped[int] = timestamp()
    expires_at: Mapped[int] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = timestamp(nullable=True)
