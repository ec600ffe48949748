"""``idp tenant …``: tenants (isolated realms)."""

import click
from flask import current_app
from flask.cli import with_appcontext

from idp.cli.common import emit
from idp.cli.common import idp_group
from idp.cli.common import require_tenant
from idp.errors import ValidationFailed
from idp.services import tenants


@idp_group.group("tenant")
def tenant_group():
    """Tenants (isolated realms)."""


@tenant_group.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option(
    "--domain", "domains", multiple=True, help="Email domain of this tenant (repeatable)."
)
@click.option("--password-login/--no-password-login", default=True)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def tenant_create(slug, name, domains, password_login, as_json):
    """Create a tenant; its issuer is {IDP_PUBLIC_URL}/SLUG."""
    from idp.tenancy import issuer_for

    try:
        tenant = tenants.create_tenant(slug, name, password_login, {"domains": list(domains)})
    except ValidationFailed as exc:
        raise click.ClickException(exc.message) from None
    issuer = issuer_for(tenant)
    emit(
        as_json,
        {"slug": tenant.slug, "name": tenant.name, "issuer": issuer},
        f"created {slug}: {issuer}",
    )


@tenant_group.command("list")
@with_appcontext
def tenant_list():
    """List tenants."""
    for tenant in tenants.list_tenants():
        click.echo(f"{tenant.slug}\t{tenant.name}")


@tenant_group.command("update")
@click.argument("slug")
@click.option("--name", default=None)
@click.option("--password-policy", type=click.Choice(["nist", "b2c", "flexopus"]), default=None)
@click.option(
    "--reveal-account-state/--conceal-account-state",
    default=None,
    help="Tell unknown or deactivated accounts so at the email step (Azure AD B2C).",
)
@click.option("--activation-days", type=click.IntRange(1, 365), default=None)
@click.option("--brand-color", default=None, help="#rrggbb")
@click.option("--logo-url", default=None)
@click.option("--app-url", default=None, help="Where invitation mails send users to sign in.")
@click.option(
    "--allowed-domain",
    "allowed_domains",
    multiple=True,
    help="Whitelist an email domain for password sign-in (repeatable; replaces the list).",
)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def tenant_update(
    slug,
    name,
    password_policy,
    reveal_account_state,
    activation_days,
    brand_color,
    logo_url,
    app_url,
    allowed_domains,
    as_json,
):
    """Change a tenant's name, password policy, branding, domain whitelist and account states."""
    changes = {
        "password_policy": password_policy,
        "reveal_account_state": reveal_account_state,
        "activation_days": activation_days,
        "brand_color": brand_color,
        "logo_url": logo_url,
        "app_url": app_url,
        "allowed_domains": sorted({d.strip().lower() for d in allowed_domains}) or None,
    }
    try:
        tenant = tenants.update_tenant(require_tenant(slug), name=name, **changes)
    except ValidationFailed as exc:
        raise click.ClickException(exc.message) from None
    emit(
        as_json,
        {"slug": tenant.slug, "name": tenant.name, "settings": tenant.settings},
        f"updated {tenant.slug} (running nodes apply it within "
        f"{current_app.config['TENANT_CACHE_TTL']:g} s: IDP_TENANT_CACHE_TTL)",
    )
