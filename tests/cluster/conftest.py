"""Cluster fixtures: two idp nodes (separate `idp serve` processes, separate ports) on one fresh
PostgreSQL database and one Redis, sharing one keys folder, behind one load balancer.

They need PostgreSQL and Redis: without them the tests skip on a developer's machine and
fail when ``CI=true``. They run once, in the PostgreSQL pass of ``make test``
(``IDP_TEST_DB=postgresql``); see ``cluster_environment``.
"""

import os
import uuid

import psycopg
import pytest
import redis

from tests.cluster.cluster import Cluster
from tests.cluster.nodes import unavailable
from tests.conftest import PG_ADMIN_URL

# A Redis database of the cluster tests' own; each test calls from a loopback address of its
# own too, so per-IP counters left by another test (or another run) never reach it.
REDIS_URL = os.environ.get("IDP_TEST_CLUSTER_REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture(scope="session")
def cluster_environment():
    """Refuse early, before any node starts, when a cluster cannot run here."""
    if os.environ.get("IDP_TEST_DB", "sqlite") != "postgresql":
        # Not a CI failure: many nodes need a database server they can share, so these run in
        # the PostgreSQL pass of `make test` only; the SQLite pass skips them by design.
        pytest.skip("the cluster tests run in the PostgreSQL pass (IDP_TEST_DB=postgresql)")
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        unavailable(f"no PostgreSQL at {PG_ADMIN_URL}: {exc}")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"no Redis at {REDIS_URL}: {exc}")
    finally:
        client.close()


@pytest.fixture(scope="module")
def cluster(cluster_environment, tmp_path_factory):
    """Per test module: a fresh database, `idp init` and seeding through the CLI, nodes a and b."""
    name = f"idp_cluster_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    cluster = Cluster(tmp_path_factory.mktemp("cluster"), url, REDIS_URL)
    try:
        cluster.provision()
        cluster.add_node("a")
        cluster.add_node("b")
        yield cluster
    finally:
        cluster.close()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failure shows the nodes' side too: a page only says "Something went wrong"."""
    report = yield
    cluster = getattr(item, "funcargs", {}).get("cluster")
    if report.failed and cluster is not None:
        for name, node in cluster.started.items():
            tail = node.log().splitlines()[-40:]
            report.sections.append((f"node {name} log (last 40 lines)", "\n".join(tail)))
    return report
