"""Each token endpoint's floor on this machine: its own signatures and SQL in a bare loop.

What a request of each kind must do in idp's design, and nothing else:

- client credentials: sign the access token (RS256, or ES256 for that row), INSERT its row;
- authorization code: read the code and its user, sign the access token and the ID token,
  claim the code and INSERT the token row (one statement);
- refresh: read the refresh token and its user, sign the new access token, claim the old
  token and INSERT the new one (one statement);
- userinfo, introspection, for a token the worker does not keep yet (``token_cache``): read
  the access token's row and its user (its RS256 signature is verified once per token and
  process, as idp's ``KeyRing.verified`` does). A kept token needs no statement at all.

The statements are idp's own (``idp.services.tokens``), compiled once for PostgreSQL and run
with psycopg (prepared, in autocommit, as idp's token requests run) on the bench's database,
each write's WAL flush included; the signatures are joserfc's, as idp makes them. No HTTP, no
Flask, no Authlib, no ORM. The loop runs in one process per core, then in two per core (a
process waiting on PostgreSQL leaves its core to another); the better rate is the floor. At
the floor a server would spend nothing but its signatures and its database work; a rate of
oidc-provider's above it cannot be matched by anything that signs a JWT per access token and
keeps every grant as a durable row, on this machine.
"""

import hashlib
import json
import multiprocessing
import os
import secrets
import time

import psycopg
from joserfc import jwt
from joserfc.jwk import ECKey
from joserfc.jwk import RSAKey

from servers import REDIRECT_URI
from servers import TENANT

SECONDS = 2.0
CODES_PER_PROCESS = 6_000  # more than a process redeems in SECONDS on any machine seen so far
SCOPE = "openid email"
MARK = "bench-floor"  # the ``sid`` of every row the floors write, so that they can be removed
WORK = {
    "client_credentials": "RS256 signature + INSERT",
    "client_credentials_es256": "ES256 signature + INSERT",
    "authorization_code": "SELECT code and user + 2 RS256 signatures + claiming INSERT",
    "refresh": "SELECT token and user + RS256 signature + claiming INSERT",
    "userinfo": "a token not kept yet: SELECT token and user (RS256 verified once per token)",
    "introspection": "a token not kept yet: SELECT token and user (RS256 verified once per token)",
}


def _statements():
    """idp's statements as psycopg runs them: SQL text with ``%(name)s`` parameters."""
    from idp.services import tokens
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.psycopg.dialect()

    def sql(statement, keys=None):
        return statement.compile(dialect=dialect, column_keys=keys).string

    return {
        "insert": sql(tokens._INSERT_TOKEN, list(tokens._TOKEN_FIELDS)),
        "code": sql(tokens._CODE_AND_USER),
        "refresh": sql(tokens._REFRESH_AND_USER),
        "jti": sql(tokens._BY_JTI.statement),
        "claim_code": sql(tokens._CLAIMING_INSERT["code"]),
        "claim_refresh": sql(tokens._CLAIMING_INSERT["refresh"]),
    }


def _digest(value):
    from idp.services.tokens import hash_token  # how idp stores codes and refresh tokens

    return hash_token(value)


class Setting:
    """What every loop needs: the bench tenant's ids, keys, SQL; picklable for the processes."""

    def __init__(self, conninfo):
        self.conninfo = conninfo
        with psycopg.connect(conninfo, autocommit=True) as conn:
            self.tenant_id = conn.execute(
                "SELECT id FROM tenants WHERE slug = %s", (TENANT,)
            ).fetchone()[0]
            self.client_id = conn.execute(
                "SELECT client_id FROM clients WHERE tenant_id = %s ORDER BY id LIMIT 1",
                (self.tenant_id,),
            ).fetchone()[0]
            self.user_id = conn.execute(
                "SELECT id FROM users WHERE tenant_id = %s ORDER BY id LIMIT 1", (self.tenant_id,)
            ).fetchone()[0]
        self.rsa = RSAKey.generate_key(2048).as_dict(private=True)
        self.ec = ECKey.generate_key("P-256").as_dict(private=True)
        self.sql = _statements()
        self.issuer = f"http://127.0.0.1/{TENANT}"

    def token_row(self, grant_id, refresh=None):
        """The values of one token row, as ``tokens._token_values`` makes them."""
        now = int(time.time())
        return {
            "tenant_id": self.tenant_id, "client_id": self.client_id, "user_id": self.user_id,
            "grant_id": grant_id, "jti": secrets.token_urlsafe(16),
            "refresh_hash": _digest(refresh) if refresh else None, "scope": SCOPE,
            "issued_at": now, "access_expires_at": now + 3600,
            "refresh_expires_at": now + 86400 if refresh else None,
            "family_expires_at": now + 86400 if refresh else None, "auth_time": now,
            "sid": MARK, "amr": json.dumps(["pwd"]), "acr": None, "claims": None,
        }  # fmt: skip

    def access_claims(self, jti):
        now = int(time.time())
        return {
            "iss": self.issuer, "sub": "user", "aud": self.issuer, "client_id": self.client_id,
            "iat": now, "exp": now + 3600, "jti": jti, "scope": SCOPE,
        }  # fmt: skip


class Loop:
    """One process's loop of one kind: ``prepare`` outside the clock, then ``once`` per request."""

    def __init__(self, setting, kind):
        self.s, self.kind = setting, kind
        self.conn = psycopg.connect(setting.conninfo, autocommit=True)
        self.rsa = RSAKey.import_key(setting.rsa)
        self.ec = ECKey.import_key(setting.ec)
        self.grant = f"floor:{os.getpid()}:{secrets.token_hex(4)}"
        self.codes, self.refresh, self.access, self.verified = [], None, None, {}

    def prepare(self):
        """The single-use inputs this kind needs: codes, a refresh token, an access token."""
        s, now = self.s, int(time.time())
        if self.kind == "authorization_code":
            self.codes = [secrets.token_urlsafe(32) for _ in range(CODES_PER_PROCESS)]
            with self.conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO authorization_codes (tenant_id, code_hash, client_id, user_id,"
                    " redirect_uri, scope, auth_time, amr, sid, expires_at, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, '[\"pwd\"]', %s, %s, %s)",
                    [(s.tenant_id, _digest(c), s.client_id, s.user_id, REDIRECT_URI, SCOPE, now,
                      MARK, now + 600, now) for c in self.codes],
                )  # fmt: skip
        elif self.kind == "refresh":
            self.refresh = secrets.token_urlsafe(32)
            self.conn.execute(s.sql["insert"], s.token_row(self.grant, self.refresh))
        elif self.kind in ("userinfo", "introspection"):
            row = s.token_row(self.grant)
            self.conn.execute(s.sql["insert"], row)
            self.access = self._sign(s.access_claims(row["jti"]), "RS256", "at+jwt")

    def _sign(self, claims, alg, typ=None):
        key = self.rsa if alg == "RS256" else self.ec
        header = {"alg": alg, "kid": "floor", **({"typ": typ} if typ else {})}
        return jwt.encode(header, claims, key, algorithms=[alg])

    def _claiming_insert(self, statement, claim_id, row):
        params = {f"new_{name}": value for name, value in row.items()}
        params.update(claim_id=claim_id, claimed_at=row["issued_at"])
        return self.conn.execute(statement, params, prepare=True).fetchone()

    def once(self):
        """One request's work; False when this process's single-use inputs are spent."""
        s, sql = self.s, self.s.sql
        if self.kind.startswith("client_credentials"):
            row = s.token_row(self.grant)
            alg = "ES256" if self.kind.endswith("es256") else "RS256"
            self._sign(s.access_claims(row["jti"]), alg, "at+jwt")
            self.conn.execute(sql["insert"], row, prepare=True)
        elif self.kind == "authorization_code":
            if not self.codes:
                return False
            found = self.conn.execute(
                sql["code"], {"code_hash": _digest(self.codes.pop())}, prepare=True
            ).fetchone()
            row = s.token_row(f"code:{found[0]}")
            self._sign(s.access_claims(row["jti"]), "RS256", "at+jwt")
            self._sign({**s.access_claims(row["jti"]), "nonce": "n"}, "RS256")  # the ID token
            self._claiming_insert(sql["claim_code"], found[0], row)
        elif self.kind == "refresh":
            found = self.conn.execute(
                sql["refresh"], {"refresh_hash": _digest(self.refresh)}, prepare=True
            ).fetchone()
            self.refresh = secrets.token_urlsafe(32)
            row = s.token_row(self.grant, self.refresh)
            self._sign(s.access_claims(row["jti"]), "RS256", "at+jwt")
            self._claiming_insert(sql["claim_refresh"], found[0], row)
        else:  # as idp's KeyRing.verified: the signature once, then the token's digest
            digest = hashlib.sha256(self.access.encode()).digest()
            claims = self.verified.get(digest)
            if claims is None:
                claims = self.verified[digest] = jwt.decode(
                    self.access, self.rsa, algorithms=["RS256", "ES256"]
                ).claims
            self.conn.execute(sql["jti"], {"key": claims["jti"]}, prepare=True).fetchone()
        return True


def _process(setting, kind, seconds, barrier, results):
    loop = Loop(setting, kind)
    loop.prepare()
    barrier.wait()
    count, deadline = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline and loop.once():
        count += 1
    results.put(count / (time.perf_counter() - started))
    loop.conn.close()


def measure_kind(setting, kind, processes, seconds=SECONDS):
    """Requests/s of ``processes`` loops of ``kind`` side by side."""
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_process, args=(setting, kind, seconds, barrier, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    rates = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join()
    return sum(rates)


def design_floors(conninfo, log=print):
    """{endpoint key: (floor requests/s, processes)} for the token endpoints."""
    setting, cores = Setting(conninfo), os.cpu_count() or 1
    floors = {}
    for kind in WORK:
        rates = {n: measure_kind(setting, kind, n) for n in (cores, 2 * cores)}
        best = max(rates, key=rates.get)
        floors[kind] = (rates[best], best)
        log(f"  floor {kind:26} {rates[best]:8.0f} req/s ({best} processes)")
    _clean(setting)
    return floors


def _clean(setting):
    """Delete the floors' rows, which carry their own ``sid``: the served database is left as
    the benchmark's runs left it."""
    with psycopg.connect(setting.conninfo, autocommit=True) as conn:
        conn.execute("DELETE FROM tokens WHERE sid = %s", (MARK,))
        conn.execute("DELETE FROM authorization_codes WHERE sid = %s", (MARK,))
