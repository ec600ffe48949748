"""The ``idp`` command group (DESIGN §8): each command a few lines calling services.

Every command that creates something accepts ``--json`` and then prints one JSON object.
Commands live in one module per noun; importing them attaches them to the group.
"""

import os
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup
from flask.cli import with_appcontext

from idp.cli import clients  # noqa: F401  (attaches ``idp client``)
from idp.cli import keys  # noqa: F401  (attaches ``idp keys``)
from idp.cli import tenants  # noqa: F401  (attaches ``idp tenant``)
from idp.cli import upstreams  # noqa: F401  (attaches ``idp upstream``)
from idp.cli import users  # noqa: F401  (attaches ``idp user``)
from idp.cli.common import idp_group


@idp_group.command("init")
@click.option(
    "--demo", is_flag=True, help="Seed the demo tenant, client and user on a new database."
)
@with_appcontext
def init_command(demo):
    """Create or upgrade the schema; create signing keys if none."""
    from flask_migrate import upgrade

    from idp.services import seed
    from idp.services.keys import ensure_keys

    upgrade()
    created = ensure_keys(current_app.config["KEYS_DIR"])
    click.echo("signing keys created" if created else "signing keys present")
    if demo:
        click.echo(seed.seed_demo(current_app.config))


@idp_group.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--workers", default=None, type=int, help="Default: one per CPU (measured).")
@click.option(
    "--threads",
    default=None,
    type=click.IntRange(min=1),
    help="Threads per worker: granian's blocking threads (default 2, measured), or "
    "gunicorn's gthread workers (default: none, sync workers).",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    help="A line per request on stdout. Off by default, as in both servers: the reverse "
    "proxy logs every request, and at granian's rates the line costs a third of a "
    "discovery answer (bench/README.md).",
)
@click.option(
    "--server",
    type=click.Choice(["granian", "gunicorn"]),
    default="granian",
    help="The WSGI server. granian (Rust HTTP, the default) served discovery and JWKS "
    "2.6-5.8x and the token endpoints up to a quarter faster than gunicorn in "
    "bench/README.md's sweeps; gunicorn stays available.",
)
def serve_command(host, port, workers, threads, access_log, server):
    """Run the production WSGI server with the production settings (see bench/README.md).

    Neither server is told to trust proxy headers: idp reads X-Forwarded-For itself, only
    as far as IDP_TRUSTED_PROXIES says (docs/deploy.md). Both drain the requests in
    flight on SIGTERM.
    """
    workers = str(workers or os.cpu_count() or 1)  # CPU-bound work: one process per core
    if server == "granian":
        argv = [
            "granian",
            "--interface",
            "wsgi",
            "--workers",
            workers,
            # Two threads per process overlap one request's database wait with another's
            # Python (bench/README.md: 2×2 beat 2×1, 2×4 and 3×1).
            "--blocking-threads",
            str(threads or 2),
            "--host",
            host,
            "--port",
            str(port),
            "--respawn-failed-workers",  # as gunicorn's master does
            # SIGTERM drains the requests in flight; a worker still busy after 30 s (a
            # client holding its connection open) is killed, as gunicorn's graceful timeout.
            "--workers-kill-timeout",
            "30",
            "--no-ws",
            "--access-log" if access_log else "--no-access-log",
            "wsgi:app",
        ]
    else:
        argv = [
            "gunicorn",
            "--workers",
            workers,
            "--bind",
            f"{host}:{port}",
            "--forwarded-allow-ips",
            "",
        ]
        if access_log:
            argv += ["--access-logfile", "-"]
        if threads:
            argv += ["--worker-class", "gthread", "--threads", str(threads)]
        argv.append("wsgi:app")
    # The server installed beside this Python (the virtualenv's bin), whatever PATH says.
    beside = os.path.join(os.path.dirname(sys.executable), argv[0])
    os.execvp(beside if os.access(beside, os.X_OK) else argv[0], argv)


def register(app):
    """Attach the group to the app: ``flask --app wsgi idp …``."""
    app.cli.add_command(idp_group)


def main():
    """Console script ``idp``: the same commands without typing ``flask --app wsgi``."""
    from idp import create_app

    cli = FlaskGroup(create_app=lambda: create_app(), add_default_commands=False)
    for name, command in idp_group.commands.items():
        cli.add_command(command, name)
    sys.exit(cli.main(prog_name="idp"))
