"""Who an upstream identity is here: authenticate (a known link), link, provision, or deny.

Links are by (``iss``, ``sub``) — stable, unlike emails. The first link to an
existing local account needs a *verified* email in a domain this tenant trusts
that upstream for; otherwise just-in-time provisioning if enabled, else "user does
not exist". An upstream can never take over an account by asserting an email.
"""

import time

from sqlalchemy import select

from idp.extensions import db
from idp.federation import registry
from idp.models import FederatedIdentity
from idp.services import accounts
from idp.services import audit
from idp.services import users


class LinkRefused(Exception):
    """The identity maps to no local user it may use; ``code`` is the message code."""

    def __init__(self, code, detail="", right_upstream=None):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.right_upstream = right_upstream


def resolve(tenant, upstream, identity):
    """The local user for this identity, linking or provisioning when the rules allow."""
    _check_selection(tenant, upstream, identity)
    link = db.session.execute(
        select(FederatedIdentity).where(
            FederatedIdentity.tenant_id == tenant.id,
            FederatedIdentity.issuer == identity.issuer,
            FederatedIdentity.subject == identity.subject,
        )
    ).scalar_one_or_none()
    if link is not None:
        link.last_login_at = int(time.time())
        db.session.commit()
        return users.get_user(tenant, link.user_id)
    email = identity.email
    trusted = bool(email) and identity.email_verified and _domain(email) in (upstream.domains or [])
    user = users.find_user_by_email(tenant, email) if trusted else None
    if user is None and upstream.jit and trusted:
        user = users.create_user(tenant, email, name=identity.name or "", active=True)
        audit.record(tenant, "user.provisioned", user_id=user.id, upstream=upstream.alias)
    if user is None:
        raise LinkRefused("user_not_found", "no linkable account and no provisioning")
    problem = accounts.problem(user)
    if problem:  # refuse before linking: a blocked account must not change (nor reactivate)
        raise LinkRefused(problem, f"local account is {problem}")
    db.session.add(
        FederatedIdentity(
            tenant_id=tenant.id,
            user_id=user.id,
            upstream_id=upstream.id,
            issuer=identity.issuer,
            subject=identity.subject,
            last_login_at=int(time.time()),
        )
    )
    if user.state == "invited":
        user.state = "active"  # the upstream proved the email: the invitation is fulfilled
    user.email_verified = True
    db.session.commit()
    audit.record(tenant, "federation.linked", user_id=user.id, upstream=upstream.alias)
    return user


def _domain(email):
    return email.rsplit("@", 1)[-1].lower()


def _check_selection(tenant, upstream, identity):
    """Flexopus "Incorrect SSO selection": the identity belongs to another upstream's domain."""
    if not identity.email:
        return
    domain = _domain(identity.email)
    routed = registry.for_domain(tenant, domain)
    if routed and upstream not in routed:
        raise LinkRefused("wrong_sso", f"{domain} signs in with {routed[0].alias}", routed[0])
