"""``idp keys …``: signing keys and their rotation."""

import click
from flask import current_app
from flask.cli import with_appcontext

from idp.cli.common import emit
from idp.cli.common import idp_group
from idp.cli.common import retain_seconds
from idp.services import keys


@idp_group.group("keys")
def keys_group():
    """Signing keys."""


@keys_group.command("list")
@with_appcontext
def keys_list():
    """List keys with their state (next, active, retired)."""
    for entry in keys.list_keys(current_app.config["KEYS_DIR"]):
        click.echo(f"{entry['kid']}\t{entry['alg']}\t{entry['state']}")


@keys_group.command("rotate")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def keys_rotate(as_json):
    """Promote next → active, retire active, create a new next; prune expired retired keys."""
    entries = keys.rotate_keys(current_app.config["KEYS_DIR"], retain_seconds())
    emit(
        as_json,
        {"keys": entries},
        "\n".join(f"{e['kid']}\t{e['alg']}\t{e['state']}" for e in entries),
    )
