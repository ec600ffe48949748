"""Fixtures: one live idp per test session, on SQLite or PostgreSQL (``IDP_TEST_DB``).

Each test makes its own tenant, so tests never see each other's clients or users.
"""

import os
import secrets
import uuid
from types import SimpleNamespace

import psycopg
import pyotp
import pytest
from sqlalchemy import update

from idp import create_app
from idp.extensions import db
from idp.models import User
from idp.services import clients
from idp.services import keys
from idp.services import tenants
from idp.services import users
from tests.helpers import Browser
from tests.helpers import LiveServer
from tests.helpers import register_phone
from tests.smtp import smtp_server  # noqa: F401  (the fixture, shared with every test)

PG_ADMIN_URL = os.environ.get("IDP_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _database_url(tmp_path_factory):
    """A fresh database: a SQLite file, or a new PostgreSQL database dropped at the end."""
    if os.environ.get("IDP_TEST_DB", "sqlite") == "postgresql":
        name = f"idp_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", name
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "idp.db"), None


def _drop_database(name):
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_app(tmp_path_factory, database_url, **overrides):
    """An app on ``database_url`` with its own keys folder; schema migrated, keys created."""
    from flask_migrate import upgrade

    keys_dir = str(tmp_path_factory.mktemp("keys"))
    config = {
        "ENV": "testing",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": database_url,
        "KEYS_DIR": keys_dir,
        "DEMO_RP": False,
        "RATELIMIT_ENABLED": False,
        "BREACH_API_URL": "",  # no internet here; the range API has its own local-server tests
        "OUTBOX_DIR": str(tmp_path_factory.mktemp("outbox")),
        **overrides,
    }
    app = create_app(config)
    with app.app_context():
        upgrade()
    keys.ensure_keys(keys_dir)
    APPS.append(app)
    return app


# Every app made in this session, kept alive until the end: a pool dropped by the
# garbage collector closes its connections in __del__, which psycopg warns about.
APPS = []


def dispose_apps():
    """Close every app's pool (before the database is dropped)."""
    while APPS:
        with APPS.pop().app_context():
            db.engine.dispose()


@pytest.fixture(scope="session")
def database(tmp_path_factory):
    """The test session's database URL."""
    url, pg_name = _database_url(tmp_path_factory)
    yield url
    dispose_apps()
    if pg_name:
        _drop_database(pg_name)


@pytest.fixture(scope="session")
def app(tmp_path_factory, database):
    """The application under test; its pool is closed before the database is dropped."""
    return make_app(tmp_path_factory, database)


@pytest.fixture(scope="session")
def server(app):
    """idp over real HTTP on a loopback port."""
    live = LiveServer(app).start()
    yield live
    live.stop()


class Factory:
    """Creates tenants, clients and users directly through the services (seeding)."""

    def __init__(self, app):
        self.app = app

    def tenant(self, **settings):
        """A fresh tenant with a unique slug; returns (id, slug) as a namespace."""
        with self.app.app_context():
            tenant = tenants.create_tenant(
                f"t-{uuid.uuid4().hex[:10]}", "Test Org", settings=settings
            )
            return SimpleNamespace(id=tenant.id, slug=tenant.slug)

    def client(self, tenant, **metadata):
        """A confidential first-party client with refresh tokens; returns (client_id, secret)."""
        first_party = metadata.pop("first_party", True)
        metadata.setdefault("redirect_uris", ["https://rp.example/cb"])
        metadata.setdefault("grant_types", ["authorization_code", "refresh_token"])
        with self.app.app_context():
            client, secret = clients.create_client(
                tenants.query_tenant(tenant.slug), "Test RP", metadata, first_party=first_party
            )
            return client.client_id, secret

    def user(self, tenant, email=None, password="Correct-Horse-9", **kwargs):
        """An active user with an enrolled authenticator; returns (email, password).

        The authenticator's secret is registered with the scripted browser, which
        answers the second-factor step like the user's phone would.
        """
        email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
        kwargs.setdefault("active", True)
        kwargs.setdefault("totp_secret", pyotp.random_base32())
        with self.app.app_context():
            tenant_row = tenants.query_tenant(tenant.slug)
            user = users.create_user(tenant_row, email, password=password, **kwargs)
            user_id = user.id
        if kwargs["totp_secret"]:
            register_phone(email, kwargs["totp_secret"], self._replay_reset(user_id))
        return email, password

    def _replay_reset(self, user_id):
        """Protocol tests sign one user in many times a minute; TOTP replay protection has
        its own tests, so here each sign-in may reuse the current time step."""

        def reset():
            with self.app.app_context():
                db.session.execute(
                    update(User).where(User.id == user_id).values(totp_last_step=None)
                )
                db.session.commit()

        return reset


@pytest.fixture
def factory(app):
    """Seeding helpers bound to the session's app."""
    return Factory(app)


@pytest.fixture
def browser(server):
    """A fresh scripted browser (no cookies)."""
    return Browser(server)
