"""Token lookups run on psycopg directly (``idp.services.direct_reads``) and still answer,
and fail, exactly as through SQLAlchemy."""

import os

import psycopg
import pytest
from sqlalchemy import bindparam
from sqlalchemy import select

from idp.extensions import autocommit_connection
from idp.extensions import db
from idp.models import Token
from idp.services import client_cache
from idp.services import token_cache
from idp.services import tokens
from idp.services.direct_reads import DirectRead
from tests.cluster.cluster import jwt_claims
from tests.conftest import PG_ADMIN_URL
from tests.integration.realm import Realm

postgresql_only = pytest.mark.skipif(
    os.environ.get("IDP_TEST_DB", "sqlite") != "postgresql",
    reason="the direct path is psycopg's; it kills PostgreSQL backends",
)


def _jti(access_token):
    return jwt_claims(access_token)["jti"]


def test_a_direct_read_gives_the_row_sqlalchemy_gives(realm, app):
    access_token = realm.tokens()["access_token"]
    jti = _jti(access_token)
    with app.app_context(), db.engine.connect() as connection:
        direct = tokens._BY_JTI.one_or_none(connection, {"key": jti})
        through_sqlalchemy = connection.execute(tokens._BY_JTI.statement, {"key": jti}).one()
        missing = tokens._BY_JTI.one_or_none(connection, {"key": "no such jti"})
    assert direct._fields == tuple(through_sqlalchemy._fields)
    assert tuple(direct) == tuple(through_sqlalchemy)
    assert direct.user_sub is not None and direct.jti == jti
    assert missing is None


@postgresql_only
def test_a_driver_error_is_handled_by_sqlalchemy(app):
    """A statement psycopg refuses runs again through SQLAlchemy, which raises its own error."""
    broken = DirectRead(select(Token.id).where(Token.jti == bindparam("key")), "Broken")
    broken._sql["postgresql"] = "SELECT no_such_column FROM tokens"
    with app.app_context(), db.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        assert broken.one_or_none(connection, {"key": "x"}) is None  # SQLAlchemy's answer


@postgresql_only
def test_inside_a_transaction_sqlalchemy_runs_the_read(app):
    """A statement psycopg failed would abort the transaction under SQLAlchemy's feet."""
    broken = DirectRead(select(Token.id).where(Token.jti == bindparam("key")), "Broken")
    broken._sql["postgresql"] = "SELECT no_such_column FROM tokens"
    with app.app_context(), db.engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")  # a transaction is open
        assert broken.one_or_none(connection, {"key": "x"}) is None
        assert connection.exec_driver_sql("SELECT 2").scalar() == 2  # and still usable
        connection.rollback()


def _kill_pooled_connections(app):
    """Terminate every backend of the app's pool (not the caches' listeners), with at
    least two connections in the pool: the second request must not get a dead one too."""
    with app.app_context():
        held = [db.engine.connect() for _ in range(2)]
        for connection in held:
            connection.exec_driver_sql("SELECT 1")
            connection.close()
        database = db.engine.url.database
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
            " AND pid <> pg_backend_pid() AND application_name NOT IN (%s, %s)",
            (database, client_cache.APPLICATION_NAME, token_cache.APPLICATION_NAME),
        ).fetchall()
    assert len(killed) >= 2


@postgresql_only
@pytest.mark.parametrize("endpoint", ["userinfo", "introspection"])
def test_a_dead_connection_is_one_503_then_the_pool_is_fresh(realm, app, endpoint):
    access_token = realm.tokens()["access_token"]  # the tenant is kept: the fast paths serve

    def ask():
        if endpoint == "userinfo":
            return realm.userinfo(access_token)
        return realm.introspect(access_token)

    assert ask().status_code == 200
    _kill_pooled_connections(app)
    if "idp.token_cache" in app.extensions:  # a token it keeps would need no connection
        app.extensions["idp.token_cache"].forget()
    failed = ask()
    assert failed.status_code == 503
    assert failed.json()["error"] == "temporarily_unavailable"
    # SQLAlchemy saw the disconnect and dropped the whole pool: no second dead connection.
    again = ask()
    assert again.status_code == 200
    assert again.json()["active" if endpoint == "introspection" else "sub"]


@postgresql_only
def test_a_client_credentials_token_on_a_dead_connection_is_one_503_and_no_row(
    server, factory, browser, app
):
    """Its only statement, the INSERT, runs on ``autocommit_connection`` (not the session):
    a dead connection there is SQLAlchemy's disconnect too, and nothing is written."""
    realm = Realm(server, factory, browser, client_metadata={"grant_types": ["client_credentials"]})

    def rows():
        with app.app_context():
            found = select(Token.id).where(Token.client_id == realm.client_id)
            return len(db.session.execute(found).all())

    assert realm.token(grant_type="client_credentials").status_code == 200
    _kill_pooled_connections(app)
    failed = realm.token(grant_type="client_credentials")
    assert failed.status_code == 503
    assert failed.json()["error"] == "temporarily_unavailable"
    assert rows() == 1
    again = realm.token(grant_type="client_credentials")
    assert again.status_code == 200 and again.json()["access_token"]
    assert rows() == 2


@postgresql_only
def test_the_autocommit_connection_goes_back_to_the_pool_as_it_came(app):
    with app.app_context():
        with autocommit_connection() as connection:
            driver = connection.connection.driver_connection
            connection.exec_driver_sql("SELECT 1")
            assert driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert driver.autocommit is False  # the pool's other users get transactions again
        with db.engine.connect() as other:
            other.exec_driver_sql("SELECT 1")
            status = other.connection.driver_connection.info.transaction_status
            assert status == psycopg.pq.TransactionStatus.INTRANS
            other.rollback()
