"""Shared pieces of the ``idp`` commands: the group, JSON output, tenant lookup."""

import json

import click
from flask import current_app

from idp.services import tenants


def emit(as_json, payload, text):
    """Print one JSON object with ``--json``, else a human line."""
    click.echo(json.dumps(payload, indent=2) if as_json else text)


def require_tenant(slug):
    """The tenant, or a clear CLI error."""
    tenant = tenants.query_tenant(slug)
    if tenant is None:
        raise click.ClickException(f"no tenant {slug!r}")
    return tenant


def retain_seconds():
    """How long a retired signing key stays published: the longest token lifetime, plus slack."""
    config = current_app.config
    return max(config["ACCESS_TOKEN_TTL"], config["ID_TOKEN_TTL"]) + 300


@click.group("idp")
def idp_group():
    """Operate idp: schema, tenants, clients, users, keys."""
