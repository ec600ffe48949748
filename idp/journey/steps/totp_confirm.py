"""Prove the new authenticator with one code; only then is its secret stored (encrypted)."""

from flask import current_app

from idp.journey import messages
from idp.journey.outcomes import Challenge
from idp.journey.outcomes import Success
from idp.services import audit
from idp.services import crypto
from idp.services import mail
from idp.services import recovery_codes
from idp.services import throttle
from idp.services import totp

NAME = "totp_confirm"
TEMPLATE = "journey/totp_confirm.html"


def applies(data, user):
    """Right after the QR code page."""
    return bool(data.get("enrolling"))


def is_done(data, user):
    """Done once the app's code matched."""
    return bool(data.get("enrolled"))


def context(tenant, data, params, user):
    """Nothing but the field."""
    return {}


def submit(tenant, data, form, user):
    """Check the code against the pending secret, then store it and issue recovery codes."""
    if form.get("action") == "back":
        return Success({"enrol_seen": False})
    subject = str(user.id)
    wait = throttle.retry_after("totp", tenant, subject)
    if wait:
        return Challenge(
            message=messages.TOO_MANY_ATTEMPTS % {"minutes": messages.minutes(wait)},
            code="too_many_attempts",
        )
    secret = crypto.decrypt(data["pending_totp"])
    step = totp.verify_candidate(secret, "".join((form.get("code") or "").split()))
    if step is None:
        throttle.record_failure("totp", tenant, subject)
        return Challenge(errors={"code": messages.TOTP_WRONG}, code="totp_wrong")
    throttle.reset("totp", tenant, subject)
    totp.enrol(tenant, user, secret)
    totp.record_step(tenant, user, step)
    codes = recovery_codes.generate(tenant, user)
    audit.record(tenant, "totp.enrolled", user_id=user.id)
    mail.send_template(current_app.config, tenant, "authenticator_changed", user.email)
    amr = sorted(set(data.get("amr") or []) | {"otp", "mfa"})
    return Success(
        {
            "enrolled": True,
            "enrolling": False,
            "pending_totp": None,
            "totp_ok": True,
            "amr": amr,
            "recovery_pending": crypto.encrypt("\n".join(codes)),
        }
    )
