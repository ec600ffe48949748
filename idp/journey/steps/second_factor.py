"""The authenticator code — or one of the user's recovery codes instead.

Sign-in: after the password. Recovery: after the email code and before the new
password, when an authenticator is enrolled (the Fluxys reset journey). Checks in
a fixed order: throttle → verify (which also refuses a replayed code) → record.
"""

from idp.journey import messages
from idp.journey.outcomes import Challenge
from idp.journey.outcomes import Success
from idp.services import audit
from idp.services import recovery_codes
from idp.services import throttle
from idp.services import totp

NAME = "second_factor"
TEMPLATE = "journey/second_factor.html"


def applies(data, user):
    """Once the first factor is proven, for a user who has an authenticator."""
    return first_factor_proven(data) and user is not None and user.has_totp


def first_factor_proven(data):
    """A password, an email code, or an upstream whose MFA is not trusted here."""
    federated = data.get("fed_ok") and not data.get("mfa_trusted")
    return bool(data.get("password_ok") or data.get("verified_ack") or federated)


def is_done(data, user):
    """Done once a code from the app (or a recovery code) was accepted."""
    return bool(data.get("totp_ok"))


def context(tenant, data, params, user):
    """Which field to show: the app's code or a recovery code."""
    return {"recovery": bool(data.get("use_recovery"))}


def submit(tenant, data, form, user):
    """Switch modes, or check the code."""
    action = form.get("action")
    if action in ("use_recovery", "use_totp"):
        return Challenge(facts={"use_recovery": action == "use_recovery"}, status=200)
    kind = "recovery" if data.get("use_recovery") else "totp"
    subject = str(user.id)
    wait = throttle.retry_after(kind, tenant, subject)
    if wait:
        return Challenge(
            message=messages.TOO_MANY_ATTEMPTS % {"minutes": messages.minutes(wait)},
            code="too_many_attempts",
        )
    code = form.get("code") or ""
    if kind == "totp":
        ok = totp.verify(tenant, user, "".join(code.split()))
    else:
        ok = recovery_codes.use(tenant, user, code)
    if not ok:
        throttle.record_failure(kind, tenant, subject)
        wrong = messages.TOTP_WRONG if kind == "totp" else messages.RECOVERY_WRONG
        return Challenge(errors={"code": wrong}, code=f"{kind}_wrong")
    throttle.reset(kind, tenant, subject)
    amr = sorted(set(data.get("amr") or []) | {"otp", "mfa"})
    if kind == "recovery":
        audit.record(
            tenant,
            "recovery_code.used",
            user_id=user.id,
            remaining=recovery_codes.remaining(tenant, user),
        )
        return Success({"totp_ok": True, "recovery_used": True, "amr": amr})
    return Success({"totp_ok": True, "amr": amr})
