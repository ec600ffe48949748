"""The results as one Markdown document: printed, and written to ``bench/results/``."""

import os

from design_floors import WORK
from endpoints import ENDPOINTS
from signin import floor_rate

BUSY_CORES = 0.2
SIGN_IN_LABEL = "sign-in, returning user (email → password → authenticator code → code → token)"
SIGN_IN_TARGET = 1.25  # issue 5: within 1.25 × (argon2id verification + signatures)
DIFFERENCES = """\
- idp persists every grant in PostgreSQL (codes, tokens by `jti`, refresh-token hashes) and
  issues RFC 9068 JWT access tokens (one RS256 signature each; a code exchange signs the
  access token and the ID token). oidc-provider, in its default configuration, keeps
  everything in process memory and issues opaque access tokens (a code exchange signs only
  the ID token; client credentials sign nothing). The "… with ES256 access tokens" row is
  idp's client registered with `access_token_signed_response_alg: ES256` (RS256 stays the
  default: RFC 9068 §4's mandatory algorithm); oidc-provider answers the same request as
  in the row above.
- Refresh: idp rotates every refresh token (on PostgreSQL one statement: the conditional
  UPDATE of the old token in a CTE, then the INSERT of the new one);
  oidc-provider's default rotates only for public clients or past 70 % of the token's life,
  so for this confidential client it answers with the same refresh token (and a new ID token).
- userinfo / introspection: idp verifies the JWT (RS256, once per token and process) and
  answers from the token's row and user as each worker keeps them (`services.token_cache`:
  read from PostgreSQL at a token's first use, forgotten as soon as PostgreSQL notifies its
  revocation or a change to its user). The load cycles through 32 tokens, so after the
  warm-up every lookup is a kept one, as for a resource server presenting each token for
  its whole life; a token a worker has not kept costs the read of the floor table's row
  (`--idp-env IDP_TOKEN_CACHE=0` measures that path). oidc-provider looks the opaque value
  up in memory.
- oidc-provider runs as one node process (one core); idp runs its workers on both cores,
  sharing them with PostgreSQL and wrk.
- oidc-provider's codes and refresh seeds come from 32 sessions, each with its own grant: its
  memory adapter walks a grant's token list on every save, so one grant minting thousands
  of codes would slow it down as no real load does. Its store is the default MemoryAdapter
  over a bigger LRU (the default 1,000 entries would evict pre-minted codes)."""


def _ms(value):
    return f"{value:.2f}"


def _errors(measurement):
    detail = measurement.error_detail
    return f"{measurement.errors} ({detail})" if detail else str(measurement.errors)


def comparison_table(idp, node, sign_in=None, floors=None):
    """Endpoint, both rates, the ratio, latencies and errors."""
    rows = [
        "| endpoint | idp req/s | oidc-provider req/s | idp / oidc-provider | idp p50 ms "
        "| idp p99 ms | oidc-provider p50 ms | oidc-provider p99 ms | errors idp / oidc-provider |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for key, endpoint in ENDPOINTS.items():
        label = endpoint.label
        a, b = idp.get(key), node.get(key)
        if a is None or b is None:
            continue
        ratio = a.rps / b.rps if b.rps else float("nan")
        rows.append(
            f"| {label} | {a.rps:,.0f} | {b.rps:,.0f} | {ratio:.2f} | {_ms(a.p50_ms)} "
            f"| {_ms(a.p99_ms)} | {_ms(b.p50_ms)} | {_ms(b.p99_ms)} "
            f"| {_errors(a)} / {_errors(b)} |"
        )
    if sign_in is None:
        rows.append(f"| {SIGN_IN_LABEL} | not measured | — (idp only) | — | — | — | — | — | — |")
        return "\n".join(rows)
    m, floor = sign_in["measurement"], floor_rate(floors)
    rows.append(
        f"| {SIGN_IN_LABEL} | {m.rps:,.1f} sign-ins/s | — (idp only); floor {floor:,.0f}/s "
        f"| **{m.rps / floor:.2f} of the floor** (target ≥ {1 / SIGN_IN_TARGET:.2f}) "
        f"| {m.p50_ms:,.0f} | {m.p99_ms:,.0f} | — | — | {_errors(m)} / — |"
    )
    return "\n".join(rows)


def sign_in_note(sign_in, floors):
    """What the sign-in row measures and what its floor means."""
    if sign_in is None:
        return ""
    m, floor, cores = sign_in["measurement"], floor_rate(floors), os.cpu_count() or 1
    argon = next(rate for name, rate in floors.items() if name.startswith("argon2id"))
    rs256 = next(rate for name, rate in floors.items() if name.startswith("RS256 sign"))
    cpu = sign_in["cpu_ms"]
    crypto_ms = 1000 / argon + 2000 / rs256
    idp_ms = cpu["workers"] + cpu["postgres"]
    share = (1000 / argon) / idp_ms if idp_ms else 0.0
    verdict = "its dominant part" if share >= 1 / SIGN_IN_TARGET else "not yet its dominant part"
    return f"""\
**The sign-in row** (idp only; wrk cannot carry cookies and CSRF fields through forms, so
bench/signin.py drives it): each sign-in is a fresh browser (a new `requests` session, no
cookies) following `/authorize` → email form → password form → authenticator-code form
(TOTP computed from the user's secret) → the redirect with the code, then the client's
`POST /token` (code + PKCE) answered with an ID token: {sign_in["requests"]:.0f} HTTP
requests in all. {sign_in["concurrency"]} threads run sign-ins side by side; each run starts
new ones for {sign_in["seconds"]} s (or until its users run out) and every sign-in
has its own user (idp refuses an authenticator code whose 30 s step that user already
spent), {sign_in["users"]} users in all, made before each run by idp's own
`users.create_user` (argon2id from idp's hasher); each browser comes from its own
`X-Forwarded-For` address with `IDP_TRUSTED_PROXIES=1` (idp's per-IP limit on the forms
would otherwise stop loopback after 20 sign-ins). Rate: median of {len(m.runs)} runs
({", ".join(f"{r.rps:.1f}" for r in m.runs)}/s); p50/p99: latency of the whole sign-in,
token exchange included, median over the runs. **Floor**: {cores} cores ÷ (one argon2id
verification {1000 / argon:.1f} ms + two RS256 signatures, the access token and the ID
token, {2000 / rs256:.2f} ms) = {floor:,.0f} sign-ins/s; issue 5's target is within
{SIGN_IN_TARGET} × that cost, i.e. at least {floor / SIGN_IN_TARGET:,.0f}/s (ratio ≥
{1 / SIGN_IN_TARGET:.2f}). Measured CPU per sign-in: idp's workers
{cpu["workers"]:.0f} ms and its PostgreSQL backends {cpu["postgres"]:.0f} ms — {idp_ms:.0f} ms,
{idp_ms / crypto_ms:.1f} × the floor's {crypto_ms:.1f} ms — plus {cpu["generator"]:.0f} ms of
the load generator, which shares the same cores. The password hash is {100 * share:.0f} % of
idp's cost of a sign-in: {verdict}."""


def design_floor_table(idp, node, floors):
    """Each token endpoint against the floor of its own work (bench/design_floors.py)."""
    if not floors:
        return "Not measured."
    rows = [
        "| endpoint | its own work | floor req/s | idp / floor | oidc-provider / floor |",
        "|---|---|--:|--:|--:|",
    ]
    out_of_reach = []
    for key, (rate, processes) in floors.items():
        a, b = idp.get(key), node.get(key)
        if a is None or b is None:
            continue
        rows.append(
            f"| {ENDPOINTS[key].label} | {WORK[key]} | {rate:,.0f} ({processes} processes) "
            f"| {a.rps / rate:.2f} | {b.rps / rate:.2f} |"
        )
        if b.rps > rate:
            out_of_reach.append(ENDPOINTS[key].label)
    verdict = (
        "oidc-provider answers faster than that floor for: "
        + ", ".join(out_of_reach)
        + ". There idp's design (a JWT signed per access token, every grant a durable row,"
        " driven from Python) cannot match it on this machine, even with no web stack at all."
        if out_of_reach
        else "oidc-provider stays under every floor: each target is reachable in principle."
    )
    return "\n".join(rows) + "\n\n" + verdict


def sweep_table(sweep, chosen):
    """Every worker model tried, its rate per endpoint and its score."""
    keys = list(next(iter(sweep.values()))["results"])
    head = " | ".join(ENDPOINTS[k].label for k in keys)
    rows = [
        f"| worker model | {head} | score | start-up s | other processes, cores |",
        "|---" + "|--:" * (len(keys) + 3) + "|",
    ]
    for name, e in sweep.items():
        rates = " | ".join(f"{e['results'][k].rps:,.0f}" for k in keys)
        mark = " **(chosen)**" if name == chosen else ""
        other = e["other_cores"][0]
        rows.append(
            f"| {name}{mark} | {rates} | {e['score']:.3f} | {e['startup_s']:.2f} | {other:.2f} |"
        )
    return "\n".join(rows)


def load_note(other_cores):
    """Other processes' share of the machine during each server's runs."""
    parts, busy = [], False
    for name, (other, steal) in other_cores.items():
        parts.append(f"{name}: {other:.2f} cores (hypervisor steal {steal:.2f})")
        busy = busy or other > BUSY_CORES
    text = "Other processes on this machine (not the servers, PostgreSQL or wrk) used, during "
    text += "; ".join(parts) + "."
    if busy:
        text += (
            f" **More than {BUSY_CORES} of a core: the machine was shared while measuring"
            " (another session's tests?), so these figures understate both servers; run"
            " again on a quiet machine before comparing with other result files.**"
        )
    return text


def _kv_table(head, pairs):
    rows = [f"| {head[0]} | {head[1]} |", "|---|--:|"]
    rows += [f"| {k} | {v} |" for k, v in pairs]
    return "\n".join(rows)


def _settings(r):
    """The settings an A/B run gave idp (``run.py --idp-env``), as the text names them."""
    given = r.get("idp_env") or {}
    return "".join(f", **`{name}={value}`**" for name, value in given.items())


def document(r):
    """The whole results file from the run's record ``r`` (a dict, see run.py)."""
    machine = "\n".join(f"- {k}: {v}" for k, v in r["machine"].items())
    rss = [(f"idp worker pid {pid}", f"{kib / 1024:.1f} MiB") for pid, kib in r["idp_rss"]]
    rss.append(("idp server master process", f"{r['idp_master_rss'] / 1024:.1f} MiB"))
    rss.append(("oidc-provider (node, one process)", f"{r['node_rss'] / 1024:.1f} MiB"))
    floors = [(name, f"{rate:,.0f} /s") for name, rate in r["floors"].items()]
    startup = [
        (f"idp ({r['chosen']}, `idp serve`)", f"{r['idp_startup_s']:.2f} s"),
        ("oidc-provider (`node bench/oidc_provider_server.mjs`)", f"{r['node_startup_s']:.2f} s"),
    ]
    return f"""# idp vs node oidc-provider — {r["timestamp"]}

`make bench` on this machine, loopback only. Both servers are up; for each endpoint a
discarded 1 s warm-up on each, then {r["runs"]} rounds of one {r["seconds"]} s run on idp and
one on oidc-provider, so changes in the machine's background load fall on both alike. Runs
that spend pre-minted authorization codes end when the codes are used up (bounded by
count). Requests/s: median of the {r["runs"]} runs; p50/p99: median of the runs' wrk
percentiles; errors: every non-2xx answer plus socket errors, over all runs. Load: wrk,
{r["threads"]} thread, {r["connections"]} connections. idp: `idp serve` ({r["chosen"]}, the best
of the worker models below) on PostgreSQL, `IDP_ENV=production`{_settings(r)}. oidc-provider
{r["machine"]["oidc-provider"]}: one node process, its default configuration plus the bench
client (bench/oidc_provider_server.mjs).

{comparison_table(r["idp"], r["node"], r.get("sign_in"), r["floors"])}

{load_note(r["other_cores"])}

{sign_in_note(r.get("sign_in"), r["floors"])}

## Machine
{machine}

## Worker model (idp, short single runs of {r["sweep_seconds"]} s)
Score: geometric mean over the endpoints of each rate divided by the best rate for that
endpoint; the best score serves the comparison above.

{sweep_table(r["sweep"], r["chosen"])}

## Start-up time to the first answered request
{_kv_table(("server", "seconds"), startup)}

## Peak RSS (VmHWM) after the runs
{_kv_table(("process", "peak RSS"), rss)}

## Each token endpoint's floor: its own work and nothing else
What a request must do in idp's design: its signatures or verification (joserfc; a
presented token's once per token, as idp keeps what it verified) and idp's own
statements (compiled from idp/services/tokens.py, run with psycopg in autocommit on this
database, each write's WAL flush included), in a bare loop with no HTTP, no Flask, no
Authlib and no ORM: one process per core and two per core, the better rate. A ratio
idp / floor of 1 would mean that every cycle went to signatures and database work.

{design_floor_table(r["idp"], r["node"], r.get("design_floors"))}

## Floors on this machine (one core; PostgreSQL: one connection, nothing else running on it)
{_kv_table(("operation", "per second"), floors)}

## What differs between the two
{DIFFERENCES}
"""
