"""TOTP (RFC 6238): the ±1 step window, replay refusal, encryption at rest, QR and URI."""

import base64
import re
import uuid
from types import SimpleNamespace
from urllib.parse import parse_qs
from urllib.parse import unquote
from urllib.parse import urlsplit

import pyotp
import pytest
import segno
from sqlalchemy import text

from idp.extensions import db
from idp.models import User
from idp.services import crypto
from idp.services import tenants
from idp.services import totp
from idp.services import users

# The middle of a 30-second step, so ±30 s lands in the neighbouring steps.
NOW = 1_800_000_015
STEP = NOW // 30


def make_account(name="Test Org"):
    """A fresh tenant and active user (inside an app context)."""
    tenant = tenants.create_tenant(f"t-{uuid.uuid4().hex[:10]}", name)
    user = users.create_user(tenant, f"u-{uuid.uuid4().hex[:8]}@example.com", active=True)
    return tenant, user


@pytest.fixture
def enrolled(app):
    """A user with an enrolled authenticator; ``code(t)`` is the app's code at time ``t``."""
    with app.app_context():
        tenant, user = make_account()
        secret = totp.new_secret()
        totp.enrol(tenant, user, secret)
        app_totp = pyotp.TOTP(secret)
        yield SimpleNamespace(tenant=tenant, user=user, secret=secret, code=app_totp.at)


def verify(account, code, now=NOW):
    return totp.verify(account.tenant, account.user, code, now=now)


def test_current_code_is_accepted_once(enrolled):
    code = enrolled.code(NOW)
    assert verify(enrolled, code)
    assert enrolled.user.totp_last_step == STEP
    assert not verify(enrolled, code), "a replayed code must be refused"
    assert not verify(enrolled, code, now=NOW + 10), "also later in the same step"


def test_previous_and_next_step_are_accepted(enrolled):
    assert verify(enrolled, enrolled.code(NOW - 30))
    assert verify(enrolled, enrolled.code(NOW + 30))


@pytest.mark.parametrize("offset", [-60, 60, -90, 3600])
def test_codes_two_or_more_steps_away_are_refused(enrolled, offset):
    assert not verify(enrolled, enrolled.code(NOW + offset))
    assert enrolled.user.totp_last_step is None


def test_a_code_from_before_the_last_accepted_step_is_refused(enrolled):
    assert verify(enrolled, enrolled.code(NOW + 30))
    assert not verify(enrolled, enrolled.code(NOW))
    assert not verify(enrolled, enrolled.code(NOW - 30))
    assert not verify(enrolled, enrolled.code(NOW), now=NOW + 30)
    assert verify(enrolled, enrolled.code(NOW + 60), now=NOW + 60)


def test_malformed_codes_are_refused(enrolled):
    good = enrolled.code(NOW)
    full_width = "".join(chr(ord(d) + 0xFEE0) for d in good)  # NFKC would map these to ASCII
    arabic_indic = "".join(chr(ord(d) - 0x30 + 0x660) for d in good)
    for code in (
        good[:5],
        good + "0",
        f" {good}",
        f"{good[:3]} {good[3:]}",
        "abcdef",
        "",
        f"{good[:5]}a",
        full_width,
        arabic_indic,
        None,
        int(good),
    ):
        assert not verify(enrolled, code), repr(code)
    assert verify(enrolled, good)


def test_replay_is_decided_by_the_database_not_the_loaded_object(enrolled):
    """Another node accepted this step already; our copy of the user does not know."""
    assert enrolled.user.totp_last_step is None
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET totp_last_step = :step WHERE id = :id"),
            {"step": STEP, "id": enrolled.user.id},
        )
    assert not verify(enrolled, enrolled.code(NOW))
    assert verify(enrolled, enrolled.code(NOW + 30))


def test_record_step_accepts_each_step_once(enrolled):
    assert totp.record_step(enrolled.tenant, enrolled.user, STEP)
    assert not totp.record_step(enrolled.tenant, enrolled.user, STEP)
    assert not totp.record_step(enrolled.tenant, enrolled.user, STEP - 1)
    assert totp.record_step(enrolled.tenant, enrolled.user, STEP + 1)


def test_a_user_of_another_tenant_is_refused(enrolled):
    other_tenant, _ = make_account()
    assert not totp.verify(other_tenant, enrolled.user, enrolled.code(NOW), now=NOW)
    assert not totp.record_step(other_tenant, enrolled.user, STEP)
    with pytest.raises(ValueError):
        totp.reset(other_tenant, enrolled.user)
    assert verify(enrolled, enrolled.code(NOW))


def test_without_an_authenticator_nothing_is_accepted(app):
    with app.app_context():
        tenant, user = make_account()
        assert not totp.verify(tenant, user, "123456", now=NOW)


def test_secret_is_encrypted_at_rest(enrolled):
    stored = db.session.execute(
        text("SELECT totp_secret, totp_enrolled_at, totp_last_step FROM users WHERE id = :id"),
        {"id": enrolled.user.id},
    ).one()
    assert enrolled.secret not in stored.totp_secret
    assert enrolled.secret.lower() not in stored.totp_secret.lower()
    assert stored.totp_secret.startswith("v1:")
    assert crypto.decrypt(stored.totp_secret) == enrolled.secret
    assert stored.totp_enrolled_at > 0
    assert stored.totp_last_step is None


def test_enrol_again_replaces_the_secret_and_forgets_the_step(enrolled):
    assert verify(enrolled, enrolled.code(NOW))
    secret = totp.new_secret()
    totp.enrol(enrolled.tenant, enrolled.user, secret)
    assert enrolled.user.totp_last_step is None
    assert crypto.decrypt(enrolled.user.totp_secret) == secret
    assert verify(enrolled, pyotp.TOTP(secret).at(NOW))


def test_reset_removes_the_authenticator(enrolled):
    assert verify(enrolled, enrolled.code(NOW))
    totp.reset(enrolled.tenant, enrolled.user)
    user = db.session.get(User, enrolled.user.id)
    assert (user.totp_secret, user.totp_enrolled_at, user.totp_last_step) == (None, None, None)
    assert not user.has_totp
    assert not verify(enrolled, enrolled.code(NOW + 30))


def test_verify_candidate_returns_the_matched_step_and_records_nothing():
    secret = totp.new_secret()
    code = pyotp.TOTP(secret).at(NOW - 30)
    assert totp.verify_candidate(secret, code, now=NOW) == STEP - 1
    assert totp.verify_candidate(secret, code, now=NOW) == STEP - 1
    assert totp.verify_candidate(secret, pyotp.TOTP(secret).at(NOW + 30), now=NOW) == STEP + 1
    assert totp.verify_candidate(secret, pyotp.TOTP(secret).at(NOW + 60), now=NOW) is None
    assert totp.verify_candidate(secret, "12345", now=NOW) is None


def test_new_secret_is_160_random_bits_in_base32():
    secrets = {totp.new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert re.fullmatch(r"[A-Z2-7]{32}", secret)
        assert len(base64.b32decode(secret)) == 20


def test_format_secret_groups_by_four():
    assert totp.format_secret("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP") == (
        "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP"
    )


def test_provisioning_uri_spells_out_every_parameter():
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, "ann.lee+x@example.com", "Acme & Co: EU")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Acme & Co EU:ann.lee+x@example.com"
    query = parse_qs(parts.query, strict_parsing=True)
    assert query == {
        "secret": [secret],
        "issuer": ["Acme & Co EU"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }
    parsed = pyotp.parse_uri(uri)
    assert (parsed.secret, parsed.name, parsed.issuer) == (
        secret,
        "ann.lee+x@example.com",
        "Acme & Co EU",
    )
    assert (parsed.digits, parsed.interval, parsed.digest().name) == (6, 30, "sha1")


def _svg_modules(svg):
    """The dark modules drawn by segno's path (``M``/``m`` moves, ``h`` runs), as (row, col)."""
    path = re.search(r'<path class="totp-qr-modules"[^>]* d="([^"]+)"', svg).group(1)
    x = y = 0.0
    dark = set()
    for command, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            dark.update((int(y), int(x) + i) for i in range(int(a)))
            x += float(a)
    return dark


def test_qr_svg_is_inline_markup_without_styles_and_encodes_the_uri():
    uri = totp.provisioning_uri(totp.new_secret(), "ann@example.com", "Acme")
    svg = totp.qr_svg(uri)
    assert svg.startswith("<svg ") and svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg
    assert "style" not in svg.lower()
    assert "<title>QR code to scan with your authenticator app</title>" in svg
    assert 'role="img"' in svg and 'viewBox="0 0 ' in svg
    width = int(re.search(r'width="(\d+)"', svg).group(1))
    assert 200 <= width <= 330, "fits a phone screen without zooming"

    expected = segno.make(uri, error=totp.QR_ERROR, micro=False)
    border = totp.QR_BORDER
    wanted = {
        (r + border, c + border)
        for r, row in enumerate(expected.matrix)
        for c, bit in enumerate(row)
        if bit
    }
    assert _svg_modules(svg) == wanted


def test_qr_svg_escapes_the_title():
    svg = totp.qr_svg("otpauth://totp/x?secret=A", title='<b>"scan"</b>')
    assert "<b>" not in svg and "&lt;b&gt;" in svg
