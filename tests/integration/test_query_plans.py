"""The hot lookups are read through their credential's unique index (PostgreSQL).

Token, userinfo, introspection, the code exchange and a signed-in user's authorization
request each look one row up by a unique value. With the tenant in the WHERE clause as
well, PostgreSQL read a table it had not analysed yet (a new deployment; the bench's,
growing by thousands of rows a minute) through its tenant_id index, filtering every row
of the tenant: the lookup grew with the table. They now name the unique column only, and
check the tenant on the row.
"""

import os

import pytest

from idp.extensions import db
from idp.services import clients
from idp.services import sessions
from idp.services import tokens

pytestmark = pytest.mark.skipif(
    os.environ.get("IDP_TEST_DB", "sqlite") != "postgresql", reason="PostgreSQL's planner"
)

LOOKUPS = [
    ("access token (userinfo, introspection)", tokens._BY_JTI.statement, "tokens_jti_key"),
    ("refresh token (introspection)", tokens._BY_REFRESH_HASH.statement,
     "tokens_refresh_hash_key"),
    ("refresh token (refresh grant)", tokens._REFRESH_AND_USER, "tokens_refresh_hash_key"),
    ("authorization code", tokens._CODE_AND_USER, "authorization_codes_code_hash_key"),
    ("client", clients._BY_CLIENT_ID, "uq_clients_tenant_client"),
    ("SSO session (every /authorize of a signed-in user)", sessions._BY_SECRET_HASH,
     "sso_sessions_secret_hash_key"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "statement", "index"), LOOKUPS, ids=[x[0] for x in LOOKUPS])
def test_a_hot_lookup_reads_its_unique_index(app, what, statement, index):
    with app.app_context():
        compiled = statement.compile(dialect=db.engine.dialect)
        params = {name: "1" if name != "tenant_id" else 1 for name in compiled.params}
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("SET enable_seqscan = off")  # an index it must be: which one?
            cursor.execute("EXPLAIN " + str(compiled), params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            connection.rollback()
            connection.close()
    assert f"using {index} " in plan, plan
