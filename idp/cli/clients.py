"""``idp client …``: OAuth clients and initial access tokens for registration."""

import json

import click
from flask.cli import with_appcontext

from idp.cli.common import emit
from idp.cli.common import idp_group
from idp.cli.common import require_tenant
from idp.errors import ValidationFailed
from idp.services import clients
from idp.services import registration_tokens


@idp_group.group("client")
def client_group():
    """OAuth clients (relying parties)."""


@client_group.command("create")
@click.option("--tenant", "slug", required=True)
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--post-logout-redirect-uri", "post_logout", multiple=True)
@click.option("--public", is_flag=True, help="A public client (no secret, PKCE required).")
@click.option("--grant-type", "grant_types", multiple=True)
@click.option("--auth-method", default=None, help="token_endpoint_auth_method")
@click.option("--jwks-file", type=click.File(), help="Public JWKS for private_key_jwt.")
@click.option("--id-token-alg", default="RS256", type=click.Choice(["RS256", "ES256"]))
@click.option(
    "--access-token-alg",
    default="RS256",
    type=click.Choice(["RS256", "ES256"]),
    help="Signature of its JWT access tokens (RS256: every RFC 9068 resource server).",
)
@click.option("--scope", default=None)
@click.option("--first-party", is_flag=True, help="Trusted: no consent screen.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def client_create(
    slug,
    name,
    redirect_uris,
    post_logout,
    public,
    grant_types,
    auth_method,
    jwks_file,
    id_token_alg,
    access_token_alg,
    scope,
    first_party,
    as_json,
):
    """Register a client; the secret is printed once and stored hashed."""
    metadata = {
        "redirect_uris": list(redirect_uris),
        "post_logout_redirect_uris": list(post_logout),
        "grant_types": list(grant_types) or ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": auth_method or ("none" if public else "client_secret_basic"),
        "id_token_signed_response_alg": id_token_alg,
        "access_token_signed_response_alg": access_token_alg,
    }
    if scope:
        metadata["scope"] = scope
    if jwks_file:
        metadata["jwks"] = json.load(jwks_file)
    try:
        client, secret = clients.create_client(
            require_tenant(slug), name, metadata, first_party=first_party
        )
    except ValidationFailed as exc:
        raise click.ClickException(exc.message) from None
    info = clients.describe_client(client, secret)
    emit(
        as_json,
        info,
        f"client_id: {client.client_id}" + (f"\nclient_secret: {secret}" if secret else ""),
    )


@client_group.command("initial-token")
@click.option("--tenant", "slug", required=True)
@click.option("--expires-in", type=click.IntRange(min=1), default=None, help="Lifetime in seconds.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def client_initial_token(slug, expires_in, as_json):
    """Issue an initial access token for dynamic registration (RFC 7591 §3); printed once."""
    from idp.tenancy import endpoint_url

    tenant = require_tenant(slug)
    token, row = registration_tokens.issue_initial_access_token(tenant, expires_in)
    payload = {
        "initial_access_token": token,
        "tenant": tenant.slug,
        "expires_at": row.expires_at,
        "registration_endpoint": endpoint_url(tenant, "register"),
    }
    emit(as_json, payload, f"initial access token: {token}\nexpires: {row.expires_at or 'never'}")
