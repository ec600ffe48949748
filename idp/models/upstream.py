"""Upstream identity providers of a tenant (DESIGN §6) and the identities they vouch for."""

from sqlalchemy import JSON
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.extensions import db
from idp.models._types import tenant_fk
from idp.models._types import timestamp


class UpstreamIdp(db.Model):
    """An OpenID Connect provider users of some email domains sign in with.

    ``client_secret`` is encrypted at rest (``idp.services.crypto``). ``domains`` are
    the email domains routed to it and trusted for the first link to a local account.
    """

    __tablename__ = "upstream_idps"
    __table_args__ = (UniqueConstraint("tenant_id", "alias", name="uq_upstream_alias"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = tenant_fk()
    alias: Mapped[str] = mapped_column(String(40))
    display_name: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(Text)
    discovery_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    scopes: Mapped[str] = mapped_column(String(255), default="openid email profile")
    domains: Mapped[list] = mapped_column(JSON, default=list)
    button_style: Mapped[str] = mapped_column(String(20), default="default")
    jit: Mapped[bool] = mapped_column(default=False)
    claim_mapping: Mapped[dict] = mapped_column(JSON, default=dict)
    trust_mfa: Mapped[bool] = mapped_column(default=False)
    allow_private_network: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[int] = timestamp()

    @property
    def metadata_url(self):
        """Where its discovery document is (OIDC Discovery §4)."""
        return self.discovery_url or self.issuer.rstrip("/") + "/.well-known/openid-configuration"


class FederatedIdentity(db.Model):
    """A link: this upstream's (``issuer``, ``subject``) is this local user, for good."""

    __tablename__ = "federated_identities"
    __table_args__ = (
        UniqueConstraint("tenant_id", "issuer", "subject", name="uq_federated_identity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = tenant_fk()
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    upstream_id: Mapped[int] = mapped_column(ForeignKey("upstream_idps.id", ondelete="CASCADE"))
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = timestamp()
    last_login_at: Mapped[int | None] = timestamp(nullable=True)
