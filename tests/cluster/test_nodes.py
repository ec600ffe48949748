"""Two identical nodes behind one public URL: what one node starts, the other finishes.

Every piece of state a second node needs is in PostgreSQL (login transactions, sessions,
codes, tokens, TOTP steps), in Redis (rate-limit and throttle counters) or in the shared
keys folder; none of these tests would pass if a node kept any of it in its own memory.
"""

import hashlib
import threading
import uuid

import pytest

from tests.cluster.cluster import PASSWORD
from tests.cluster.cluster import REDIRECT_URI
from tests.cluster.cluster import jwt_header
from tests.cluster.nodes import NODE_HEADER
from tests.cluster.nodes import wait_until
from tests.helpers import callback_params
from tests.helpers import phone_code
from tests.integration.journey import step_of

pytestmark = pytest.mark.cluster


def sign_in(cluster, node):
    """A whole sign-in served by ``node``; returns (callback params, code_verifier)."""
    email = cluster.new_user()
    browser = cluster.browser(node)
    page, verifier = cluster.open_sign_in(browser)
    page = cluster.step(browser, page, {"email": email})
    page = cluster.step(browser, page, {"password": PASSWORD})
    reached = cluster.step(browser, page, {"code": phone_code(email)})
    assert isinstance(reached, str), reached.text[:500]
    assert set(cluster.balancer.nodes_for(browser.address)) == {node}
    return callback_params(reached), verifier


def test_sign_in_started_on_one_node_finishes_on_the_other(cluster):
    email = cluster.new_user()
    browser = cluster.browser("a")
    page, verifier = cluster.open_sign_in(browser)
    page = cluster.step(browser, page, {"email": email})
    assert step_of(page) == "password"
    on_a = cluster.balancer.nodes_for(browser.address)

    cluster.pin(browser, "b")
    page = cluster.step(browser, page, {"password": PASSWORD})
    assert step_of(page) == "second_factor"
    reached = cluster.step(browser, page, {"code": phone_code(email)})

    assert isinstance(reached, str) and reached.startswith(REDIRECT_URI), reached.text[:500]
    on_b = cluster.balancer.nodes_for(browser.address)[len(on_a) :]
    assert set(on_a) == {"a"} and set(on_b) == {"b"}
    params = callback_params(reached)
    assert params["iss"] == cluster.issuer
    tokens = cluster.redeem("a", params["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    claims = cluster.userinfo("b", tokens.json()["access_token"])
    assert claims.status_code == 200 and claims.json()["email"] == email


def test_code_redeemed_on_one_node_and_replayed_on_the_other_revokes(cluster):
    params, verifier = sign_in(cluster, "a")
    first = cluster.redeem("b", params["code"], verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert cluster.userinfo("a", tokens["access_token"]).status_code == 200

    replay = cluster.redeem("a", params["code"], verifier)

    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # Each worker that kept the token (services.token_cache) forgets it when PostgreSQL
    # delivers the revocation's notification, and reads it again while one waits unapplied.
    def refused_by(node):  # several requests: whichever worker answers
        return all(
            cluster.userinfo(node, tokens["access_token"]).status_code == 401 for _ in range(4)
        )

    for node in ("a", "b"):
        wait_until(lambda: refused_by(node), 5, f"refused at node {node}")  # noqa: B023
    refresh = cluster.token("b", grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refresh.status_code == 400


def test_per_ip_rate_limit_counts_across_nodes(cluster):
    """60 sign-in POSTs a minute per client address, counted in Redis by every node."""
    session = cluster.session()
    url = f"{cluster.issuer}/login"
    nodes = ["a", "b"] * 30
    statuses = [
        session.post(url, data={"step": "identify"}, headers={NODE_HEADER: node}).status_code
        for node in nodes
    ]
    assert 429 not in statuses
    served = cluster.balancer.nodes_for(session.address)
    assert served.count("a") == served.count("b") == 30

    refused = session.post(url, data={"step": "identify"}, headers={NODE_HEADER: "a"})
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    # A client's own X-Forwarded-For buys nothing: the balancer appends the real address,
    # and the nodes trust one hop (IDP_TRUSTED_PROXIES=1), so they read that one.
    spoofed = session.post(
        url,
        data={"step": "identify"},
        headers={NODE_HEADER: "b", "X-Forwarded-For": "203.0.113.7"},
    )
    assert spoofed.status_code == 429


def test_wrong_passwords_on_both_nodes_lock_the_account(cluster):
    email = cluster.new_user()
    browser = cluster.browser("a")
    page, _ = cluster.open_sign_in(browser)
    page = cluster.step(browser, page, {"email": email})
    for node in ("b", "a", "b", "a", "b"):
        cluster.pin(browser, node)
        page = cluster.step(browser, page, {"password": "Wrong-Password-1"})
        assert "Invalid email and password combination." in page.text

    cluster.pin(browser, "a")
    page = cluster.step(browser, page, {"password": PASSWORD})

    assert step_of(page) == "password" and "Too many attempts" in page.text
    events = cluster.sql(
        "SELECT event, ip FROM audit_events WHERE detail::text LIKE %s ORDER BY id",
        (f"%{email}%",),
    )
    assert [event for event, _ in events].count("lockout") == 1
    # Both nodes saw the browser's own address, through the balancer's X-Forwarded-For.
    assert {ip for event, ip in events if event == "login.failure"} == {browser.address}


def test_refresh_token_raced_against_both_nodes_leaves_one_family(cluster):
    params, verifier = sign_in(cluster, "b")
    refresh_token = cluster.redeem("a", params["code"], verifier).json()["refresh_token"]
    barrier = threading.Barrier(2)
    answers = {}

    def refresh(node):
        session = cluster.session()
        barrier.wait(timeout=30)
        answers[node] = cluster.token(
            node, session, grant_type="refresh_token", refresh_token=refresh_token
        )

    racers = [threading.Thread(target=refresh, args=(node,)) for node in ("a", "b")]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)

    statuses = sorted(answer.status_code for answer in answers.values())
    assert statuses == [200, 400], {n: a.text for n, a in answers.items()}
    winner = next(a.json() for a in answers.values() if a.status_code == 200)
    loser = next(a.json() for a in answers.values() if a.status_code == 400)
    assert loser["error"] == "invalid_grant"
    old_hash = hashlib.sha256(refresh_token.encode()).hexdigest()
    rows = cluster.sql(
        "SELECT refresh_hash, revoked_at IS NULL AND rotated_at IS NULL FROM tokens"
        " WHERE grant_id = (SELECT grant_id FROM tokens WHERE refresh_hash = %s)"
        " AND refresh_hash IS NOT NULL",
        (old_hash,),
    )
    # One family: the old token and the winner's, never a fork, and it stays live: a loser
    # arriving within IDP_REFRESH_REUSE_LEEWAY of the rotation is refused, not treated as a
    # reuse that would end the family (RFC 9700 §4.14.2 applies after the leeway).
    new_hash = hashlib.sha256(winner["refresh_token"].encode()).hexdigest()
    assert {row[0] for row in rows} == {old_hash, new_hash}
    assert [row[0] for row in rows if row[1]] == [new_hash]
    follow_up = cluster.token(
        "a", grant_type="refresh_token", refresh_token=winner["refresh_token"]
    )
    assert follow_up.status_code == 200


def test_key_rotation_through_the_cli_reaches_both_nodes(cluster):
    """``idp keys rotate`` rewrites keyring.json; each node re-reads it on its next request."""
    old = cluster.token("a", grant_type="client_credentials").json()["access_token"]
    old_kid = jwt_header(old)["kid"]

    ring = cluster.cli("keys", "rotate", "--json")["keys"]

    active = next(k["kid"] for k in ring if k["alg"] == "RS256" and k["state"] == "active")
    assert active != old_kid
    published = {k["kid"] for k in ring}
    for node in ("a", "b"):
        jwks = cluster.call("GET", node, "jwks")
        assert {k["kid"] for k in jwks.json()["keys"]} == published
        for _ in range(4):  # whichever worker answers
            token = cluster.token(node, grant_type="client_credentials").json()["access_token"]
            assert jwt_header(token)["kid"] == active
            assert cluster.introspect(node, token).json()["active"] is True
        # The retired key stays published, so what it signed is still good.
        assert cluster.introspect(node, old).json()["active"] is True


def test_a_client_changed_on_one_node_stops_working_on_the_other(cluster):
    """Each node keeps the clients it authenticated (``services.client_cache``) and forgets
    one when PostgreSQL notifies a change: a secret replaced by an operator in psql, or a
    client deleted through node a's registration endpoint, stops working on node b too —
    within the notification's delivery, long before the cache's 60 s backstop."""
    initial = cluster.cli("client", "initial-token", "--tenant", cluster.slug, "--json")
    registered = cluster.call(
        "POST", "a", "register",
        headers={"Authorization": f"Bearer {initial['initial_access_token']}"},
        json={"client_name": "Kept", "grant_types": ["client_credentials"], "redirect_uris": []},
    )  # fmt: skip
    assert registered.status_code == 201, registered.text
    client = registered.json()

    def token_status(node, secret):
        auth = (client["client_id"], secret)
        data = {"grant_type": "client_credentials"}
        return cluster.call("POST", node, "token", data=data, auth=auth).status_code

    def refused_everywhere(secret):
        # Several requests per node: whichever worker answers has its own cache.
        return all(token_status(node, secret) == 401 for node in ("a", "b") for _ in range(4))

    for node in ("a", "b"):  # every worker has used (and kept) the client
        assert [token_status(node, client["client_secret"]) for _ in range(8)] == [200] * 8

    new_secret = "replaced-by-the-operator-" + uuid.uuid4().hex
    cluster.sql(
        "UPDATE clients SET secret_hash = %s WHERE client_id = %s",
        (hashlib.sha256(new_secret.encode()).hexdigest(), client["client_id"]),
    )
    wait_until(lambda: refused_everywhere(client["client_secret"]), 10, "old secret refused")
    assert token_status("b", new_secret) == 200

    deleted = cluster.call(
        "DELETE", "a", f"register/{client['client_id']}",
        headers={"Authorization": f"Bearer {client['registration_access_token']}"},
    )  # fmt: skip
    assert deleted.status_code == 204, deleted.text
    wait_until(lambda: refused_everywhere(new_secret), 10, "deleted client refused")
