"""The plan: which steps a transaction still needs, from its flow and what it has proven.

Sign-in:  identify → password → second factor → (enrol if none) → done
Recovery: identify → send code → verify code → verified → second factor (if enrolled)
          → new password → (enrol if none) → done
Federated: identify → upstream (or a choice of them) → second factor unless the
          upstream's MFA is trusted → (enrol if none) → done
Admin:    the admin back door: identify → password → second factor, always
"""

from idp.journey.steps import choose_sso
from idp.journey.steps import code_verified
from idp.journey.steps import identify
from idp.journey.steps import password
from idp.journey.steps import recovery_codes
from idp.journey.steps import reenrol_offer
from idp.journey.steps import second_factor
from idp.journey.steps import select_account
from idp.journey.steps import send_code
from idp.journey.steps import set_password
from idp.journey.steps import totp_confirm
from idp.journey.steps import totp_enrol
from idp.journey.steps import verify_code

# Ordered; the first step that applies and is not done is the current one.
STEPS = (
    select_account,
    identify,
    choose_sso,
    password,
    send_code,
    verify_code,
    code_verified,
    second_factor,
    set_password,
    reenrol_offer,
    totp_enrol,
    totp_confirm,
    recovery_codes,
)
BY_NAME = {step.NAME: step for step in STEPS}


def current_step(data, user):
    """The first step this transaction still needs, or None when the user is signed in."""
    if data.get("reuse_session"):
        return None  # prompt=select_account answered "continue as …": nothing to prove
    for step in STEPS:
        if step.applies(data, user) and not step.is_done(data, user):
            return step
    return None


def progress(data, user):
    """``(position, total)`` among the steps of this flow, for the progress indicator."""
    steps = [s for s in STEPS if s is not select_account and s.applies(data, user)]
    done = sum(1 for step in steps if step.is_done(data, user))
    total = len(steps)
    if user is None and data.get("flow", "signin") == "signin":
        total += 1  # the authenticator code, planned once the password proves the user
    return min(done + 1, total), total


def complete(data, user):
    """Every factor and enrolment the tenant requires is proven (defence in depth)."""
    first = data.get("password_ok") or data.get("password_set") or data.get("fed_ok")
    second = (user is not None and user.has_totp and data.get("totp_ok")) or (
        data.get("fed_ok") and data.get("mfa_trusted") and data.get("flow") == "federate"
    )
    return user is not None and current_step(data, user) is None and bool(first) and bool(second)
