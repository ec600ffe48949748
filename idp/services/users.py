"""Users of a tenant: create (seeding and migration), look up by email or subject."""

import secrets

from flask import g
from sqlalchemy import select

from idp.errors import ValidationFailed
from idp.extensions import db
from idp.extensions import serving_request
from idp.models import User
from idp.services import crypto
from idp.services.passwords import hash_password


def normalize_email(email):
    """Trim and lower-case: the form every lookup and uniqueness check uses."""
    return (email or "").strip().lower()


def is_plausible_email(email):
    """One @, something on both sides, a dot in the domain, no spaces."""
    local, _, domain = email.partition("@")
    return bool(local) and "." in domain and " " not in email and "@" not in domain


def create_user(
    tenant,
    email,
    password=None,
    name="",
    totp_secret=None,
    active=False,
    admin=False,
    external=False,
):
    """A user of ``tenant``; ``active`` skips the invitation (seeding and migration);
    ``external`` signs in with a password even where SSO routes the domain (Mixed Log In)."""
    email = normalize_email(email)
    if not is_plausible_email(email):
        raise ValidationFailed("a valid email address is required")
    if find_user_by_email(tenant, email) is not None:
        raise ValidationFailed(f"{email} already exists in tenant {tenant.slug}")
    user = User(
        tenant_id=tenant.id,
        sub=secrets.token_urlsafe(24),
        email=email,
        name=name,
        password_hash=hash_password(password) if password else None,
        # Migrated authenticators are stored like enrolled ones: encrypted (totp.verify).
        totp_secret=crypto.encrypt(totp_secret) if totp_secret else None,
        state="active" if active else "invited",
        is_admin=admin,
        is_external=external,
        email_verified=active,
    )
    db.session.add(user)
    db.session.commit()
    return user


def find_user_by_email(tenant, email):
    """The tenant's user with this email, or None."""
    stmt = select(User).where(User.tenant_id == tenant.id, User.email == normalize_email(email))
    return keep_user(db.session.execute(stmt).scalar_one_or_none())


def get_user(tenant, user_id):
    """The tenant's user with this database id, or None."""
    user = keep_user(db.session.get(User, user_id))
    return user if user is not None and user.tenant_id == tenant.id else None


def keep_user(user):
    """Hold a loaded user for the rest of the request. The session's identity map holds
    unchanged objects only weakly: the sign-in's password step finds the user by email,
    and the view's ``get_user`` right after would otherwise read the row a second time."""
    if user is not None and serving_request():
        g.setdefault("_users_kept", []).append(user)
    return user
