"""Access tokens kept per process (``idp.services.token_cache``) are refused as soon as they
are revoked, and show their user's changes, wherever the change is made.

PostgreSQL only: the cache relies on its LISTEN/NOTIFY (on SQLite nothing is kept). A
change "elsewhere" is made on a connection of its own, as another node or an operator in
psql would; it reaches this process as a notification, so those tests wait for it (a bound,
not a measurement). The test server runs in this process, so its cache is
``app.extensions["idp.token_cache"]``.
"""

import os
import signal
import threading

import psycopg
import pytest
import requests

from idp.extensions import db
from idp.services import token_cache
from idp.services import tokens
from tests.cluster.cluster import jwt_claims
from tests.cluster.nodes import wait_until
from tests.integration.realm import Realm

pytestmark = pytest.mark.skipif(
    os.environ.get("IDP_TEST_DB", "sqlite") != "postgresql",
    reason="the token cache needs PostgreSQL (LISTEN/NOTIFY); on SQLite nothing is kept",
)


def jti_of(access_token):
    return jwt_claims(access_token)["jti"]


class Reads:
    """Counts the token lookups that reached PostgreSQL (``tokens._BY_JTI``)."""

    def __init__(self, read):
        self.read = read
        self.count = 0

    def one_or_none(self, connection, params):
        self.count += 1
        return self.read.one_or_none(connection, params)


class Kept:
    """A realm's access token, the statements that read it, and changes made elsewhere."""

    def __init__(self, realm, app, monkeypatch):
        self.realm = realm
        self.app = app
        self.tokens = realm.tokens()
        self.access_token = self.tokens["access_token"]
        self.jti = jti_of(self.access_token)
        self.reads = Reads(tokens._BY_JTI)
        monkeypatch.setattr(tokens, "_BY_JTI", self.reads)
        with app.app_context():
            self.url = db.engine.url.set(drivername="postgresql").render_as_string(False)

    @property
    def cache(self):
        return self.app.extensions["idp.token_cache"]

    def introspect(self):
        """(active, lookups that read the database)."""
        before = self.reads.count
        answer = self.realm.introspect(self.access_token)
        assert answer.status_code == 200, answer.text
        return answer.json()["active"], self.reads.count - before

    def userinfo(self):
        """(status, email or None, lookups that read the database)."""
        before = self.reads.count
        answer = self.realm.userinfo(self.access_token)
        email = answer.json().get("email") if answer.status_code == 200 else None
        return answer.status_code, email, self.reads.count - before

    def elsewhere(self, statement, *params):
        """Run ``statement`` on a connection of its own (another node; psql)."""
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(statement, params)

    def listening(self):
        """This app's cache listens (other apps of the test run have listeners of their own)."""
        cache = self.app.extensions.get("idp.token_cache")
        return cache is not None and cache.live and cache.listener.backend_pid is not None

    def kill_listener(self):
        pid = self.cache.listener.backend_pid
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute("SELECT pg_terminate_backend(%s)", (pid,))

    def warm(self):
        """Wait until this process listens, then until it keeps the token: reads nothing."""
        self.introspect()
        wait_until(self.listening, 10, "the token cache listens")
        wait_until(lambda: self.introspect() == (True, 0), 10, "kept")


@pytest.fixture
def kept(realm, app, monkeypatch):
    return Kept(realm, app, monkeypatch)


def test_a_kept_token_is_not_read_again(kept):
    kept.warm()
    assert [kept.introspect() for _ in range(3)] == [(True, 0)] * 3
    assert [kept.userinfo() for _ in range(3)] == [(200, kept.realm.email, 0)] * 3


def test_a_token_revoked_elsewhere_is_refused(kept):
    kept.warm()
    kept.elsewhere("UPDATE tokens SET access_revoked_at = 1 WHERE jti = %s", kept.jti)
    wait_until(lambda: kept.introspect()[0] is False, 10, "the revoked token inactive")
    assert kept.userinfo()[0] == 401


def test_a_token_deleted_elsewhere_is_refused(kept):
    kept.warm()
    kept.elsewhere("DELETE FROM tokens WHERE jti = %s", kept.jti)
    wait_until(lambda: kept.userinfo()[0] == 401, 10, "the deleted token refused")


def test_a_user_changed_or_disabled_elsewhere_shows_at_once(kept):
    kept.warm()
    assert kept.userinfo() == (200, kept.realm.email, 0)
    new_email = "renamed-" + kept.realm.email
    kept.elsewhere("UPDATE users SET email = %s WHERE email = %s", new_email, kept.realm.email)
    wait_until(lambda: kept.userinfo()[1] == new_email, 10, "the new email")
    kept.elsewhere("UPDATE users SET state = 'disabled' WHERE email = %s", new_email)
    wait_until(lambda: kept.userinfo()[0] == 401, 10, "the disabled user's token refused")


def test_while_a_notification_waits_unapplied_the_database_is_read(kept, monkeypatch):
    """The window between a revocation elsewhere and this process refusing the token is
    PostgreSQL's delivery, not this process's: here the listener is held before it applies
    the notification (as a busy process would hold it), and the token is refused anyway."""
    kept.warm()
    release = threading.Event()
    notified = token_cache.TokenCache.notified

    def held(cache, channel, payload):
        release.wait(10)
        notified(cache, channel, payload)

    monkeypatch.setattr(token_cache.TokenCache, "notified", held)
    try:
        kept.elsewhere("UPDATE tokens SET revoked_at = 1 WHERE jti = %s", kept.jti)
        wait_until(lambda: not kept.cache.listener.quiet(), 10, "the notification delivered")
        assert kept.introspect() == (False, 1)  # read again, although still kept
        assert kept.userinfo()[0] == 401
    finally:
        release.set()
    wait_until(kept.cache.listener.quiet, 10, "the notification applied")
    assert kept.introspect() == (False, 1)  # forgotten: read again, and refused


def test_a_revocation_in_this_process_applies_at_once(kept, monkeypatch):
    """No waiting: the process forgets what it kept when it revokes, without the
    notification, which this test holds back (the listener applies nothing)."""
    kept.warm()
    monkeypatch.setattr(token_cache.TokenCache, "notified", lambda cache, channel, payload: None)
    revoked = requests.post(
        f"{kept.realm.issuer}/revoke", data={"token": kept.tokens["refresh_token"]},
        auth=(kept.realm.client_id, kept.realm.client_secret), timeout=10,
    )  # fmt: skip
    assert revoked.status_code == 200
    assert kept.introspect() == (False, 1)


def test_a_lost_listener_forgets_everything_and_listens_again(kept):
    kept.warm()
    kept.kill_listener()
    # Whether this change comes while the listener is down (its notification lost) or after
    # it is back, the token must be refused.
    kept.elsewhere("UPDATE tokens SET revoked_at = 1 WHERE jti = %s", kept.jti)
    wait_until(lambda: kept.introspect()[0] is False, 10, "the revoked token inactive")
    wait_until(kept.listening, 10, "listening again")


def test_a_listener_cut_off_without_a_sign_stops_trusting_within_seconds(kept):
    """A network partition between this node and PostgreSQL, while other nodes still revoke:
    the listener's backend is stopped (SIGSTOP), so its connection stays open but silent.
    Within a heartbeat (``change_listener.HEARTBEAT``, whose unanswered ``SELECT 1`` keeps
    the listener busy) the cache stops answering from memory and reads the database
    (reachable here on other connections), long before TCP gives up."""
    kept.warm()
    pid = kept.cache.listener.backend_pid  # this app's (other apps of the run listen too)
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: kept.introspect() == (True, 1), 10, "read again")
        kept.elsewhere("UPDATE tokens SET revoked_at = 1 WHERE jti = %s", kept.jti)
        assert kept.introspect() == (False, 1)  # no notification needed
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: kept.introspect() == (False, 0), 10, "trusted and kept again")


def test_without_the_triggers_nothing_is_kept(kept, monkeypatch, caplog):
    """A schema without migration 0005's triggers would never notify: nothing is kept."""
    kept.warm()
    monkeypatch.setattr(token_cache.TokenCache, "RECHECK", 0.2)  # how soon it looks again
    kept.elsewhere("DROP TRIGGER users_changed ON users")
    try:
        kept.kill_listener()

        def said():
            return any("no users_changed trigger" in r.getMessage() for r in caplog.records)

        wait_until(said, 10, "the listener finds no trigger")
        assert [kept.introspect() for _ in range(3)] == [(True, 1)] * 3
    finally:
        columns = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in (
            "sub", "email", "name", "email_verified", "state", "activation_deadline",
            "access_expires_at",
        ))  # fmt: skip
        kept.elsewhere(
            f"CREATE TRIGGER users_changed AFTER UPDATE ON users FOR EACH ROW WHEN ({columns}) "
            "EXECUTE FUNCTION idp_user_changed()"
        )
    kept.warm()  # the trigger is back: kept again


def test_what_notifies_and_what_stays_silent(server, factory, browser, app):
    """A sign-in's writes to the user and a refresh token's rotation change nothing a
    lookup reads, and notify nothing; a revocation and a change of email do. PostgreSQL
    delivers notifications in commit order, so what comes first tells."""
    realm = Realm(server, factory, browser)
    issued = realm.tokens()
    with app.app_context():
        url = db.engine.url.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url, autocommit=True) as listening, psycopg.connect(
        url, autocommit=True
    ) as changing:
        listening.execute("LISTEN idp_tokens")
        listening.execute("LISTEN idp_users")
        user_id = changing.execute(
            "SELECT user_id FROM tokens WHERE jti = %s", (jti_of(issued["access_token"]),)
        ).fetchone()[0]
        changing.execute("UPDATE users SET totp_last_step = 7 WHERE id = %s", (user_id,))
        rotated = realm.token(grant_type="refresh_token", refresh_token=issued["refresh_token"])
        assert rotated.status_code == 200
        newer = rotated.json()["access_token"]
        changing.execute("UPDATE tokens SET access_revoked_at = 1 WHERE jti = %s", (jti_of(newer),))
        changing.execute("UPDATE users SET name = 'Renamed' WHERE id = %s", (user_id,))
        heard = [
            (note.channel, note.payload)
            for note in listening.notifies(timeout=5, stop_after=2)
        ]
    assert heard == [("idp_tokens", jti_of(newer)), ("idp_users", str(user_id))]
