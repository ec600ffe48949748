"""Crypto floors on this machine, one core: what every figure that signs or hashes is read against.

RS256 and ES256 JWT signatures (and RS256 verification, which userinfo and introspection
pay) with joserfc, the library idp signs with; argon2id verifications with the
parameters idp hashes passwords with (``idp/services/passwords.py``).
"""

import time

from joserfc import jwt
from joserfc.jwk import ECKey
from joserfc.jwk import RSAKey

CLAIMS = {"iss": "http://127.0.0.1/bench", "sub": "user", "aud": "client", "exp": 2_000_000_000}


def per_second(fn, seconds=1.0):
    """How many calls of ``fn`` one core completes per second."""
    fn()
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        fn()
        count += 1
    return count / (time.perf_counter() - started)


def jose_floors(seconds=1.0):
    """Signatures (and RS256 verifications) per second with joserfc."""
    rsa = RSAKey.generate_key(2048)
    ec = ECKey.generate_key("P-256")
    rs_token = jwt.encode({"alg": "RS256"}, CLAIMS, rsa, algorithms=["RS256"])
    return {
        "RS256 sign (2048-bit)": per_second(
            lambda: jwt.encode({"alg": "RS256"}, CLAIMS, rsa, algorithms=["RS256"]), seconds
        ),
        "ES256 sign (P-256)": per_second(
            lambda: jwt.encode({"alg": "ES256"}, CLAIMS, ec, algorithms=["ES256"]), seconds
        ),
        "RS256 verify (2048-bit)": per_second(
            lambda: jwt.decode(rs_token, rsa, algorithms=["RS256"]), seconds
        ),
    }


def argon2_floor(seconds=2.0):
    """argon2id verifications per second with idp's hasher, and its parameters."""
    from idp.services.passwords import HASHER

    encoded = HASHER.hash("correct horse battery staple")
    rate = per_second(lambda: HASHER.verify(encoded, "correct horse battery staple"), seconds)
    params = f"m={HASHER.memory_cost} KiB, t={HASHER.time_cost}, p={HASHER.parallelism}"
    return {f"argon2id verify ({params})": rate}


def crypto_floors():
    """Every floor, name → operations per second on one core."""
    return {**jose_floors(), **argon2_floor()}


def postgres_floors(conninfo, seconds=1.0):
    """Round trips per second on one psycopg connection: a bare ``SELECT 1``, a read by
    primary key inside BEGIN … ROLLBACK (what a read-only request does today), and an
    INSERT + COMMIT (one durable write: the WAL flush included)."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (id serial PRIMARY KEY, v text)")
        conn.execute("INSERT INTO bench_floor (v) VALUES ('x')")
        select_one = per_second(lambda: conn.execute("SELECT 1").fetchone(), seconds)

        def read_in_transaction():
            """What a read-only request does with psycopg today."""
            conn.execute("BEGIN")
            conn.execute("SELECT v FROM bench_floor WHERE id = 1").fetchone()
            conn.execute("ROLLBACK")

        def insert_commit():
            """One durable write."""
            conn.execute("BEGIN")
            conn.execute("INSERT INTO bench_floor (v) VALUES ('y')")
            conn.execute("COMMIT")

        read = per_second(read_in_transaction, seconds)
        write = per_second(insert_commit, seconds)
        conn.execute("DROP TABLE bench_floor")
    return {
        "PostgreSQL SELECT 1 (one round trip)": select_one,
        "PostgreSQL BEGIN; SELECT by key; ROLLBACK (3 round trips)": read,
        "PostgreSQL BEGIN; INSERT; COMMIT (3 round trips, WAL flush)": write,
    }
