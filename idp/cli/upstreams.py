"""``idp upstream …``: the tenant's upstream identity providers (federation)."""

import click
from flask.cli import with_appcontext

from idp.cli.common import emit
from idp.cli.common import idp_group
from idp.cli.common import require_tenant
from idp.errors import ValidationFailed


@idp_group.group("upstream")
def upstream_group():
    """Upstream OpenID providers: routing by email domain, linking, provisioning."""


def _options(command):
    for option in reversed(
        [
            click.option("--name", "display_name", default=None, help="Shown on its button."),
            click.option("--issuer", default=None),
            click.option("--discovery-url", default=None),
            click.option("--client-id", default=None),
            click.option("--client-secret", default=None, help="Stored encrypted."),
            click.option("--scopes", default=None),
            click.option("--domain", "domains", multiple=True, help="Email domain routed here."),
            click.option("--button-style", default=None),
            click.option("--jit/--no-jit", default=None, help="Create accounts on first sign-in."),
            click.option(
                "--trust-mfa/--no-trust-mfa",
                default=None,
                help="Its MFA stands in for the local authenticator.",
            ),
            click.option("--allow-private-network/--no-allow-private-network", default=None),
            click.option("--enabled/--disabled", default=None),
        ]
    ):
        command = option(command)
    return command


def _describe(row, tenant):
    from idp.federation.views import callback_url

    return {
        "alias": row.alias,
        "name": row.display_name,
        "issuer": row.issuer,
        "client_id": row.client_id,
        "domains": row.domains,
        "jit": row.jit,
        "trust_mfa": row.trust_mfa,
        "enabled": row.enabled,
        "scopes": row.scopes,
        "allow_private_network": row.allow_private_network,
        "redirect_uri": callback_url(row.alias, tenant),
    }


@upstream_group.command("add")
@click.option("--tenant", "slug", required=True)
@click.argument("alias")
@_options
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def upstream_add(slug, alias, client_secret, as_json, **fields):
    """Register an upstream; prints the redirect URI to register there."""
    from idp.federation import registry

    fields = {k: v for k, v in fields.items() if v not in (None, ())}
    tenant = require_tenant(slug)
    try:
        row = registry.add(tenant, alias, client_secret=client_secret, **fields)
    except ValidationFailed as exc:
        raise click.ClickException(exc.message) from None
    info = _describe(row, tenant)
    emit(as_json, info, f"added {alias}; register this redirect URI there: {info['redirect_uri']}")


@upstream_group.command("update")
@click.option("--tenant", "slug", required=True)
@click.argument("alias")
@_options
@with_appcontext
def upstream_update(slug, alias, client_secret, **fields):
    """Change an upstream."""
    from idp.federation import registry

    fields = {k: (list(v) if k == "domains" and v else v) for k, v in fields.items() if v != ()}
    try:
        registry.update(require_tenant(slug), alias, client_secret=client_secret, **fields)
    except ValidationFailed as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"updated {alias}")


@upstream_group.command("list")
@click.option("--tenant", "slug", required=True)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def upstream_list(slug, as_json):
    """List the tenant's upstreams."""
    from idp.federation import registry

    tenant = require_tenant(slug)
    rows = [_describe(row, tenant) for row in registry.list_upstreams(tenant)]
    text = "\n".join(f"{r['alias']}\t{r['issuer']}\t{','.join(r['domains'])}" for r in rows)
    emit(as_json, {"upstreams": rows}, text)


@upstream_group.command("remove")
@click.option("--tenant", "slug", required=True)
@click.argument("alias")
@with_appcontext
def upstream_remove(slug, alias):
    """Remove an upstream and its links."""
    from idp.federation import registry

    try:
        registry.remove(require_tenant(slug), alias)
    except ValidationFailed as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"removed {alias}")


@upstream_group.command("test")
@click.option("--tenant", "slug", required=True)
@click.argument("alias")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def upstream_test(slug, alias, as_json):
    """Check discovery, issuer, JWKS and the client credentials against the live upstream."""
    from idp.federation import health
    from idp.federation import registry
    from idp.federation.views import callback_url

    tenant = require_tenant(slug)
    try:
        row = registry.require(tenant, alias)
    except ValidationFailed as exc:
        raise click.ClickException(exc.message) from None
    report = health.check(row, callback_url(alias, tenant))
    lines = [
        f"{'ok  ' if passed else 'FAIL'} {name}: {detail}" for name, passed, detail in report.checks
    ]
    emit(
        as_json,
        {
            "ok": report.ok,
            "checks": [{"check": n, "ok": p, "detail": d} for n, p, d in report.checks],
        },
        "\n".join(lines),
    )
    if not report.ok:
        raise SystemExit(1)
