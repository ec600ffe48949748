"""Resolves the tenant from the URL once per request; every query then filters on it (DESIGN §3)."""

from urllib.parse import quote

from flask import current_app
from flask import g
from flask import request


def issuer_for(tenant):
    """The tenant's issuer identifier: ``{IDP_PUBLIC_URL}/{slug}``, no trailing slash."""
    return f"{current_app.config['PUBLIC_URL']}/{tenant.slug}"


def public_url_of(http_request):
    """The URL a request was sent to as its sender saw it: ``IDP_PUBLIC_URL``, the path
    within idp and the query string.

    Behind the TLS-terminating proxy of a production layout a node is reached over plain
    HTTP, and no proxy header is trusted for the scheme (docs/deploy.md), so the URL
    Werkzeug rebuilds (``http://id.example.com/…``) is not the one the client called —
    and Authlib refuses any ``http`` URL that is not loopback: every authorization request
    would end in ``insecure_transport`` and every token request in an error. Authlib is
    given this URL instead, as every URL idp prints comes from ``IDP_PUBLIC_URL``.
    """
    return public_url(http_request.path, http_request.query_string.decode("latin-1"))


def public_url(path, query=""):
    """``IDP_PUBLIC_URL`` + ``path`` within idp (+ ``?query``): see ``public_url_of``."""
    url = current_app.config["PUBLIC_URL"] + quote(path)
    return f"{url}?{query}" if query else url


def endpoint_url(tenant, path):
    """An absolute URL under the tenant's issuer, as published in discovery."""
    return f"{issuer_for(tenant)}/{path.lstrip('/')}"



def resolve_tenant(endpoint, values):
    """URL value preprocessor for tenant blueprints: load the tenant or answer 404."""
    from idp.errors import UnknownTenant
    from idp.services import tenants

    slug = (values or {}).pop("tenant", None)
    tenant = tenants.tenant_for_request(slug) if slug else None
    if tenant is None:
        raise UnknownTenant()
    g.tenant = tenant


def add_tenant_to_urls(endpoint, values):
    """URL defaults for tenant blueprints: ``url_for`` fills the current tenant in."""
    if "tenant" not in values and getattr(g, "tenant", None) is not None:
        values["tenant"] = g.tenant.slug


def client_ip():
    """The caller's address, trusting ``X-Forwarded-For`` only from configured proxies."""
    hops = current_app.config.get("TRUSTED_PROXIES", 0)
    if hops:
        forwarded = [
            p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()
        ]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.remote_addr or "unknown"
