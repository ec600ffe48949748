"""CPU per request of the token endpoints, userinfo and introspection, in process.

    .venv/bin/python bench/endpoint_cpu.py [--requests 2000] [--profile ENDPOINT]

idp's app is created in this process on a fresh PostgreSQL database (dropped at the end)
and driven through its WSGI callable with a prepared environ per request — no HTTP server,
no test client — so the figure is idp's own Python per request plus its database client.
``--profile`` prints cProfile's top functions (cumulative and own time) for one endpoint.
This is the tool for finding where a request's time goes; ``make bench`` is the one for
rates under load.
"""

import argparse
import base64
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pyotp

from mint import CHALLENGE
from mint import VERIFIER
from servers import REDIRECT_URI
from servers import TENANT
from servers import Database
from signin_trips import NoCounter
from signin_trips import make_app
from signin_trips import make_users
from signin_trips import sign_in

ROOT = Path(__file__).resolve().parents[1]


def environ(method, path, headers=None, body=b""):
    """A minimal WSGI environ, built once and copied per call."""
    split = urlsplit(path)
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": split.path,
        "QUERY_STRING": split.query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
        "CONTENT_LENGTH": str(len(body)),
        "_body": body,
    }
    if body:
        env["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    for name, value in (headers or {}).items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def call(app, env):
    """One request through the WSGI callable; returns (status, body)."""
    env = dict(env)
    env["wsgi.input"] = io.BytesIO(env.pop("_body"))
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = status

    chunks = app(env, start_response)
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return answer["status"], body


def prepare(app, client_id, secret, count):
    """Environs per endpoint: codes and refresh tokens minted beforehand, one per request."""
    credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    basic = {"Authorization": f"Basic {credentials}"}
    token_path = f"/{TENANT}/token"
    totp_secret = pyotp.random_base32()
    (email,) = make_users(app, 1, totp_secret)
    codes = _codes(app, client_id, secret, email, totp_secret, count + 40)
    envs = {"client credentials": [environ("POST", token_path, basic,
                                            b"grant_type=client_credentials")] * count}  # fmt: skip
    form = {"grant_type": "authorization_code", "redirect_uri": REDIRECT_URI,
            "code_verifier": VERIFIER}  # fmt: skip
    envs["authorization code"] = [
        environ("POST", token_path, basic, urlencode({**form, "code": c}).encode())
        for c in codes[:count]
    ]
    access, refresh = [], []
    for code in codes[count:count + 40]:
        status, body = call(app, environ("POST", token_path, basic,
                                         urlencode({**form, "code": code}).encode()))  # fmt: skip
        assert status.startswith("200"), body
        answer = json.loads(body)
        access.append(answer["access_token"])
        refresh.append(answer.get("refresh_token"))
    envs["userinfo"] = [
        environ("GET", f"/{TENANT}/userinfo", {"Authorization": f"Bearer {access[i % 40]}"})
        for i in range(count)
    ]
    envs["introspection"] = [
        environ("POST", f"/{TENANT}/introspect", basic,
                urlencode({"token": access[i % 40]}).encode())  # fmt: skip
        for i in range(count)
    ]
    envs["refresh"] = ("chain", basic, refresh[0])
    return envs


def _codes(app, client_id, secret, email, totp_secret, count):
    """Sign in once (``signin_trips.sign_in``), then collect ``count`` codes from /authorize
    with that browser's SSO session."""
    browser = app.test_client()
    sign_in(app, NoCounter(), client_id, secret, email, totp_secret, 0, browser=browser)
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
             "scope": "openid email offline_access", "code_challenge": CHALLENGE,
             "code_challenge_method": "S256"}  # fmt: skip
    url = f"/{TENANT}/authorize?" + urlencode(query)
    codes = []
    for _ in range(count):
        location = browser.get(url).headers["Location"]
        codes.append(parse_qs(urlsplit(location).query)["code"][0])
    return codes


def run(app, envs, name, profile=False, rounds=3):
    """(user, system) CPU seconds per request of one endpoint: the least of ``rounds`` rounds.

    CPU time here moves by a quarter from one run to the next (each database round trip
    costs this process CPU, and that varies with the machine's other work); the least of a
    few rounds is the figure that repeats.
    """
    work = envs[name]
    if isinstance(work, tuple):  # the refresh chain: each answer's token is the next request's
        _, basic, value = work
        count = len(envs["userinfo"])

        def requests():
            nonlocal value
            for _ in range(count):
                body = urlencode({"grant_type": "refresh_token", "refresh_token": value}).encode()
                yield environ("POST", f"/{TENANT}/token", basic, body)

        def check(status, answer):
            nonlocal value
            assert status.startswith("200"), answer
            value = json.loads(answer)["refresh_token"]

        stream = requests()
    else:
        count = len(work)
        stream = iter(work)

        def check(status, answer):
            assert status.startswith("200"), (name, status, answer[:300])

    size = count // rounds
    best = None
    profiler = cProfile.Profile(time.process_time) if profile else None
    for _ in range(rounds):
        envs_of_round = [next(stream) for _ in range(size)] if not isinstance(work, tuple) else None
        started = os.times()
        if profiler:
            profiler.enable()
        for _ in range(size):
            env = envs_of_round.pop(0) if envs_of_round is not None else next(stream)
            check(*call(app, env))
        if profiler:
            profiler.disable()
        ended = os.times()
        cpu = ((ended.user - started.user) / size, (ended.system - started.system) / size)
        best = cpu if best is None else min(best, cpu, key=sum)
    if profiler:
        if os.environ.get("PROFILE_DUMP"):
            profiler.dump_stats(os.environ["PROFILE_DUMP"])
        calls = pstats.Stats(profiler).total_calls / (size * rounds)
        print(f"{name}: {calls:,.0f} Python function calls per request (repeatable, unlike time)")
        lines = int(os.environ.get("PROFILE_LINES", "40"))
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(lines)
            print(out.getvalue())
    return best


def main():
    """Create, measure, print, drop the database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", default=None, help="an endpoint's name, e.g. userinfo")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with Database() as database:
        app, client_id, secret = make_app(
            database.url,
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
        )
        envs = prepare(app, client_id, secret, args.requests)
        names = ["client credentials", "authorization code", "refresh", "userinfo",
                 "introspection"]  # fmt: skip
        for endpoint in ("client credentials", "userinfo", "introspection"):  # warm-up
            run(app, {**envs, endpoint: envs[endpoint][:50]}, endpoint)
        print("| endpoint | CPU ms per request | user | system |")
        print("|---|--:|--:|--:|")
        for endpoint in names:
            if args.profile and endpoint != args.profile:
                continue
            user, system = run(app, envs, endpoint, profile=bool(args.profile))
            print(f"| {endpoint} | {1000 * (user + system):.2f} | {1000 * user:.2f} "
                  f"| {1000 * system:.2f} |")
        from idp.extensions import db

        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
