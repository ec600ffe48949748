"""The tenant's upstream IdPs: add, change, remove, look up, and route an email to them."""

import re
from dataclasses import dataclass

from sqlalchemy import select

from idp.errors import ValidationFailed
from idp.extensions import db
from idp.models import Tenant
from idp.models import UpstreamIdp
from idp.services import crypto

ALIAS = re.compile(r"^[a-z0-9-]{2,40}$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$")
FIELDS = (
    "display_name",
    "issuer",
    "discovery_url",
    "client_id",
    "scopes",
    "domains",
    "button_style",
    "jit",
    "claim_mapping",
    "trust_mfa",
    "allow_private_network",
    "enabled",
)


def _clean_domains(domains):
    cleaned = sorted({d.strip().lower() for d in domains or [] if d.strip()})
    for domain in cleaned:
        if not DOMAIN.match(domain):
            raise ValidationFailed(f"{domain!r} is not a domain name")
    return cleaned


def add(tenant, alias, client_secret=None, **fields):
    """Register an upstream; its client secret is stored encrypted."""
    if not ALIAS.match(alias or ""):
        raise ValidationFailed("alias must match [a-z0-9-]{2,40}")
    if find(tenant, alias) is not None:
        raise ValidationFailed(f"upstream {alias!r} already exists")
    if not fields.get("issuer") or not fields.get("client_id"):
        raise ValidationFailed("issuer and client id are required")
    fields.setdefault("display_name", alias)
    fields["domains"] = _clean_domains(fields.get("domains"))
    row = UpstreamIdp(tenant_id=tenant.id, alias=alias, **fields)
    row.client_secret = crypto.encrypt(client_secret) if client_secret else None
    db.session.add(row)
    db.session.commit()
    return row


def update(tenant, alias, client_secret=None, **fields):
    """Change the given fields (``None`` leaves one as it is)."""
    row = require(tenant, alias)
    for name, value in fields.items():
        if name not in FIELDS or value is None:
            continue
        setattr(row, name, _clean_domains(value) if name == "domains" else value)
    if client_secret:
        row.client_secret = crypto.encrypt(client_secret)
    db.session.commit()
    return row


def remove(tenant, alias):
    """Delete an upstream and every link to it."""
    db.session.delete(require(tenant, alias))
    db.session.commit()


def find(tenant, alias):
    """The tenant's upstream with this alias, or None."""
    stmt = select(UpstreamIdp).where(UpstreamIdp.tenant_id == tenant.id, UpstreamIdp.alias == alias)
    return db.session.execute(stmt).scalar_one_or_none()


def require(tenant, alias):
    """The upstream, or a ValidationFailed naming it."""
    row = find(tenant, alias)
    if row is None:
        raise ValidationFailed(f"no upstream {alias!r} in tenant {tenant.slug}")
    return row


def list_upstreams(tenant, enabled_only=False):
    """The tenant's upstreams, by alias."""
    stmt = select(UpstreamIdp).where(UpstreamIdp.tenant_id == tenant.id)
    if enabled_only:
        stmt = stmt.where(UpstreamIdp.enabled.is_(True))
    return list(db.session.execute(stmt.order_by(UpstreamIdp.alias)).scalars())


def for_domain(tenant, domain):
    """Enabled upstreams this email domain is routed to."""
    return [u for u in list_upstreams(tenant, enabled_only=True) if domain in (u.domains or [])]


@dataclass
class Route:
    """Where an email goes: ``upstreams`` (one: redirect; several: buttons), ``password``,
    or ``refused`` with a message code (``domain_not_allowed``, ``wrong_tenant``)."""

    kind: str
    upstreams: list
    code: str | None = None


def route(tenant, email, user=None):
    """Email first (DESIGN §4): the domain picks the route, never whether an account exists —
    except that a user an administrator marked external always signs in with a password."""
    domain = email.rsplit("@", 1)[-1]
    upstreams = for_domain(tenant, domain)
    if user is not None and user.is_external and tenant.password_login:
        return Route("password", [])
    if upstreams:
        return Route("upstreams", upstreams)
    allowed = tenant.settings.get("allowed_domains") or []
    if allowed and domain not in allowed:
        return Route("refused", [], _not_here(tenant, domain))
    if tenant.password_login:
        return Route("password", [])
    return Route("refused", [], _not_here(tenant, domain))


def _not_here(tenant, domain):
    """Another tenant claims this domain: the user is at the wrong address (Flexopus)."""
    others = db.session.execute(select(Tenant).where(Tenant.id != tenant.id)).scalars()
    for other in others:
        if domain in (other.settings or {}).get("domains", []):
            return "wrong_tenant"
    return "domain_not_allowed"
