"""``one_transaction``: a sign-in request's service calls commit once, at the end, or not at all.

The services commit what they change; inside a view wrapped in ``one_transaction`` those
commits only flush. What the request wrote must become visible to other connections (other
nodes) only when the view returns, nothing of a view that raises may remain, and work queued
with ``when_committed`` (a mailed code) must wait for the commit and be dropped on failure.
"""

import uuid

import pytest
from sqlalchemy import func
from sqlalchemy import select

from idp.extensions import db
from idp.extensions import one_transaction
from idp.extensions import when_committed
from idp.models import AuditEvent
from idp.services import audit


def _events_seen_elsewhere(name):
    """How many audit rows named ``name`` another connection (another node) can see."""
    with db.engine.connect() as other:
        stmt = select(func.count()).select_from(AuditEvent).where(AuditEvent.event == name)
        return other.execute(stmt).scalar_one()


def test_writes_of_several_services_commit_once_when_the_view_returns(app):
    name = f"test.{uuid.uuid4().hex[:8]}"
    seen_inside = []

    @one_transaction
    def view():
        audit.record(None, name)  # commits on its own outside one_transaction
        audit.record(None, name)
        seen_inside.append(_events_seen_elsewhere(name))
        return "done"

    with app.test_request_context():
        assert view() == "done"
        assert seen_inside == [0], "visible to other connections before the view returned"
        assert _events_seen_elsewhere(name) == 2


def test_a_view_that_raises_writes_nothing(app):
    name = f"test.{uuid.uuid4().hex[:8]}"

    @one_transaction
    def view():
        audit.record(None, name)
        raise RuntimeError("a fault after the first write")

    with app.test_request_context():
        with pytest.raises(RuntimeError):
            view()
        assert _events_seen_elsewhere(name) == 0
        db.session.execute(select(1))  # the session is usable again
    with app.test_request_context():
        audit.record(None, name)  # outside one_transaction a service commits at once
        assert _events_seen_elsewhere(name) == 1


def test_queued_work_waits_for_the_commit_and_is_dropped_on_failure(app):
    name = f"test.{uuid.uuid4().hex[:8]}"
    ran = []

    @one_transaction
    def view(fail):
        audit.record(None, name)
        when_committed(lambda: ran.append(_events_seen_elsewhere(name)))
        assert ran == [], "ran before the commit"
        if fail:
            raise RuntimeError("fault")
        return "done"

    with app.test_request_context():
        with pytest.raises(RuntimeError):
            view(True)
        assert ran == []
        view(False)
        assert ran == [1], "the queued work saw the committed row"


def test_outside_one_transaction_queued_work_runs_at_once(app):
    ran = []
    with app.test_request_context():
        when_committed(lambda: ran.append(True))
    assert ran == [True]


def test_nested_views_commit_once_at_the_outer_end(app):
    name = f"test.{uuid.uuid4().hex[:8]}"
    seen = []

    @one_transaction
    def inner():
        audit.record(None, name)
        return "inner"

    @one_transaction
    def outer():
        inner()
        seen.append(_events_seen_elsewhere(name))
        return "outer"

    with app.test_request_context():
        assert outer() == "outer"
    assert seen == [0] and _events_seen_elsewhere_in(app, name) == 1


def _events_seen_elsewhere_in(app, name):
    with app.app_context():
        return _events_seen_elsewhere(name)
