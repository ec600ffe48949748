"""Clients kept per process (``idp.services.client_cache``) stop working as soon as they
change, wherever the change is made.

PostgreSQL only: the cache relies on its LISTEN/NOTIFY (on SQLite nothing is kept). A
change "elsewhere" is made on a connection of its own, as another node or an operator in
psql would; it reaches this process as a notification, so those tests wait for it (a bound,
not a measurement: far below the cache's ``MAX_AGE`` backstop, which is not what they test).
"""

import base64
import logging
import os
import threading

import psycopg
import pytest
from sqlalchemy import event

from idp.extensions import db
from idp.models.client import hash_secret
from idp.services import change_listener
from idp.services import client_cache
from idp.services import clients
from idp.services import tenants
from tests.cluster.nodes import wait_until

pytestmark = pytest.mark.skipif(
    os.environ.get("IDP_TEST_DB", "sqlite") != "postgresql",
    reason="the client cache needs PostgreSQL (LISTEN/NOTIFY); on SQLite nothing is kept",
)


class Kept:
    """A client-credentials client of a fresh tenant, and the statements that read clients."""

    def __init__(self, app, factory):
        self.app = app
        self.tenant = factory.tenant()
        self.client_id, self.secret = factory.client(
            self.tenant, grant_types=["client_credentials"]
        )
        self.http = app.test_client()
        self.reads = []
        with app.app_context():
            self.engine = db.engine
            self.url = db.engine.url.set(drivername="postgresql").render_as_string(False)
        event.listen(self.engine, "before_cursor_execute", self._count)

    def _count(self, conn, cursor, statement, *args):
        if "FROM clients" in statement:
            self.reads.append(statement)

    def close(self):
        event.remove(self.engine, "before_cursor_execute", self._count)

    def token(self, secret=None):
        """A client-credentials request's status code; how many client reads it made."""
        pair = f"{self.client_id}:{secret or self.secret}".encode()
        before = len(self.reads)
        response = self.http.post(
            f"/{self.tenant.slug}/token", data={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic " + base64.b64encode(pair).decode()},
        )  # fmt: skip
        return response.status_code, len(self.reads) - before

    def elsewhere(self, statement, *params):
        """Run ``statement`` on a connection of its own (another node; psql)."""
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(statement, params)

    def listening(self):
        rows = self._activity("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s")
        return rows[0][0] > 0

    def _activity(self, query):
        with psycopg.connect(self.url, autocommit=True) as connection:
            return connection.execute(query, (client_cache.APPLICATION_NAME,)).fetchall()

    def warm(self):
        """Wait until this process listens (its first lookup starts the listener), then until
        it keeps the client: its next use reads nothing."""
        self.token()
        wait_until(self.listening, 10, "the client cache listens")
        wait_until(lambda: self.token()[0] == 200 and self.token() == (200, 0), 10, "kept")


@pytest.fixture
def kept(app, factory):
    kept = Kept(app, factory)
    yield kept
    kept.close()


def test_a_kept_client_is_not_read_again(kept):
    kept.warm()
    assert [kept.token() for _ in range(3)] == [(200, 0)] * 3


def test_a_secret_replaced_elsewhere_stops_working(kept):
    kept.warm()
    kept.elsewhere(
        "UPDATE clients SET secret_hash = %s WHERE client_id = %s",
        hash_secret("the-new-secret"), kept.client_id,
    )  # fmt: skip
    wait_until(lambda: kept.token()[0] == 401, 10, "the old secret refused")
    assert kept.token("the-new-secret")[0] == 200


def test_a_client_deleted_elsewhere_stops_working(kept):
    kept.warm()
    kept.elsewhere("DELETE FROM clients WHERE client_id = %s", kept.client_id)
    wait_until(lambda: kept.token()[0] == 401, 10, "the deleted client refused")


def test_a_change_made_in_this_process_applies_at_once(kept, app, monkeypatch):
    """No waiting: the process forgets its own change without the notification, which this
    test holds back (the listener's forgetting is switched off)."""
    kept.warm()
    forget = client_cache.ClientCache.forget

    def only_this_thread(cache, key=None):
        if threading.current_thread().name != client_cache.APPLICATION_NAME:
            forget(cache, key)

    monkeypatch.setattr(client_cache.ClientCache, "forget", only_this_thread)
    with app.app_context():
        tenant = tenants.query_tenant(kept.tenant.slug)
        client = clients.query_client(tenant, kept.client_id)
        metadata = {**client.meta, "grant_types": ["authorization_code"]}
        clients.update_client(client, client.name, {**metadata, "response_types": ["code"]})
    status, reads = kept.token()
    assert (status, reads) == (400, 1)  # read again: unauthorized_client now


def test_a_lost_listener_forgets_everything_and_listens_again(kept):
    kept.warm()
    kept._activity(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s"
    )
    # Whether this change comes while the listener is down (its notification lost) or after
    # it is back, the old secret must stop working.
    kept.elsewhere(
        "UPDATE clients SET secret_hash = %s WHERE client_id = %s",
        hash_secret("rotated-while-down"), kept.client_id,
    )  # fmt: skip
    wait_until(lambda: kept.token()[0] == 401, 10, "the old secret refused")
    kept.secret = "rotated-while-down"
    kept.warm()  # listening again, and keeping clients again


def test_while_it_cannot_listen_every_lookup_reads_the_database(kept, monkeypatch, caplog):
    kept.warm()

    def refused(self, psycopg):
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(change_listener.Listener, "_connect", refused)
    with caplog.at_level(logging.WARNING, logger="idp.client_cache"):
        kept._activity(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s"
        )
        wait_until(lambda: not kept.listening() and kept.token() == (200, 1), 10, "reads")
        assert [kept.token() for _ in range(3)] == [(200, 1)] * 3
    assert any("client cache: lost idp_clients" in r.getMessage() for r in caplog.records)
    monkeypatch.undo()
    kept.warm()  # back by itself once it can connect


def test_without_the_trigger_nothing_is_kept(kept, monkeypatch, caplog):
    """A schema without migration 0004's trigger (nodes started before ``idp init``) would
    never notify: the cache then keeps nothing, and says so."""
    kept.warm()
    monkeypatch.setattr(client_cache.ClientCache, "RECHECK", 0.2)  # how soon it looks again
    kept.elsewhere("DROP TRIGGER clients_changed ON clients")
    try:
        with caplog.at_level(logging.WARNING, logger="idp.client_cache"):
            kept._activity(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s"
            )
            def said():
                return any("no clients_changed trigger" in r.getMessage() for r in caplog.records)

            wait_until(said, 10, "the listener finds no trigger")
            assert [kept.token() for _ in range(3)] == [(200, 1)] * 3
    finally:
        kept.elsewhere(
            "CREATE TRIGGER clients_changed AFTER UPDATE OR DELETE ON clients "
            "FOR EACH ROW EXECUTE FUNCTION idp_client_changed()"
        )
    kept.warm()  # the trigger is back: kept again


def test_a_change_notified_mid_request_does_not_break_it(kept, app):
    """The authorization endpoint looks its client up several times in one request; a
    notification in between makes the next lookup read again, and that is no error."""
    kept.warm()
    cache = app.extensions["idp.client_cache"]
    with app.test_request_context():
        tenant = tenants.query_tenant(kept.tenant.slug)
        cache.forget()  # a notification: nothing kept
        first = client_cache.query_client(tenant, kept.client_id)
        cache.forget()  # another, before the request looks again
        again = client_cache.query_client(tenant, kept.client_id)  # read again: no error
        assert again.client_id == first.client_id == kept.client_id


def test_what_a_request_read_before_a_change_is_not_what_gets_kept(kept, app):
    """A request that read the client, then sees the change notified, keeps the new row."""
    kept.warm()
    cache = app.extensions["idp.client_cache"]
    with app.test_request_context():
        tenant = tenants.query_tenant(kept.tenant.slug)
        cache.forget()
        clients.query_client(tenant, kept.client_id)  # this request's own read, then:
        notified = cache.generation
        kept.elsewhere(
            "UPDATE clients SET secret_hash = %s WHERE client_id = %s",
            hash_secret("changed-mid-request"), kept.client_id,
        )  # fmt: skip
        wait_until(lambda: cache.generation > notified, 10, "the change notified")
        kept_now = client_cache.query_client(tenant, kept.client_id)
        assert kept_now.secret_hash == hash_secret("changed-mid-request")
    assert kept.token()[0] == 401
    assert kept.token("changed-mid-request") == (200, 0)  # kept, and the new one
