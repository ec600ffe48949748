"""Consent for third-party clients: ask once per scope set, remember what was granted."""

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from idp.extensions import db
from idp.models import Consent

SCOPE_DESCRIPTIONS = {
    "openid": _l("Know who you are (your account identifier)"),
    "profile": _l("See your name"),
    "email": _l("See your email address"),
    "offline_access": _l("Stay connected when you are not using it"),
}


def granted_scopes(tenant, user, client):
    """Scopes this user already granted this client."""
    stmt = select(Consent.scope).where(
        Consent.tenant_id == tenant.id,
        Consent.user_id == user.id,
        Consent.client_id == client.client_id,
    )
    scope = db.session.execute(stmt).scalar_one_or_none()
    return set((scope or "").split())


def remember_consent(tenant, user, client, scope):
    """Add ``scope`` to what this user granted this client."""
    stmt = select(Consent).where(
        Consent.tenant_id == tenant.id,
        Consent.user_id == user.id,
        Consent.client_id == client.client_id,
    )
    row = db.session.execute(stmt).scalar_one_or_none()
    if row is None:
        row = Consent(tenant_id=tenant.id, user_id=user.id, client_id=client.client_id, scope="")
        db.session.add(row)
    row.scope = " ".join(sorted(set(row.scope.split()) | set(scope.split())))
    db.session.commit()
