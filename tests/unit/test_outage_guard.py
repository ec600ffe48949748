"""The outermost WSGI layer turns a database fault that escapes Flask into a whole 503."""

import pytest
from psycopg import OperationalError as PsycopgOperationalError
from sqlalchemy.exc import OperationalError
from werkzeug.test import Client

from idp.web import DatabaseOutageGuard


def answered_then_failed(environ, start_response):
    """What Flask does when a teardown fails: the answer is ready, then the fault escapes."""
    start_response("404 Not Found", [("Content-Type", "text/html"), ("Content-Length", "130")])
    raise OperationalError("ROLLBACK", {}, PsycopgOperationalError("server closed the connection"))


def test_a_fault_after_start_response_is_a_consistent_503():
    response = Client(DatabaseOutageGuard(answered_then_failed)).get("/no-such-tenant/jwks")

    assert response.status_code == 503
    assert response.json["error"] == "temporarily_unavailable"
    # The first answer's headers are gone: the length is the 503 body's, not the 404's.
    assert response.headers["Content-Length"] == str(len(response.data))
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Retry-After"] == "5"


def test_an_ordinary_answer_passes_through_unchanged():
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"returned"]

    response = Client(DatabaseOutageGuard(app)).get("/")

    assert response.status_code == 200
    assert response.data == b"written returned"


def test_other_errors_are_not_mistaken_for_an_outage():
    def app(environ, start_response):
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        Client(DatabaseOutageGuard(app)).get("/")
