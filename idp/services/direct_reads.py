"""The hottest reads, run on psycopg itself: a statement SQLAlchemy compiled once, one row.

Userinfo and introspection are one indexed SELECT each (``tokens._BY_JTI``). Through
SQLAlchemy's execution that statement was a third of userinfo's Python calls: an execution
context and a result object per call, and psycopg's ``cursor.description``, 22 column
objects built anew on every execution only so that SQLAlchemy can name the row's fields.
Here the statement is still written with SQLAlchemy, compiled once per dialect, and executed
on the same pooled connection's psycopg connection (prepared on the server after a few
executions, as psycopg does for SQLAlchemy too); the row comes back as a named tuple with
the statement's column names, so callers read ``row.user_sub`` as before.

A driver error is not handled here: the statement runs again through SQLAlchemy, whose own
handling then applies unchanged (a dead connection invalidates the pool, the error becomes
``sqlalchemy.exc.OperationalError``, and ``idp.errors`` or ``web.DatabaseOutageGuard`` answer
503). Repeating a read changes nothing. This is done only on a connection in autocommit
(userinfo's and introspection's); inside a transaction (revocation reads in the one it
writes in), and on other drivers (SQLite), SQLAlchemy runs the statement as before.
"""

from collections import namedtuple

import psycopg


class DirectRead:
    """One SELECT returning at most one row; ``one_or_none(connection, params)``."""

    def __init__(self, statement, name):
        self.statement = statement
        self.row = namedtuple(name, [column.key for column in statement.selected_columns])
        self._sql = {}  # dialect name → compiled SQL text

    def one_or_none(self, connection, params):
        """The row (a named tuple) or None; ``connection``: a SQLAlchemy ``Connection``."""
        driver = connection.connection.driver_connection
        # Only in autocommit: inside a transaction a statement psycopg failed would leave the
        # transaction aborted, and SQLAlchemy's rerun would fail on that instead.
        if connection.dialect.driver == "psycopg" and driver.autocommit:
            try:
                found = driver.execute(self._compiled(connection.dialect), params).fetchone()
            except psycopg.Error:
                pass  # SQLAlchemy runs it again below, and handles what it raises
            else:
                return None if found is None else self.row._make(found)
        found = connection.execute(self.statement, params).one_or_none()
        return None if found is None else self.row._make(found)

    def _compiled(self, dialect):
        sql = self._sql.get(dialect.name)
        if sql is None:
            sql = self._sql[dialect.name] = self.statement.compile(dialect=dialect).string
        return sql
