"""Extensions, created bare here and bound to the app in ``create_app``.

The Authlib authorization server lives in ``idp.oidc.server`` instead: it needs the
models, and the models need ``db`` from here. The per-IP rate limiter is made per app
in ``idp.web``: Flask-Limiter keeps its switch and store on the object, so one shared
object would let one app's settings leak into another's.
"""

import contextlib
import functools

from flask import g
from flask import has_app_context
from flask import has_request_context
from flask_babel import Babel
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from flask_wtf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase

_DEFER = "idp.defer_commits"
_ON_COMMIT = "idp.on_commit"


class Base(DeclarativeBase):
    """Declarative base shared by every model."""


class Session(FlaskSession):
    """A session whose ``commit()`` only flushes inside ``one_transaction``.

    Services commit what they change, so each works on its own (the CLI, the token
    endpoint). A sign-in request calls several of them (the login transaction, the TOTP
    step, the SSO session, the audit event, the code): inside ``one_transaction`` their
    changes are written in order but committed once, at the end of the request.
    """

    def commit(self):
        """Flush while a ``one_transaction`` block runs; commit otherwise."""
        if self.info.get(_DEFER):
            self.flush()
        else:
            super().commit()


# Objects stay loaded after a commit: a request commits, then reads what it just wrote or
# read (the code exchange commits the claim and the token, then builds the answer from
# them). SQLAlchemy's default would reload each of them with a SELECT of its own.
db = SQLAlchemy(
    model_class=Base, session_options={"class_": Session, "expire_on_commit": False}
)
migrate = Migrate()
csrf = CSRFProtect()
babel = Babel()


def serving_request():
    """True while an HTTP request is served: in Flask's request context, or in the app
    context a fast path (``idp.fastpath``) pushes for one request and marks so.

    What a service keeps "for the rest of the request" (clients, users) lives on ``g``;
    ``g`` belongs to the app context, and a CLI command's app context lasts the whole
    command, so outside a request nothing is kept.
    """
    return has_request_context() or (has_app_context() and g.get("_serving_request", False))


def one_transaction(view):
    """Run a view's writes as one database transaction, committed when the view returns.

    Saves a commit (a round trip and a WAL flush) per service call on the sign-in's path.
    Row locks taken on the way (the TOTP step's conditional UPDATE, a claimed code) are held
    until then, which is what makes the checks race-free anyway. If the view raises,
    nothing of the request is written.
    """

    @functools.wraps(view)
    def run(*args, **kwargs):
        session = db.session()
        if session.info.get(_DEFER):  # already inside one (a view calling another)
            return view(*args, **kwargs)
        session.info[_DEFER] = True
        try:
            response = view(*args, **kwargs)
        except BaseException:
            session.info.pop(_DEFER, None)
            session.info.pop(_ON_COMMIT, None)
            # The view's own exception is the one to report; a connection that died with
            # it is dealt with at teardown (web.discard_broken_sessions).
            with contextlib.suppress(Exception):
                session.rollback()
            raise
        session.info.pop(_DEFER, None)
        actions = session.info.pop(_ON_COMMIT, [])
        session.commit()
        for action in actions:
            action()
        return response

    return run


def when_committed(action):
    """Call ``action()`` once what this request wrote is committed: now, or at the end of
    its ``one_transaction`` (never, if that rolls back) — a mailed code must not reach the
    user before the row that checks it exists."""
    session = db.session()
    if session.info.get(_DEFER):
        session.info.setdefault(_ON_COMMIT, []).append(action)
    else:
        action()


@contextlib.contextmanager
def autocommit_connection():
    """A pooled connection in autocommit, outside the request's ORM session.

    For the reads of a request that writes nothing through the session (userinfo,
    introspection): checking a session's connection out and closing the session at
    teardown were a fifth of an introspection's Python calls, for one SELECT. On psycopg
    the driver's own ``autocommit`` switch is flipped, and flipped back before the
    connection goes back to the pool: SQLAlchemy's ``isolation_level`` option, which sets
    and then resets it through the dialect, was a third of what userinfo had left.
    """
    from psycopg import Error as PsycopgError

    with db.engine.connect() as connection:
        if connection.dialect.driver != "psycopg":
            yield connection.execution_options(isolation_level="AUTOCOMMIT")
            return
        driver = connection.connection.driver_connection
        driver.autocommit = True  # no statement, no round trip: idle connections only
        try:
            yield connection
        finally:
            with contextlib.suppress(PsycopgError):  # dead: dropped when it is checked in
                driver.autocommit = False


@contextlib.contextmanager
def autocommit_reads():
    """A function that returns an ``autocommit_connection``, checked out at its first call.

    Userinfo and introspection usually answer from the token cache
    (``services.token_cache``) and then read nothing: checking a connection out of the
    pool and back in for no statement was 129 of the 350 Python calls of such a userinfo
    answer, and 130 of an introspection's 654 (``bench/endpoint_cpu.py --profile``).
    """
    with contextlib.ExitStack() as stack:
        opened = []

        def connect():
            if not opened:
                opened.append(stack.enter_context(autocommit_connection()))
            return opened[0]

        yield connect


def statements_without_transaction():
    """Run this request's statements in autocommit: each is a transaction of its own.

    For requests that only read, or whose only write is one statement: userinfo and
    introspection answer from one or two SELECTs, a client-credentials token is one SELECT
    (the client) and one INSERT (the grant). In a transaction each would pay two more round
    trips, psycopg's ``BEGIN`` and the ``COMMIT`` or the teardown's ``ROLLBACK`` — half of
    their database time. A no-op once the request has started a transaction.
    """
    if not db.session().in_transaction():
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
