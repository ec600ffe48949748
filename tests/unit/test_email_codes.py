"""Emailed one-time codes: lifetime, single use, tries, resend, throttling (DESIGN §4).

Time is passed in as ``now=`` so expiry, cooldown and the hourly window are tested
without sleeping.
"""

import threading
import uuid

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import EmailCode
from idp.services import email_codes
from idp.services import tenants

T0 = 1_700_000_000
PURPOSE = "recover"


@pytest.fixture
def tenant(app):
    """A fresh tenant, inside an app context for the whole test."""
    with app.app_context():
        yield tenants.create_tenant(f"t-{uuid.uuid4().hex[:10]}", "Codes Org")


@pytest.fixture
def email():
    return f"user-{uuid.uuid4().hex[:8]}@example.com"


@pytest.fixture
def codes(monkeypatch):
    """Make the next codes predictable: ``codes("111111", "222222")``."""

    def set_codes(*values):
        monkeypatch.setattr(email_codes, "_new_code", iter(values).__next__)

    return set_codes


def rows(tenant, email):
    """The stored codes of an address, oldest first."""
    stmt = select(EmailCode).where(EmailCode.tenant_id == tenant.id, EmailCode.email == email)
    return list(db.session.execute(stmt.order_by(EmailCode.id)).scalars())


def fail(tenant, email, times, now=T0):
    """``times`` wrong codes; returns the answers."""
    return [email_codes.verify(tenant, email, PURPOSE, "000000", now=now) for _ in range(times)]


def test_defaults_are_the_documented_ones(app):
    assert app.config["EMAIL_CODE_TTL"] == 300
    assert app.config["EMAIL_CODE_COOLDOWN"] == 30
    assert app.config["EMAIL_CODE_HOURLY_LIMIT"] == 5


def test_code_is_six_digits_and_used_once(tenant, email):
    issued = email_codes.issue(tenant, email, PURPOSE, now=T0)

    assert issued.refused is None
    assert len(issued.code) == 6 and issued.code.isdigit()
    assert issued.expires_at == T0 + 300
    assert email_codes.verify(tenant, email, PURPOSE, issued.code, now=T0 + 1) == "ok"
    assert email_codes.verify(tenant, email, PURPOSE, issued.code, now=T0 + 2) == "missing"


def test_no_code_issued_is_missing(tenant, email):
    assert email_codes.verify(tenant, email, PURPOSE, "123456", now=T0) == "missing"


def test_wrong_then_right(tenant, email, codes):
    codes("123456")
    email_codes.issue(tenant, email, PURPOSE, now=T0)

    assert email_codes.verify(tenant, email, PURPOSE, "654321", now=T0) == "wrong"
    assert email_codes.verify(tenant, email, PURPOSE, "123456", now=T0) == "ok"


def test_code_is_bound_to_address_purpose_and_tenant(app, tenant, email):
    issued = email_codes.issue(tenant, email, PURPOSE, now=T0)
    other = tenants.create_tenant(f"t-{uuid.uuid4().hex[:10]}", "Other Org")

    assert email_codes.verify(tenant, "someone@example.com", PURPOSE, issued.code) == "missing"
    assert email_codes.verify(tenant, email, "invite", issued.code, now=T0) == "missing"
    assert email_codes.verify(other, email, PURPOSE, issued.code, now=T0) == "missing"
    assert email_codes.verify(tenant, email, PURPOSE, issued.code, now=T0) == "ok"


def test_address_is_normalised(tenant, email):
    issued = email_codes.issue(tenant, f"  {email.upper()} ", PURPOSE, now=T0)

    assert email_codes.verify(tenant, email, PURPOSE, issued.code, now=T0) == "ok"


def test_spaces_typed_inside_the_code_are_ignored(tenant, email, codes):
    codes("488741")
    email_codes.issue(tenant, email, PURPOSE, now=T0)

    assert email_codes.verify(tenant, email, PURPOSE, " 488 741 ", now=T0) == "ok"


def test_code_expires_after_five_minutes_without_costing_a_try(tenant, email):
    issued = email_codes.issue(tenant, email, PURPOSE, now=T0)

    assert email_codes.verify(tenant, email, PURPOSE, issued.code, now=T0 + 300) == "expired"
    assert rows(tenant, email)[-1].attempts == 0
    assert email_codes.verify(tenant, email, PURPOSE, issued.code, now=T0 + 299) == "ok"


def test_five_wrong_tries_lock_the_code(tenant, email):
    issued = email_codes.issue(tenant, email, PURPOSE, now=T0)

    # The fifth wrong try already answers "locked": there is no sixth to invite.
    assert fail(tenant, email, 5) == ["wrong"] * 4 + ["locked"]
    assert email_codes.verify(tenant, email, PURPOSE, issued.code, now=T0) == "locked"
    assert rows(tenant, email)[-1].attempts == 5


def test_resend_voids_the_old_code_and_keeps_the_failures(tenant, email, codes):
    codes("111111", "222222")
    email_codes.issue(tenant, email, PURPOSE, now=T0)
    assert fail(tenant, email, 3) == ["wrong"] * 3

    resent = email_codes.issue(tenant, email, PURPOSE, now=T0 + 30)

    assert resent.code == "222222"
    old, new = rows(tenant, email)
    assert old.voided_at == T0 + 30 and new.attempts == 3
    assert email_codes.verify(tenant, email, PURPOSE, "111111", now=T0 + 31) == "wrong"
    assert email_codes.verify(tenant, email, PURPOSE, "000000", now=T0 + 31) == "locked"
    assert email_codes.verify(tenant, email, PURPOSE, "222222", now=T0 + 31) == "locked"


def test_resend_is_refused_during_the_cooldown(tenant, email):
    email_codes.issue(tenant, email, PURPOSE, now=T0)

    refused = email_codes.issue(tenant, email, PURPOSE, now=T0 + 10)

    assert (refused.code, refused.refused, refused.retry_after) == (None, "cooldown", 20)
    assert len(rows(tenant, email)) == 1
    assert email_codes.issue(tenant, email, PURPOSE, now=T0 + 30).code is not None


def test_at_most_five_codes_an_hour_per_address_and_purpose(tenant, email):
    for minute in range(5):
        assert email_codes.issue(tenant, email, PURPOSE, now=T0 + 60 * minute).code

    refused = email_codes.issue(tenant, email, PURPOSE, now=T0 + 300)

    assert (refused.code, refused.refused) == (None, "hourly_limit")
    assert refused.retry_after == 3300  # when the first of the five is an hour old
    assert email_codes.issue(tenant, email, "invite", now=T0 + 300).code is not None
    assert email_codes.issue(tenant, email, PURPOSE, now=T0 + 3600).code is not None


def test_locked_address_gets_no_new_code_until_the_count_lapses(tenant, email):
    email_codes.issue(tenant, email, PURPOSE, now=T0)
    fail(tenant, email, 5)

    refused = email_codes.issue(tenant, email, PURPOSE, now=T0 + 60)
    assert (refused.refused, refused.retry_after) == ("hourly_limit", 3540)
    assert email_codes.verify(tenant, email, PURPOSE, "000000", now=T0 + 60) == "locked"

    # An hour without a new code: the failures are forgotten, never a lock-out for good.
    issued = email_codes.issue(tenant, email, PURPOSE, now=T0 + 3600)
    assert rows(tenant, email)[-1].attempts == 0
    assert email_codes.verify(tenant, email, PURPOSE, issued.code, now=T0 + 3601) == "ok"


def test_failures_lapse_an_hour_after_the_last_code(tenant, email):
    email_codes.issue(tenant, email, PURPOSE, now=T0)
    fail(tenant, email, 3)

    email_codes.issue(tenant, email, PURPOSE, now=T0 + 3599)
    assert rows(tenant, email)[-1].attempts == 3
    email_codes.issue(tenant, email, PURPOSE, now=T0 + 3599 + 3600)
    assert rows(tenant, email)[-1].attempts == 0


def test_a_proven_address_starts_the_next_code_afresh(tenant, email):
    issued = email_codes.issue(tenant, email, PURPOSE, now=T0)
    fail(tenant, email, 2)
    assert email_codes.verify(tenant, email, PURPOSE, issued.code, now=T0) == "ok"
    assert rows(tenant, email)[-1].attempts == 2  # the right code cost no try

    email_codes.issue(tenant, email, PURPOSE, now=T0 + 60)

    assert rows(tenant, email)[-1].attempts == 0


def test_code_is_never_stored_in_clear(app, tenant, email):
    issued = email_codes.issue(tenant, email, PURPOSE, now=T0)
    row = rows(tenant, email)[-1]

    stored = [str(getattr(row, column.key)) for column in EmailCode.__table__.columns]
    assert not any(issued.code in value for value in stored)
    assert len(row.code_hash) == 64 and int(row.code_hash, 16) >= 0
    # Keyed: the same code for the same address hashes differently under another key.
    again = email_codes._code_hash(tenant, email, PURPOSE, issued.code)
    app.config["SECRET_KEY"], key = "another-secret-key-" + "x" * 32, app.config["SECRET_KEY"]
    try:
        assert email_codes._code_hash(tenant, email, PURPOSE, issued.code) != again
    finally:
        app.config["SECRET_KEY"] = key


def test_purpose_must_fit_the_column(tenant, email):
    with pytest.raises(ValueError):
        email_codes.issue(tenant, email, "x" * 33, now=T0)


def run_together(app, count, call):
    """``call()`` from ``count`` threads at once, each with its own app context and session."""
    barrier = threading.Barrier(count)
    results = []

    def worker():
        with app.app_context():
            barrier.wait()
            results.append(call())

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(results)


def test_a_code_is_used_once_under_concurrency(app, tenant, email):
    issued = email_codes.issue(tenant, email, PURPOSE, now=T0)
    tenant_id, slug = tenant.id, tenant.slug

    def attempt():
        row = tenants.query_tenant(slug)
        assert row.id == tenant_id
        return email_codes.verify(row, email, PURPOSE, issued.code, now=T0 + 1)

    assert run_together(app, 8, attempt) == ["missing"] * 7 + ["ok"]


def test_parallel_guesses_count_at_most_five_tries(app, tenant, email):
    email_codes.issue(tenant, email, PURPOSE, now=T0)
    slug = tenant.slug

    def guess():
        return email_codes.verify(tenants.query_tenant(slug), email, PURPOSE, "000000", now=T0)

    results = run_together(app, 12, guess)

    assert results.count("wrong") == 4
    assert results.count("locked") == 8
    db.session.expire_all()
    assert rows(tenant, email)[-1].attempts == 5
