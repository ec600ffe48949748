"""Clients kept per process, and forgotten as soon as any node changes one (PostgreSQL).

Every token, introspection and revocation request authenticates its client, and reading
the client row through the ORM was a fifth of a client-credentials token's work. Clients
change rarely, but a deleted client or a replaced secret must stop working at once on every
node: a time-to-live like the tenant cache's would let it work on for that long.

So the database says when a client changed. A trigger on ``clients`` (migration 0004)
sends ``NOTIFY idp_clients`` with the row's ``tenant_id:client_id`` on every UPDATE and
DELETE — the services', a cascade's, an operator's in psql — and PostgreSQL delivers it to
every listening connection when, and only if, that transaction commits. Each process has
one listener thread on a connection of its own (``change_listener.Listener``), started by
the first lookup.

- A client is kept only while the listener is connected and has applied every
  notification delivered so far (``Listener.quiet``). Before it is (at start, after a
  lost connection, during a PostgreSQL restart) every lookup reads the database, and each
  (re)connection forgets everything kept, since notifications sent meanwhile were lost.
- A lookup during which a notification arrived does not keep what it read (``generation``):
  the row it read may be the one the notification is about.
- This process's own changes (``clients.update_client``, ``delete_client``) are forgotten
  at once, without waiting for the notification.
- A silent connection (a network partition) stops being trusted within a heartbeat
  (``change_listener``). As a last guard against a notification lost while the
  connection seemed alive, a kept client is read again after ``MAX_AGE`` seconds.

Only what reads a client and never changes it goes through here: Authlib's
``query_client`` hook (``server._query_client``) and the authorization request's first
check (``request_checks.validate_client_and_redirect``), which a sign-in passes twice.
Code that changes a client loads it itself, into its request's session, with
``clients.query_client``. ``IDP_CLIENT_CACHE=0`` turns this off
(needed behind a PgBouncer in transaction mode, which does not carry LISTEN).
"""

import logging
import time

from flask import current_app

from idp.extensions import db
from idp.services import clients
from idp.services.change_listener import ListenedCache

MAX_AGE = 60.0  # seconds: the backstop, not the mechanism
MAX_ENTRIES = 10_000  # clients kept per process; when full, all are forgotten
APPLICATION_NAME = "idp-client-cache"  # the listener's thread and connection

log = logging.getLogger("idp.client_cache")


def query_client(tenant, client_id):
    """``clients.query_client``, from this process's cache when it may be trusted."""
    cache = ClientCache.of(current_app)
    if cache is None:
        return clients.query_client(tenant, client_id)
    # The row now, not what this request read; kept under ``"tenant_id:client_id"``.
    return cache.lookup(
        f"{tenant.id}:{client_id}", lambda: clients.read_client(tenant, client_id)
    )


def forget(tenant_id, client_id):
    """Drop a client this process changed (its notification follows, for the other nodes)."""
    cache = current_app.extensions.get(ClientCache.EXTENSION)
    if cache is not None:
        cache.forget(f"{tenant_id}:{client_id}")


class ClientCache(ListenedCache):
    """Kept clients by ``"tenant_id:client_id"``, trusted only while ``live``."""

    EXTENSION = "idp.client_cache"
    SETTING = "CLIENT_CACHE"
    MAX_AGE = MAX_AGE
    APPLICATION_NAME = APPLICATION_NAME
    LABEL = "client cache"
    log = log
    CHANNELS = ("idp_clients",)
    TRIGGERS = (("clients_changed", "clients"),)  # migration 0004
    RECHECK = MAX_AGE  # seconds before a listener that found no trigger looks again

    def _keep(self, key, client):
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        db.session.expunge(client)  # read-only from here on, shared by threads
        self._entries[key] = (time.monotonic(), client)

    def notified(self, channel, payload):
        """The listener's news: ``tenant_id:client_id`` changed, or (empty) all of them."""
        self.forget(payload or None)

    def forget(self, key=None):
        """Drop one client, or all of them (``None``)."""
        with self._lock:
            self.generation += 1
            if key is None:
                self._clear()
            else:
                self._entries.pop(key, None)

    def _clear(self):
        self._entries.clear()
