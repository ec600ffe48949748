"""Authenticator apps: RFC 6238 TOTP with SHA-1, 6 digits and 30-second steps.

Those are the only parameters Google and Microsoft Authenticator honour in practice,
so they are fixed rather than configurable. Secrets are stored encrypted
(``crypto.encrypt``). Checks run in warehouse's order: the caller throttles, then
``verify`` checks the code, refuses a replay and records the step; replay and record
are one conditional UPDATE so that two nodes cannot both accept the same code.
"""

import base64
import re
import secrets
import time
from urllib.parse import quote
from urllib.parse import urlencode

import pyotp
import segno
from pyotp.exceptions import OTPVerificationError
from sqlalchemy import or_
from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from idp.extensions import db
from idp.models import User
from idp.models._types import now as unix_now
from idp.services import crypto

ALGORITHM = "SHA1"
DIGITS = 6
PERIOD = 30
# RFC 6238 §5.2: accept one step either side for clock drift and typing time.
VALID_WINDOW = 1
SECRET_BYTES = 20  # RFC 4226 §4: 160 bits, the length of an HMAC-SHA-1 key.
QR_ERROR = "m"
QR_BORDER = 4  # ISO/IEC 18004's quiet zone; scanners fail more often without it.
QR_TARGET_PX = 264  # about a third of a phone screen's width, and fits a 320 px one.
QR_TITLE = "QR code to scan with your authenticator app"

# pyotp compares after NFKC normalisation, which turns full-width digits into ASCII
# ones; a code is accepted only in the exact form the apps show.
_CODE = re.compile(r"[0-9]{6}")


def new_secret() -> str:
    """A fresh 160-bit secret in base32 (32 characters, no padding) from the OS CSPRNG."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def provisioning_uri(secret: str, email: str, issuer_name: str) -> str:
    """The ``otpauth://totp/`` URI of Google's Key Uri Format, every parameter explicit.

    pyotp leaves out algorithm, digits and period when they are the defaults; we
    spell them out so no app has to guess. A colon separates issuer and account in
    the label, so none may appear inside either.
    """
    issuer = issuer_name.replace(":", "").strip()
    account = email.replace(":", "")
    label = f"{quote(issuer, safe='')}:{quote(account, safe='@')}"
    query = urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": ALGORITHM,
            "digits": DIGITS,
            "period": PERIOD,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


def qr_svg(uri: str, title: str = QR_TITLE) -> str:
    """``uri`` as an inline SVG QR code for a page under ``style-src 'self'``.

    Only presentation attributes (fill, stroke, width) and classes, never a ``style``;
    a white background so it scans on a dark page; a viewBox so CSS may shrink it;
    ``role="img"`` and a ``<title>`` for screen readers.
    """
    qr = segno.make(uri, error=QR_ERROR, micro=False)
    modules = qr.symbol_size(scale=1, border=QR_BORDER)[0]
    scale = max(3, QR_TARGET_PX // modules)
    svg = qr.svg_inline(
        scale=scale,
        border=QR_BORDER,
        dark="#000",
        light="#fff",
        omitsize=True,
        title=str(title),
        svgclass="totp-qr",
        lineclass="totp-qr-modules",
    )
    size = modules * scale
    return svg.replace("<svg ", f'<svg width="{size}" height="{size}" role="img" ', 1)


def format_secret(secret: str) -> str:
    """The secret in groups of four, easier to type into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def enrol(tenant, user, secret: str) -> None:
    """Store ``secret`` encrypted as the user's authenticator, forgetting any previous one.

    The caller records the step of the code that confirmed it (``record_step``), so
    that code cannot be used again to sign in.
    """
    _check_tenant(tenant, user)
    user.totp_secret = crypto.encrypt(secret)
    user.totp_enrolled_at = unix_now()
    user.totp_last_step = None
    db.session.commit()


def reset(tenant, user) -> None:
    """Remove the user's authenticator, so the next sign-in enrols a new one."""
    _check_tenant(tenant, user)
    user.totp_secret = None
    user.totp_enrolled_at = None
    user.totp_last_step = None
    db.session.commit()


def verify_candidate(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step ``code`` matches for ``secret`` within ±1 step, or None.

    For enrolment, before anything is stored; it records nothing, so on its own it
    does not stop a replay. Comparison is constant-time (pyotp uses hmac.compare_digest).
    """
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        return None
    otp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    for_time = time.time() if now is None else now
    try:
        return otp.verify_and_get_timecode(code, for_time=for_time, valid_window=VALID_WINDOW)
    except OTPVerificationError:
        return None


def verify(tenant, user, code: str, now: float | None = None) -> bool:
    """True when ``code`` is the user's current code and no code of its step or later was used.

    Raises ``crypto.DecryptionError`` when the stored secret cannot be decrypted: that
    is a server fault (a lost key), not a wrong code, and must not look like one.
    """
    if user.tenant_id != tenant.id or user.totp_secret is None:
        return False
    step = verify_candidate(crypto.decrypt(user.totp_secret), code, now)
    if step is None:
        return False
    return record_step(tenant, user, step)


def record_step(tenant, user, step: int) -> bool:
    """Mark ``step`` as used; False if it or a later step already was (a replay).

    The database decides, not the loaded object: the UPDATE matches only while the
    stored step is older, so of two requests racing on any nodes exactly one wins.
    """
    stmt = (
        update(User)
        .where(
            User.id == user.id,
            User.tenant_id == tenant.id,
            or_(User.totp_last_step.is_(None), User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    accepted = db.session.execute(stmt).rowcount == 1
    db.session.commit()  # either way: it ends the write transaction
    # The UPDATE went around the loaded ``user``: tell it what the database now holds, or a
    # later change of the same attribute (a new enrolment resetting it to None) would look
    # like no change to the ORM and never be written.
    if accepted:
        set_committed_value(user, "totp_last_step", step)
    elif user in db.session:
        db.session.expire(user, ["totp_last_step"])  # a later step: read it afresh if needed
    return accepted


def _check_tenant(tenant, user):
    """Refuse to act on a user of another tenant: that is a bug in the caller."""
    if user.tenant_id != tenant.id:
        raise ValueError("the user does not belong to this tenant")
