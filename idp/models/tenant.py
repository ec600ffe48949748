"""A tenant: an isolated realm with its own issuer, users, clients and login methods (DESIGN §3)."""

import re

from sqlalchemy import JSON
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.extensions import db
from idp.models._types import timestamp

SLUG_PATTERN = re.compile(r"^[a-z0-9-]{2,63}$")
RESERVED_SLUGS = frozenset({"static", "healthz", "readyz", "metrics", "admin", "api", "demo-app"})


class Tenant(db.Model):
    """One realm. ``settings`` holds per-tenant policy (branding, lifetimes, login methods)."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_login: Mapped[bool] = mapped_column(default=True)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[int] = timestamp()

    @staticmethod
    def is_valid_slug(slug):
        """Slugs are ``[a-z0-9-]{2,63}`` and not a reserved top-level path."""
        return bool(SLUG_PATTERN.match(slug or "")) and slug not in RESERVED_SLUGS
