"""A returning user's sign-in, request by request: SQL statements, commits and CPU, in process.

    .venv/bin/python bench/signin_trips.py [--users 20]

idp's app is created in this process on a fresh PostgreSQL database (dropped at the end) and
driven with Flask's test client, exactly as bench/signin.py drives the served one: the
authorization request, the email, password and authenticator-code forms, the redirect with
the code, and the code exchange. SQLAlchemy's events count what reaches PostgreSQL. The first
two sign-ins warm the process up; the table averages the others. CPU is this process's
(``time.process_time``), so it includes argon2id on the password step but no HTTP server.
"""

import argparse
import base64
import re
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urljoin
from urllib.parse import urlsplit

import pyotp
from sqlalchemy import event

from mint import CHALLENGE
from mint import VERIFIER
from mint import FormReader
from servers import REDIRECT_URI
from servers import TENANT
from servers import Database

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Correct-Horse-9-bench"
WARM_UP = 2


class Counter:
    """Statements and commits since the last ``reset``."""

    def __init__(self, engine):
        self.statements, self.commits = [], 0
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, conn, cursor, statement, params, context, executemany):
        verb = statement.split(None, 1)[0].upper()
        match = re.search(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", statement, re.IGNORECASE)
        self.statements.append(f"{verb} {match.group(1) if match else '?'}")

    def _commit(self, conn):
        self.commits += 1

    def reset(self):
        """Forget what came before."""
        self.statements, self.commits = [], 0


def make_app(database_url, grant_types=("authorization_code", "refresh_token")):
    """idp's app on the fresh database, with a tenant and a first-party client."""
    from flask_migrate import upgrade
    from idp import create_app
    from idp.services import clients
    from idp.services import keys
    from idp.services import tenants

    keys_dir = tempfile.mkdtemp(prefix="idp-bench-keys-")
    app = create_app({
        "ENV": "production", "SECRET_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": database_url, "KEYS_DIR": keys_dir, "DEMO_RP": False,
        "BREACH_API_URL": "", "PUBLIC_URL": "http://127.0.0.1:5000",
        "OUTBOX_DIR": tempfile.mkdtemp(prefix="idp-bench-outbox-"),
    })  # fmt: skip
    with app.app_context():
        upgrade()
        keys.ensure_keys(keys_dir)
        tenant = tenants.create_tenant(TENANT, "Bench")
        metadata = {"redirect_uris": [REDIRECT_URI], "grant_types": list(grant_types)}
        client, secret = clients.create_client(tenant, "Bench RP", metadata, first_party=True)
        return app, client.client_id, secret


def make_users(app, count, totp_secret):
    """One user per sign-in: a TOTP step is never accepted twice for one user."""
    from idp.services import tenants
    from idp.services import users

    with app.app_context():
        tenant = tenants.query_tenant(TENANT)
        emails = [f"user{i}@example.com" for i in range(count)]
        for email in emails:
            users.create_user(tenant, email, password=PASSWORD, totp_secret=totp_secret,
                              active=True)  # fmt: skip
    return emails


class NoCounter:
    """For a sign-in whose statements nobody counts."""

    statements, commits = [], 0

    def reset(self):
        """Nothing to forget."""


def sign_in(app, counter, client_id, secret, email, totp_secret, number, browser=None):
    """One sign-in; returns [(label, statements, commits, cpu seconds)] per request.

    ``browser``: a test client to sign in (it keeps the SSO session); a fresh one if None.
    """
    browser = browser or app.test_client()
    browser.environ_base["REMOTE_ADDR"] = f"10.0.{number // 250}.{number % 250}"
    url = (f"/{TENANT}/authorize?response_type=code&client_id={client_id}"
           f"&redirect_uri={REDIRECT_URI}&scope=openid%20email"
           f"&code_challenge={CHALLENGE}&code_challenge_method=S256")  # fmt: skip
    method, data, rows = "GET", None, []
    answers = {"identify": {"email": email}, "password": {"password": PASSWORD}}
    while True:
        counter.reset()
        started = time.process_time()
        response = browser.open(url, method=method, data=data)
        cpu = time.process_time() - started
        path = urlsplit(url).path.replace(TENANT, "{tenant}")
        label = f"{method} {path} → {response.status_code}"
        rows.append((label, list(counter.statements), counter.commits, cpu))
        if response.status_code in (302, 303):
            location = urljoin("http://localhost" + url, response.headers["Location"])
            if location.startswith(REDIRECT_URI):
                code = parse_qs(urlsplit(location).query)["code"][0]
                break
            url = urlsplit(location)._replace(scheme="", netloc="").geturl()
            method, data = "GET", None
        elif response.status_code == 200:
            form = FormReader()
            form.feed(response.get_data(as_text=True))
            step = form.fields["step"]
            answer = answers.get(step) or {"code": pyotp.TOTP(totp_secret).now()}
            url, method, data = urljoin(url, form.action), "POST", {**form.fields, **answer}
        else:
            sys.exit(f"{response.status_code} at {url}")
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    counter.reset()
    started = time.process_time()
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": VERIFIER}  # fmt: skip
    response = browser.post(f"/{TENANT}/token", headers={"Authorization": f"Basic {basic}"},
                            data=form)  # fmt: skip
    cpu = time.process_time() - started
    assert response.status_code == 200, response.get_data(as_text=True)
    rows.append((f"POST /{{tenant}}/token → {response.status_code}", list(counter.statements),
                 counter.commits, cpu))  # fmt: skip
    return rows


def main():
    """Create, sign in, print the table, drop the database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with Database() as database:
        app, client_id, secret = make_app(database.url)
        from idp.extensions import db

        with app.app_context():
            counter = Counter(db.engine)
        totp_secret = pyotp.random_base32()
        emails = make_users(app, args.users + WARM_UP, totp_secret)
        totals = defaultdict(lambda: [0, 0, 0.0, None])
        for number, email in enumerate(emails):
            rows = sign_in(app, counter, client_id, secret, email, totp_secret, number)
            for index, (label, statements, commits, cpu) in enumerate(rows):
                if number >= WARM_UP:
                    entry = totals[(index, label)]
                    entry[0] += len(statements)
                    entry[1] += commits
                    entry[2] += cpu
                    entry[3] = statements
        print("| # | request | statements | commits | CPU ms | statements, in order |")
        print("|--:|---|--:|--:|--:|---|")
        sums = [0, 0, 0.0]
        for (index, label), (statements, commits, cpu, detail) in sorted(totals.items()):
            row = (statements / args.users, commits / args.users, 1000 * cpu / args.users)
            sums = [a + b for a, b in zip(sums, row, strict=True)]
            print(f"| {index + 1} | `{label}` | {row[0]:.0f} | {row[1]:.0f} | {row[2]:.1f} "
                  f"| {', '.join(detail)} |")  # fmt: skip
        print(f"| | **{len(totals)} requests** | **{sums[0]:.0f}** | **{sums[1]:.0f}** "
              f"| **{sums[2]:.1f}** | |")  # fmt: skip
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
