"""Access tokens kept per process, forgotten as soon as PostgreSQL says they changed.

A resource server calls userinfo or introspection with the same access token on every
request it serves, for the token's whole life. Each call verified the JWT (once per token
and process: ``KeyRing.verified``) and read the token's row and its user: one round trip
to PostgreSQL. With the pool's checkout that was half of userinfo's Python calls (424 →
221) and a quarter of introspection's (710 → 524), and served on this project's bench
machine it was most of the cost: without it userinfo went from 5,100 to 20,800 answers
a second and introspection from 4,000 to 10,800 (bench/README, 2026-12-04). The row
changes only when the token is revoked (alone, with its family, its user's or its
session's tokens, its client) or its user changes; so, as ``client_cache`` does for
clients, the database says when:

- a trigger on ``tokens`` (migration 0005) sends ``NOTIFY idp_tokens`` with the row's
  ``jti`` when a revocation column changes, on any other UPDATE but a refresh token's
  rotation (which leaves its access token as it was), and when a row still unexpired is
  deleted (cascades included); one on ``users`` sends ``NOTIFY idp_users`` with the user's
  id when a column the lookup reads changes, or the user is deleted. TRUNCATE sends an
  empty payload: everything is forgotten.
- Rows are kept only while this cache's listener (``change_listener.Listener``) is
  connected, and used only while it has applied every notification PostgreSQL delivered
  (``Listener.quiet``): what is left between a revocation on another node and this
  process refusing the token is PostgreSQL's own delivery of the notification, the
  propagation delay RFC 7009 §2 tells implementations to keep small.
- A revocation this process commits forgets everything it keeps at once
  (``forget_revoked``): the next request may come before its own notification.
- A lookup during which a notification arrived does not keep what it read
  (``generation``); a kept row is read again after ``MAX_AGE`` seconds (the backstop for a
  notification lost on a connection that seemed alive, as in ``client_cache``).
- Any row found is kept, revoked or not (a revocation is never undone); expiry is checked
  by the callers on every use, from the row. Refresh tokens are never kept: each is
  presented once, then rotated.

While the listener is down (at start, during a PostgreSQL restart) every lookup reads the
database, as before. ``IDP_TOKEN_CACHE=0`` turns this off (behind a PgBouncer in
transaction mode, which does not carry LISTEN). SQLite: nothing is kept.
"""

import logging
import time

from flask import current_app

from idp.services.change_listener import ListenedCache

MAX_AGE = 60.0  # seconds: the backstop, not the mechanism
MAX_ENTRIES = 20_000  # tokens kept per process; when full, the oldest kept goes first
APPLICATION_NAME = "idp-token-cache"  # the listener's thread and connection

log = logging.getLogger("idp.token_cache")


def lookup(jti, read):
    """The row of the access token ``jti``: kept, or ``read()`` (and kept if found)."""
    cache = TokenCache.of(current_app)
    if cache is None:
        return read()
    return cache.lookup(jti, read)


def forget_revoked():
    """This process committed a revocation: forget every token now (the notification, for
    the other processes and nodes, names each row; this one need not wait for it). Called
    through ``extensions.when_committed``: inside a ``one_transaction`` only once the
    revocation is really committed, or a lookup in between could keep the row unrevoked."""
    cache = current_app.extensions.get(TokenCache.EXTENSION)
    if cache is not None:
        cache.forget()


class TokenCache(ListenedCache):
    """Kept lookup rows by ``jti``, trusted only while ``live`` and the listener is quiet."""

    EXTENSION = "idp.token_cache"
    SETTING = "TOKEN_CACHE"
    MAX_AGE = MAX_AGE
    APPLICATION_NAME = APPLICATION_NAME
    LABEL = "token cache"
    log = log
    CHANNELS = ("idp_tokens", "idp_users")
    TRIGGERS = (("tokens_changed", "tokens"), ("users_changed", "users"))  # migration 0005
    RECHECK = MAX_AGE  # seconds before a listener that found no trigger looks again

    def __init__(self, engine):
        super().__init__(engine)  # _entries: jti -> (read at, row), in the order kept
        self._by_user = {}  # user id -> the jtis kept of that user's tokens

    def _keep(self, jti, row):
        self._drop(jti)
        if len(self._entries) >= MAX_ENTRIES:
            self._drop(next(iter(self._entries)))
        self._entries[jti] = (time.monotonic(), row)
        if row.user_id is not None:
            self._by_user.setdefault(row.user_id, set()).add(jti)

    def _drop(self, jti):
        kept = self._entries.pop(jti, None)
        if kept is not None and kept[1].user_id is not None:
            jtis = self._by_user.get(kept[1].user_id)
            if jtis is not None:
                jtis.discard(jti)
                if not jtis:
                    del self._by_user[kept[1].user_id]

    def notified(self, channel, payload):
        """The listener's news: a token (``jti``) or a user (id) changed; empty: all."""
        if not payload:
            self.forget()
        elif channel == "idp_tokens":
            self.forget(payload)
        elif payload.isdigit():
            self.forget_user(int(payload))
        else:
            self.forget()  # not what migration 0005 sends: forget everything, to be safe

    def forget(self, jti=None):
        """Drop one token, or all of them (``None``)."""
        with self._lock:
            self.generation += 1
            if jti is None:
                self._clear()
            else:
                self._drop(jti)

    def forget_user(self, user_id):
        """Drop the tokens of one user (the lookup rows carry its columns)."""
        with self._lock:
            self.generation += 1
            for jti in list(self._by_user.get(user_id, ())):
                self._drop(jti)

    def _clear(self):
        self._entries.clear()
        self._by_user.clear()
