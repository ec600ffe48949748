"""Tenants: create, look up (by slug), list."""

from sqlalchemy import select

from idp.errors import ValidationFailed
from idp.extensions import db
from idp.models import Tenant


def create_tenant(slug, name, password_login=True, settings=None):
    """A new tenant; the slug becomes the last path segment of its issuer."""
    if not Tenant.is_valid_slug(slug):
        raise ValidationFailed("tenant slug must match [a-z0-9-]{2,63} and not be reserved")
    if query_tenant(slug) is not None:
        raise ValidationFailed(f"tenant {slug!r} already exists")
    tenant = Tenant(slug=slug, name=name, password_login=password_login, settings=settings or {})
    db.session.add(tenant)
    db.session.commit()
    return tenant


def query_tenant(slug):
    """The tenant with this slug, or None."""
    if not Tenant.is_valid_slug(slug):
        return None
    return db.session.execute(select(Tenant).where(Tenant.slug == slug)).scalar_one_or_none()


def list_tenants():
    """Every tenant, by slug."""
    return list(db.session.execute(select(Tenant).order_by(Tenant.slug)).scalars())


def update_tenant(tenant, name=None, **settings):
    """Change the name and settings; ``None`` leaves a setting as it is."""
    color = settings.get("brand_color")
    if color and not (
        len(color) == 7
        and color.startswith("#")
        and all(c in "0123456789abcdefABCDEF" for c in color[1:])
    ):
        raise ValidationFailed("brand colour must look like #1f5fbf")
    if name:
        tenant.name = name
    merged = dict(tenant.settings or {})
    merged.update({k: v for k, v in settings.items() if v is not None})
    tenant.settings = merged
    db.session.commit()
    return tenant
