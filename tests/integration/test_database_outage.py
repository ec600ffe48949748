"""A request whose database connection dies under it still gets its answer, and the next
request gets a fresh connection (PostgreSQL restarted, a connection killed by an admin)."""

import os

import psycopg
import pytest
from sqlalchemy import text

from idp.extensions import db
from tests.conftest import PG_ADMIN_URL
from tests.conftest import make_app

pytestmark = pytest.mark.skipif(
    os.environ.get("IDP_TEST_DB", "sqlite") != "postgresql",
    reason="kills a PostgreSQL backend; runs in the PostgreSQL pass",
)


@pytest.fixture
def killer_app(tmp_path_factory, database):
    """An app with one extra view: it opens a transaction, then has an admin kill its backend."""
    app = make_app(tmp_path_factory, database)

    @app.get("/_test/killed-mid-request")
    def killed_mid_request():
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return {"pid": pid}

    @app.get("/_test/pid")
    def current_pid():
        return {"pid": db.session.execute(text("SELECT pg_backend_pid()")).scalar()}

    return app


def test_a_connection_killed_before_teardown_loses_no_answer(killer_app):
    client = killer_app.test_client()

    killed = client.get("/_test/killed-mid-request")
    assert killed.status_code == 200  # the view's answer, not a 500 or a broken response
    assert killed.headers["Content-Length"] == str(len(killed.data))

    after = client.get("/_test/pid")
    assert after.status_code == 200
    assert after.json["pid"] != killed.json["pid"]  # a fresh connection, not the dead one
    assert client.get("/readyz").status_code == 200
