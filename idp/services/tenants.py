"""Tenants: create, look up (by slug), list."""

import threading
import time

from flask import current_app
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


_lock = threading.Lock()


def tenant_for_request(slug):
    """The tenant a request's URL names, reusing a recent lookup of this process.

    Every request of every endpoint starts here, and tenants change rarely (an operator's
    ``idp tenant update``), so the row is kept for ``TENANT_CACHE_TTL`` seconds instead of
    being read again each time. The kept object is detached from any session: the tenant
    model has no relationships to load lazily, and request code only reads it. Unknown slugs
    are never kept, so a new tenant is served at once.
    """
    ttl = current_app.config["TENANT_CACHE_TTL"]
    if ttl <= 0:
        return query_tenant(slug)
    tenant = kept_tenant(current_app, slug)
    if tenant is not None:
        return tenant
    tenant = query_tenant(slug)
    now = time.monotonic()
    cache = current_app.extensions.setdefault("idp.tenant_cache", {})
    with _lock:
        if tenant is None:
            cache.pop(slug, None)
        else:
            db.session.expunge(tenant)
            cache[slug] = (now + ttl, tenant)
    return tenant


def kept_tenant(app, slug):
    """The tenant ``app``'s process still keeps for ``slug``, or None; no context needed
    (the discovery fast path asks before it would push one)."""
    kept = app.extensions.get("idp.tenant_cache", {}).get(slug)
    if kept is not None and kept[0] > time.monotonic():
        return kept[1]
    return None


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
    forget_kept(tenant.slug)  # this process sees the change at once; others within the TTL
    return tenant


def forget_kept(slug):
    """Drop a tenant from this process's cache (after changing it here)."""
    with _lock:
        current_app.extensions.get("idp.tenant_cache", {}).pop(slug, None)
