"""The measured endpoints, the same requests for both servers; each prepares its own inputs.

Single-use inputs are made outside the timed loop: authorization codes are minted just
before each run (they live 60 s on both servers) and the run is bounded by their count;
rotating refresh tokens are chained (each answer's new refresh token is the next
request's), seeded from full code flows.
"""

import math
import time
from dataclasses import dataclass
from pathlib import Path

from load import CONNECTIONS
from load import Load
from load import Measurement
from load import Spec
from load import run_wrk
from load import write_tokens
from mint import VERIFIER
from mint import token_sets
from servers import REDIRECT_URI

FORM = "application/x-www-form-urlencoded"
CODE_SCOPE = "openid email"
CALIBRATION_CODES = 300
MAX_CODES = 40_000
ACCESS_TOKENS = 32
REFRESH_SEEDS = 2 * CONNECTIONS
WARMUP_SECONDS = 1  # JIT, caches and pools warm, connections open: not counted


@dataclass
class Context:
    """Scratch space and what one target's earlier runs taught (its code-exchange rate)."""

    tmp: Path
    code_rate: float | None = None


def discovery(target, ctx, seconds):
    """OpenID Connect Discovery 1.0 §4 metadata."""
    return Load(Spec("GET", target.paths["discovery"], {}))


def jwks(target, ctx, seconds):
    """The published key set."""
    return Load(Spec("GET", target.paths["jwks"], {}))


def _token_spec(target, body):
    headers = {"Authorization": target.basic, "Content-Type": FORM}
    return Spec("POST", target.paths["token"], headers, body)


def client_credentials(target, ctx, seconds):
    """RFC 6749 §4.4, client_secret_basic, no scope."""
    return Load(_token_spec(target, "grant_type=client_credentials"))


def client_credentials_es256(target, ctx, seconds):
    """The same, for idp's client with ES256 access tokens (oidc-provider: the same client)."""
    headers = {"Authorization": target.es256_basic, "Content-Type": FORM}
    return Load(Spec("POST", target.paths["token"], headers, "grant_type=client_credentials"))


def mint_codes(target, ctx, count):
    """``count`` fresh codes through the authorization endpoint and the signed-in sessions."""
    spec = Spec("GET", target.authorization_url(CODE_SCOPE), {"Cookie": "{token}"})
    cookies = write_tokens(ctx.tmp / f"{target.name}-cookies", target.cookie_headers)
    path = ctx.tmp / f"{target.name}-codes"
    run = run_wrk(target.base, Load(spec, "collect", cookies, count, path), 120)
    codes = path.read_text().split() if path.exists() else []
    if len(codes) < count:
        raise RuntimeError(f"{target.name}: minted {len(codes)} of {count} codes ({run})")
    return write_tokens(path, codes[:count])


def authorization_code(target, ctx, seconds):
    """RFC 6749 §4.1.3 with PKCE; the run ends when its pre-minted codes are used up."""
    body = (
        "grant_type=authorization_code&code={token}"
        f"&redirect_uri={REDIRECT_URI}&code_verifier={VERIFIER}"
    )
    spec = _token_spec(target, body)
    if ctx.code_rate is None:
        path = mint_codes(target, ctx, CALIBRATION_CODES)
        ctx.code_rate = run_wrk(target.base, Load(spec, "once", path), seconds).rps
    count = min(MAX_CODES, math.ceil(ctx.code_rate * seconds * 1.1) + CONNECTIONS)
    return Load(spec, "once", mint_codes(target, ctx, count))


def refresh(target, ctx, seconds):
    """RFC 6749 §6; idp rotates every refresh token, oidc-provider (default) does not for
    confidential clients — the chain follows whatever each answer returns."""
    spec = _token_spec(target, "grant_type=refresh_token&refresh_token={token}")
    seeds = [t["refresh_token"] for t in token_sets(target, REFRESH_SEEDS, offline=True)]
    return Load(spec, "chain", write_tokens(ctx.tmp / f"{target.name}-refresh", seeds))


def _access_tokens(target, ctx):
    tokens = [t["access_token"] for t in token_sets(target, ACCESS_TOKENS, offline=False)]
    return write_tokens(ctx.tmp / f"{target.name}-access", tokens)


def userinfo(target, ctx, seconds):
    """OIDC Core §5.3 with a bearer header, cycling through access tokens of one user."""
    spec = Spec("GET", target.paths["userinfo"], {"Authorization": "Bearer {token}"})
    return Load(spec, "cycle", _access_tokens(target, ctx))


def introspection(target, ctx, seconds):
    """RFC 7662 of the client's own access tokens, client_secret_basic."""
    headers = {"Authorization": target.basic, "Content-Type": FORM}
    spec = Spec("POST", target.paths["introspection"], headers, "token={token}")
    return Load(spec, "cycle", _access_tokens(target, ctx))


@dataclass(frozen=True)
class Endpoint:
    """A label for the table, how to prepare a run, and whether inputs are single use."""

    label: str
    prepare: object
    per_run: bool = False


ENDPOINTS = {
    "discovery": Endpoint("discovery", discovery),
    "jwks": Endpoint("JWKS", jwks),
    "client_credentials": Endpoint("token: client credentials", client_credentials),
    "client_credentials_es256": Endpoint(
        "… with ES256 access tokens", client_credentials_es256
    ),
    "authorization_code": Endpoint("token: authorization code", authorization_code, True),
    "refresh": Endpoint("token: refresh", refresh, True),
    "userinfo": Endpoint("userinfo", userinfo),
    "introspection": Endpoint("introspection", introspection),
}


def _log_line(target, key, m, started):
    return (
        f"  {target.name:14} {ENDPOINTS[key].label:26} {m.rps:8.0f} req/s  "
        f"p50 {m.p50_ms:6.2f} ms  p99 {m.p99_ms:7.2f} ms  errors {m.errors}  "
        f"({time.monotonic() - started:.0f} s)"
    )


def measure(pairs, keys, runs, seconds, log=print):
    """Each endpoint on every ``(target, ctx)`` in turn: a discarded warm-up run each, then
    ``runs`` rounds of one run per target, so a change in the machine's background load
    falls on every server alike. Returns {target name: {key: Measurement}}."""
    results = {target.name: {} for target, _ in pairs}
    for key in keys:
        endpoint, loads, started = ENDPOINTS[key], {}, time.monotonic()
        done = {target.name: [] for target, _ in pairs}
        for length in [WARMUP_SECONDS] + [seconds] * runs:
            for target, ctx in pairs:
                if target.name not in loads or endpoint.per_run:
                    loads[target.name] = endpoint.prepare(target, ctx, length)
                done[target.name].append(run_wrk(target.base, loads[target.name], length))
        for target, _ in pairs:
            results[target.name][key] = m = Measurement(done[target.name][1:])
            log(_log_line(target, key, m, started))
    return results
