"""Protection across requests: per-IP limits, Redis-shared throttles, SSO session timeouts,
and the audit trail of security events."""

import os
import secrets
import time
import uuid

import pytest
import redis
from sqlalchemy import update

from idp.extensions import db
from idp.models import AuditEvent
from idp.models import SsoSession
from idp.services import tenants
from idp.services import throttle
from tests.conftest import make_app
from tests.helpers import Browser
from tests.helpers import LiveServer
from tests.integration.journey import Journey
from tests.integration.realm import Realm
from tests.integration.test_prompts import authorize_silently

REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def require_redis():
    """Redis is part of the production layout: under CI its absence fails the run."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required under CI ({REDIS_URL})")
        pytest.skip(f"no Redis at {REDIS_URL}")


def test_per_ip_limit_on_sign_in_posts(tmp_path_factory, database):
    app = make_app(tmp_path_factory, database, RATELIMIT_ENABLED=True)
    live = LiveServer(app).start()
    try:
        with app.app_context():
            tenant = tenants.create_tenant(f"rl-{uuid.uuid4().hex[:8]}", "RL")
            slug = tenant.slug
        browser = Browser(live)
        statuses = [
            browser.http.post(
                f"{live.url}/{slug}/login", data={"step": "identify"}, allow_redirects=False
            ).status_code
            for _ in range(61)
        ]
        assert statuses[:60].count(429) == 0 and statuses[60] == 429
        last = browser.http.post(f"{live.url}/{slug}/login", allow_redirects=False)
        assert "Too many attempts" in last.text and "Retry-After" in last.headers
    finally:
        live.stop()


def test_per_ip_limit_on_registration_and_none_on_the_token_endpoint(tmp_path_factory, database):
    """Flask-Limiter runs where a limit applies (here RFC 7591 registration, 30/minute) and
    stays out of the way elsewhere: the token endpoint answers without rate-limit headers."""
    app = make_app(tmp_path_factory, database, RATELIMIT_ENABLED=True)
    live = LiveServer(app).start()
    try:
        with app.app_context():
            slug = tenants.create_tenant(f"rl-{uuid.uuid4().hex[:8]}", "RL").slug
        http = Browser(live).http
        statuses = [
            http.post(f"{live.url}/{slug}/register", json={}, timeout=10).status_code
            for _ in range(31)
        ]
        assert 429 not in statuses[:30] and statuses[30] == 429
        token = http.post(f"{live.url}/{slug}/token", data={"grant_type": "client_credentials"})
        assert token.status_code == 401  # no client authentication: not a rate limit
        assert not any(h.lower().startswith("x-ratelimit") for h in token.headers)
    finally:
        live.stop()


def test_throttle_counts_are_shared_through_redis(tmp_path_factory, database):
    require_redis()
    first = make_app(tmp_path_factory, database, REDIS_URL=REDIS_URL)
    second = make_app(tmp_path_factory, database, REDIS_URL=REDIS_URL)
    subject = f"someone-{secrets.token_hex(4)}@example.com"
    with first.app_context():
        tenant = tenants.create_tenant(f"rd-{uuid.uuid4().hex[:8]}", "Redis")
        for _ in range(5):
            throttle.record_failure("password", tenant, subject)
    with second.app_context():
        tenant = tenants.query_tenant(tenant.slug)
        assert throttle.retry_after("password", tenant, subject) is not None
        throttle.reset("password", tenant, subject)
    with first.app_context():
        assert throttle.retry_after("password", tenants.query_tenant(tenant.slug), subject) is None


def test_throttle_fails_closed_when_its_store_is_down(tmp_path_factory, database, caplog):
    app = make_app(tmp_path_factory, database, REDIS_URL="redis://127.0.0.1:1/0")
    with app.app_context():
        tenant = tenants.create_tenant(f"dn-{uuid.uuid4().hex[:8]}", "Down")
        assert (
            throttle.retry_after("password", tenant, "x@example.com")
            == throttle.FAIL_CLOSED_SECONDS
        )
    assert "fail closed" in caplog.text


@pytest.fixture
def realm(server, factory, browser):
    return Realm(server, factory, browser)


def test_session_idle_timeout(app, realm):
    realm.tokens()
    with app.app_context():
        idle = app.config["SESSION_IDLE_TTL"]
        db.session.execute(
            update(SsoSession)
            .where(SsoSession.tenant_id == realm.tenant.id)
            .values(last_seen_at=int(time.time()) - idle - 1)
        )
        db.session.commit()
    assert "login_required" in authorize_silently(realm, prompt="none").headers["Location"]


def test_session_absolute_timeout(app, realm):
    realm.tokens()
    with app.app_context():
        db.session.execute(
            update(SsoSession)
            .where(SsoSession.tenant_id == realm.tenant.id)
            .values(expires_at=int(time.time()) - 1)
        )
        db.session.commit()
    assert "login_required" in authorize_silently(realm, prompt="none").headers["Location"]


def test_sign_in_issues_a_new_session_id(app, realm):
    realm.tokens()
    realm.tokens(prompt="login")
    with app.app_context():
        rows = (
            db.session.execute(db.select(SsoSession).where(SsoSession.tenant_id == realm.tenant.id))
            .scalars()
            .all()
        )
        assert len(rows) == 2 and sum(r.ended_at is None for r in rows) == 1


def test_security_events_are_audited(app, realm, browser):
    journey = Journey(realm, browser).start()
    journey.submit({"email": realm.email})
    for _ in range(5):
        journey.submit({"password": "wrong"})
    with app.app_context():
        events = [
            e.event
            for e in db.session.execute(
                db.select(AuditEvent).where(AuditEvent.tenant_id == realm.tenant.id)
            ).scalars()
        ]
    assert events.count("login.failure") == 5
    assert "lockout" in events
    realm_ok = Journey(realm, Browser(realm.server)).start()
    realm_ok.submit({"email": realm.email})
    with app.app_context():
        failure = db.session.execute(
            db.select(AuditEvent).where(
                AuditEvent.tenant_id == realm.tenant.id, AuditEvent.event == "login.failure"
            )
        ).scalar()
        assert failure.detail["reason"] == "password" and failure.ip == "127.0.0.1"
