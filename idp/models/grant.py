"""Authorization codes, issued tokens and replay caches — every grant persisted, secrets hashed."""

from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.extensions import db
from idp.models._types import tenant_fk
from idp.models._types import timestamp


class AuthorizationCode(db.Model):
    """A code is single use, short-lived and bound to client and redirect URI (RFC 6749 §4.1.2)."""

    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = tenant_fk()
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column()
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text, default="")
    nonce: Mapped[str | None] = mapped_column(Text, nullable=True)
    code_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)
    code_challenge_method: Mapped[str | None] = mapped_column(String(10), nullable=True)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    amr: Mapped[list] = mapped_column(JSON, default=list)
    acr: Mapped[str | None] = mapped_column(String(100), nullable=True)
    sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claims: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = timestamp(nullable=True)
    created_at: Mapped[int] = timestamp()

    # Authlib AuthorizationCodeMixin / OIDC AuthorizationCodeMixin --------------------

    def get_redirect_uri(self):
        """Authlib hook."""
        return self.redirect_uri

    def get_scope(self):
        """Authlib hook."""
        return self.scope

    def get_nonce(self):
        """Authlib hook."""
        return self.nonce

    def get_auth_time(self):
        """Authlib hook."""
        return self.auth_time

    def get_acr(self):
        """Authlib hook."""
        return self.acr

    def get_amr(self):
        """Authlib hook."""
        return list(self.amr or [])

    @property
    def family(self):
        """Every token issued from this code shares this grant id, so reuse can revoke them."""
        return f"code:{self.id}"


class Token(db.Model):
    """One issuance: an access token (by ``jti``) and maybe a refresh token (by hash).

    ``grant_id`` ties a refresh family together: reuse of a rotated refresh token or
    of a used code revokes every row of the family (RFC 9700 §4.14).
    """

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = tenant_fk()
    client_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(nullable=True, index=True)
    grant_id: Mapped[str] = mapped_column(String(80), index=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[int] = timestamp()
    access_expires_at: Mapped[int] = mapped_column(BigInteger)
    refresh_expires_at: Mapped[int | None] = timestamp(nullable=True)
    family_expires_at: Mapped[int | None] = timestamp(nullable=True)
    rotated_at: Mapped[int | None] = timestamp(nullable=True)
    revoked_at: Mapped[int | None] = timestamp(nullable=True)
    access_revoked_at: Mapped[int | None] = timestamp(nullable=True)
    auth_time: Mapped[int | None] = timestamp(nullable=True)
    sid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    amr: Mapped[list] = mapped_column(JSON, default=list)
    acr: Mapped[str | None] = mapped_column(String(100), nullable=True)
    claims: Mapped[dict | None] = mapped_column(JSON, nullable=True)

    # Authlib hooks the refresh grant calls (liveness: ``tokens.*_token_is_live``) ------

    def check_client(self, client):
        """Authlib hook: the token belongs to the client presenting it."""
        return self.client_id == client.get_client_id()

    def get_scope(self):
        """Authlib hook."""
        return self.scope


class UsedAssertion(db.Model):
    """``jti`` of private_key_jwt client assertions already seen (RFC 7523 §3, replay)."""

    __tablename__ = "used_assertions"
    __table_args__ = (UniqueConstraint("tenant_id", "client_id", "jti", name="uq_used_assertion"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = tenant_fk()
    client_id: Mapped[str] = mapped_column(String(64))
    jti: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[int] = mapped_column(BigInteger)
