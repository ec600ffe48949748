"""``idp user …``: accounts, from seeding to the invitation lifecycle."""

import click
from flask.cli import with_appcontext

from idp.cli.common import emit
from idp.cli.common import idp_group
from idp.cli.common import require_tenant
from idp.errors import ValidationFailed
from idp.services import users


@idp_group.group("user")
def user_group():
    """Users of a tenant."""


@user_group.command("create")
@click.option("--tenant", "slug", required=True)
@click.option("--email", required=True)
@click.option("--name", default="")
@click.option("--password", default=None)
@click.option("--totp-secret", default=None, help="Base32 secret of an existing authenticator.")
@click.option("--active", is_flag=True, help="Skip the invitation: the account can sign in now.")
@click.option("--admin", is_flag=True)
@click.option(
    "--external", is_flag=True, help="Signs in with a password even where SSO routes its domain."
)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def user_create(slug, email, name, password, totp_secret, active, admin, external, as_json):
    """Create a user (seeding, and migrating users from another IdP)."""
    try:
        user = users.create_user(
            require_tenant(slug),
            email,
            password=password,
            name=name,
            totp_secret=totp_secret,
            active=active,
            admin=admin,
            external=external,
        )
    except ValidationFailed as exc:
        raise click.ClickException(exc.message) from None
    payload = {
        "sub": user.sub,
        "email": user.email,
        "state": user.state,
        "admin": user.is_admin,
        "external": user.is_external,
    }
    emit(as_json, payload, f"created {user.email} ({user.state}), sub {user.sub}")


def _lifecycle():
    from idp.services import lifecycle

    return lifecycle


def _fail(exc):
    raise click.ClickException(exc.message) from None


@user_group.command("invite")
@click.option("--tenant", "slug", required=True)
@click.option("--email", required=True)
@click.option("--name", default="")
@click.option("--welcome-email/--no-welcome-email", default=True, help="Send the welcome mail.")
@click.option("--expires", default=None, help="Access expiry date, YYYY-MM-DD.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def user_invite(slug, email, name, welcome_email, expires, as_json):
    """Invite a user: the first sign-in proves the email, sets a password, enrols an app."""
    try:
        user = _lifecycle().invite(require_tenant(slug), email, name, welcome_email, expires)
    except ValidationFailed as exc:
        _fail(exc)
    payload = {
        "sub": user.sub,
        "email": user.email,
        "state": user.state,
        "activation_deadline": user.activation_deadline,
        "access_expires_at": user.access_expires_at,
        "welcome_email": welcome_email,
    }
    emit(as_json, payload, f"invited {user.email}; activate before {user.activation_deadline}")


@user_group.command("import")
@click.option("--tenant", "slug", required=True)
@click.option("--welcome-email/--no-welcome-email", default=True)
@click.option("--json", "as_json", is_flag=True)
@click.argument("csv_file", type=click.File(encoding="utf-8-sig"))
@with_appcontext
def user_import(slug, welcome_email, as_json, csv_file):
    """Invite every row of a CSV (columns: email, name, expires) — e.g. weeks before a rollout."""
    try:
        report = _lifecycle().import_csv(require_tenant(slug), csv_file.read(), welcome_email)
    except ValidationFailed as exc:
        _fail(exc)
    payload = {
        "invited": report.invited,
        "refused": [{"line": n, "email": e, "reason": r} for n, e, r in report.refused],
    }
    lines = [f"invited {len(report.invited)}"] + [
        f"line {n}: {e}: {r}" for n, e, r in report.refused
    ]
    emit(as_json, payload, "\n".join(lines))


def _account_command(name, doc, action, done, extra_options=()):
    """A ``idp user NAME --tenant --email`` command that runs one lifecycle action."""

    def command(slug, email, **options):
        try:
            user = action(_lifecycle())(require_tenant(slug), email, **options)
        except ValidationFailed as exc:
            _fail(exc)
        click.echo(f"{user.email}: {done(user)}")

    command.__doc__ = doc
    for option in (
        *extra_options,
        click.option("--email", required=True),
        click.option("--tenant", "slug", required=True),
    ):
        command = option(command)
    return user_group.command(name)(with_appcontext(command))


_account_command(
    "expire",
    "Set the access expiry date (or end access now).",
    lambda lc: lc.expire,
    lambda u: f"access expires at {u.access_expires_at}",
    [click.option("--on", "when", default=None, help="Expiry date YYYY-MM-DD (default: now).")],
)
_account_command(
    "reset-mfa",
    "Remove the authenticator and recovery codes; the next sign-in enrols a new app.",
    lambda lc: lc.reset_mfa,
    lambda u: "authenticator reset",
)
_account_command(
    "resend-invite",
    "Send the welcome mail again, with a fresh activation deadline.",
    lambda lc: lc.resend_invitation,
    lambda u: "invitation sent again",
)
for _name, _state, _doc in (
    ("disable", "disabled", "Disable an account: sessions end, tokens are revoked."),
    ("enable", "active", "Enable an account again (invited anew if it has no password)."),
    ("delete", "deleted", "Delete an account: credentials wiped, the subject never reused."),
):
    _account_command(
        _name,
        _doc,
        lambda lc, state=_state: lambda tenant, email: lc.set_state(tenant, email, state),
        lambda u: u.state,
    )
