"""Database round trips of one request of each kind, counted inside idp's own app.

The app is created in this process with the benchmark server's settings (same database,
same keys) and driven with Flask's test client; SQLAlchemy's events count what reaches
PostgreSQL. With psycopg a transaction's BEGIN is its own round trip, and the pool's
pre-ping (``pool_pre_ping``) is one more per checkout.
"""

import os
import re
import time

from sqlalchemy import event

from endpoints import CODE_SCOPE
from endpoints import FORM
from mint import VERIFIER
from mint import authorize
from mint import token_sets
from servers import REDIRECT_URI

FIELDS = (
    ("DB round trips (ping, BEGIN, statements, COMMIT/ROLLBACK)", "trips"),
    ("SQL statements", "statements"),
    ("statements, in order", "detail"),
)


def _short(sql):
    """``SELECT tenants`` from the full statement text."""
    verb = sql.split(None, 1)[0].upper()
    match = re.search(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", sql, re.IGNORECASE)
    return f"{verb} {match.group(1) if match else '?'}"


class Tally:
    """SQLAlchemy event listeners counting one request's round trips to PostgreSQL."""

    def __init__(self, engine, pre_ping):
        self.pre_ping = pre_ping
        self.trips, self.statements, self.open = 0, [], False
        event.listen(engine, "before_cursor_execute", self._execute)
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._end)
        event.listen(engine, "rollback", self._end)
        event.listen(engine.pool, "checkout", self._checkout)

    def _execute(self, conn, cursor, statement, params, context, executemany):
        self.trips += 1
        self.statements.append(_short(statement))

    def _begin(self, conn):
        # psycopg sends BEGIN before the transaction's first statement — except in
        # autocommit (userinfo, introspection, the token endpoint), where SQLAlchemy's
        # begin and commit events still fire but nothing reaches the server.
        if getattr(conn.connection.dbapi_connection, "autocommit", False):
            return
        self.trips += 1
        self.open = True

    def _end(self, conn):
        if self.open:  # psycopg skips COMMIT/ROLLBACK when no transaction is open
            self.trips += 1
        self.open = False

    def _checkout(self, *args):
        if self.pre_ping:
            self.trips += 1
            self.statements.append("ping")

    def reset(self):
        """Forget what came before the request that is counted."""
        self.trips, self.statements = 0, []

    def result(self):
        """The numbers the profile table shows."""
        sql = [s for s in self.statements if s != "ping"]
        return {"trips": self.trips, "statements": len(sql), "detail": ", ".join(self.statements)}


def _requests(target, ctx, key):
    """Two requests of this kind (the first warms the process up, the second is counted)."""
    basic = {"Authorization": target.basic, "Content-Type": FORM}
    p = target.paths
    if key in ("discovery", "jwks"):
        return [("GET", p[key], {}, None)] * 2
    if key == "client_credentials":
        return [("POST", p["token"], basic, "grant_type=client_credentials")] * 2
    if key == "client_credentials_es256":
        es256 = {**basic, "Authorization": target.es256_basic}
        return [("POST", p["token"], es256, "grant_type=client_credentials")] * 2
    if key == "authorization_code":
        body = "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}"
        codes = [authorize(target, CODE_SCOPE) for _ in range(2)]
        return [("POST", p["token"], basic, body.format(c, REDIRECT_URI, VERIFIER)) for c in codes]
    if key == "refresh":
        tokens = token_sets(target, 2, offline=True)
        body = "grant_type=refresh_token&refresh_token={}"
        return [("POST", p["token"], basic, body.format(t["refresh_token"])) for t in tokens]
    token = token_sets(target, 1, offline=False)[0]["access_token"]
    if key == "userinfo":
        return [("GET", p["userinfo"], {"Authorization": f"Bearer {token}"}, None)] * 2
    return [("POST", p["introspection"], basic, f"token={token}")] * 2


def _steady(app, client, target, ctx):
    """Wait (up to 10 s) until the client and token caches trust what they keep, as in a
    served node after its first requests: otherwise the counted request would read its
    client, or the token it presents a second time."""
    from idp.services import token_cache

    method, path, headers, body = _requests(target, ctx, "client_credentials")[0]
    client.open(path, method=method, headers=headers, data=body)  # starts the listener
    with app.app_context():
        token_cache.TokenCache.of(app)  # started by the first token lookup otherwise
    deadline = time.monotonic() + 10
    for name in ("idp.client_cache", "idp.token_cache"):
        cache = app.extensions.get(name)
        while cache is not None and not cache.live and time.monotonic() < deadline:
            time.sleep(0.05)


def count(idp, target, ctx, keys):
    """{endpoint: round trips, statements, detail} for one request of each kind."""
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in idp.env.items() if k.startswith("IDP_")})
    try:
        from idp import create_app
        from idp.extensions import db

        app = create_app()
        pre_ping = app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_pre_ping", False)
        with app.app_context():
            tally = Tally(db.engine, pre_ping)
        client, found = app.test_client(), {}
        _steady(app, client, target, ctx)
        for key in keys:
            for i, (method, path, headers, body) in enumerate(_requests(target, ctx, key)):
                tally.reset()
                response = client.open(path, method=method, headers=headers, data=body)
                if i == 1:
                    found[key] = tally.result() | {"status": response.status_code}
        with app.app_context():
            db.engine.dispose()  # and the client cache's listener stops before the drop
        return found
    finally:
        os.environ.clear()
        os.environ.update(saved)
