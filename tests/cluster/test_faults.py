"""Faults: Redis down, a node killed mid-journey, PostgreSQL restarted under load.

The PostgreSQL restart stays the LAST test of this module: it restarts the server that
every test on this machine shares (a restart, never a stop, so everyone's pools can
reconnect), and nothing after it in this module should have to care.
"""

import re
import shutil
import subprocess
import threading
from collections import Counter
from urllib.parse import urlsplit

import pytest

from tests.cluster.cluster import PASSWORD
from tests.cluster.cluster import jwt_claims
from tests.cluster.nodes import NODE_HEADER
from tests.cluster.nodes import RedisServer
from tests.cluster.nodes import unavailable
from tests.cluster.nodes import wait_until
from tests.conftest import PG_ADMIN_URL
from tests.helpers import callback_params
from tests.helpers import phone_code
from tests.integration.journey import step_of

pytestmark = pytest.mark.cluster

FAIL_CLOSED_LOG = re.compile(
    r"throttle store unavailable \(redis\.exceptions\.\w+\); password attempts fail closed"
)


def test_redis_down_fails_closed_for_passwords_and_nothing_else_breaks(cluster, tmp_path):
    """A node whose Redis dies refuses password tries (it cannot count them) and says why in
    its log; token endpoints and readiness do not depend on Redis. Redis back, it recovers."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    store = RedisServer(tmp_path)
    try:
        node = cluster.add_node("c", IDP_REDIS_URL=store.start().url)
        email = cluster.new_user()
        browser = cluster.browser("c")
        page, _ = cluster.open_sign_in(browser)
        page = cluster.step(browser, page, {"email": email})
        assert step_of(page) == "password"

        store.kill()
        page = cluster.step(browser, page, {"password": PASSWORD})

        assert page.status_code == 400 and step_of(page) == "password"
        assert "Too many attempts" in page.text
        wait_until(lambda: FAIL_CLOSED_LOG.search(node.log()), 30, "the fail-closed log line")
        assert cluster.token("c", grant_type="client_credentials").status_code == 200
        assert node.ready()
        assert not re.search(r'HTTP/1\.1" 5\d\d ', node.log()), "a 5xx in the access log"

        store.start()  # back, empty, on the same port
        page = cluster.step(browser, page, {"password": PASSWORD})
        assert step_of(page) == "second_factor", page.text[:500]
        reached = cluster.step(browser, page, {"code": phone_code(email)})
        assert isinstance(reached, str), reached.text[:500]
        assert set(cluster.balancer.nodes_for(browser.address)) == {"c"}
    finally:
        if "c" in cluster.nodes:
            cluster.remove_node("c")
        store.kill()


def test_node_killed_mid_journey_the_user_finishes_on_the_other(cluster):
    email = cluster.new_user()
    browser = cluster.browser("a")
    page, verifier = cluster.open_sign_in(browser)
    page = cluster.step(browser, page, {"email": email})
    assert step_of(page) == "password"
    before = len(cluster.balancer.nodes_for(browser.address))
    node_a = cluster.nodes["a"]

    node_a.kill()
    try:
        assert not node_a.ready()
        # Still pinned to a: the balancer finds it refusing and passes the request on to b.
        page = cluster.step(browser, page, {"password": PASSWORD})
        assert step_of(page) == "second_factor", page.text[:500]
        reached = cluster.step(browser, page, {"code": phone_code(email)})
        assert isinstance(reached, str), reached.text[:500]
        served = cluster.balancer.nodes_for(browser.address)
        assert set(served[:before]) == {"a"} and set(served[before:]) == {"b"}
        code = callback_params(reached)["code"]
        assert cluster.redeem("b", code, verifier).status_code == 200
    finally:
        node_a.start()  # the same node again, for what follows


def local_postgresql_cluster():
    """The version of the local cluster serving the tests' port, for ``pg_ctlcluster``."""
    if shutil.which("pg_ctlcluster") is None or shutil.which("pg_lsclusters") is None:
        unavailable("pg_ctlcluster (postgresql-common) is needed to restart PostgreSQL")
    port = str(urlsplit(PG_ADMIN_URL).port or 5432)
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    for line in listing.splitlines():
        version, name, cluster_port = line.split()[:3]
        if name == "main" and cluster_port == port:
            return version
    unavailable(f"no local PostgreSQL cluster 'main' on port {port}")


class Load:
    """Threads that keep both nodes busy with database work: client-credentials tokens,
    introspection of each at the other node, authorization requests, and the constant
    documents (an unknown tenant's discovery always asks the database)."""

    ALLOWED = {
        "token": {200, 503},
        "introspect": {200, 503},
        "authorize": {303, 503},
        "jwks": {200, 503},
        "unknown tenant": {404, 503},
    }

    def __init__(self, cluster):
        self.cluster = cluster
        self.stop = threading.Event()
        self.answers = []  # (node, endpoint, response)
        self.issued = []  # access tokens answered 200
        self.failures = []  # exceptions and tokens introspected inactive

    def run(self, node, other):
        """One client looping until stopped."""
        session = self.cluster.session()
        query, _ = self.cluster.authorize_query()
        try:
            while not self.stop.is_set():
                self._round(session, node, other, query)
        except Exception as exc:  # reported by the test, not lost in a thread
            self.failures.append(repr(exc))

    def _round(self, session, node, other, query):
        cluster = self.cluster
        answer = cluster.token(node, session, grant_type="client_credentials")
        self.answers.append((node, "token", answer))
        if answer.status_code == 200:
            token = answer.json()["access_token"]
            self.issued.append(token)
            check = cluster.introspect(other, token, session)
            self.answers.append((other, "introspect", check))
            if check.status_code == 200 and check.json()["active"] is not True:
                self.failures.append(f"issued by {node}, inactive at {other}: {token[:20]}")
        start = cluster.call("GET", node, "authorize", session, params=query, allow_redirects=False)
        self.answers.append((node, "authorize", start))
        self.answers.append((node, "jwks", cluster.call("GET", node, "jwks", session)))
        unknown = f"{cluster.balancer.url}/no-such-tenant/.well-known/openid-configuration"
        missing = session.get(unknown, headers={NODE_HEADER: node}, timeout=30)
        self.answers.append((node, "unknown tenant", missing))

    def served_since(self, mark):
        """Nodes that issued a token after answer number ``mark``."""
        return {n for n, e, r in self.answers[mark:] if e == "token" and r.status_code == 200}


def test_postgresql_restarted_under_load(cluster):
    """Keep this test last in its module (see the module docstring)."""
    version = local_postgresql_cluster()
    load = Load(cluster)
    clients = [("a", "b"), ("b", "a"), ("a", "b"), ("b", "a")]
    threads = [threading.Thread(target=load.run, args=pair, daemon=True) for pair in clients]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(load.issued) >= 20, 60, "load under way")
        restart = subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert restart.returncode == 0, restart.stdout + restart.stderr
        nodes = cluster.nodes.values()
        wait_until(lambda: all(node.ready() for node in nodes), 60, "every node ready again")
        mark = len(load.answers)
        wait_until(lambda: load.served_since(mark) == {"a", "b"}, 60, "tokens from both again")
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=60)

    tally = Counter((endpoint, answer.status_code) for _, endpoint, answer in load.answers)
    print(f"answers during the PostgreSQL restart: {dict(tally)}")
    assert not load.failures
    unexpected = [
        (node, endpoint, answer.status_code, answer.text[:300])
        for node, endpoint, answer in load.answers
        if answer.status_code not in Load.ALLOWED[endpoint]
    ]
    assert not unexpected
    for _, endpoint, answer in load.answers:
        if answer.status_code == 503 and endpoint != "authorize":
            assert answer.json()["error"] == "temporarily_unavailable", answer.text
    # No grant lost or duplicated: every token answered 200 is on record, once, and live.
    jtis = [jwt_claims(token)["jti"] for token in load.issued]
    rows = cluster.sql(
        "SELECT jti, count(*) FROM tokens WHERE jti = ANY(%s) AND revoked_at IS NULL GROUP BY jti",
        (jtis,),
    )
    assert sorted(rows) == sorted((jti, 1) for jti in jtis)
