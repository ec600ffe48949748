"""Step 2 (sign-in): the password. One message for every failure until it proves who is asking.

Only after a correct password do account states get their own message (the
Flexopus error table). Unknown accounts burn the same argon2 time as known ones,
and are throttled the same way, so nothing tells them apart.
"""

from idp.extensions import db
from idp.journey import messages
from idp.journey.outcomes import Challenge
from idp.journey.outcomes import Success
from idp.services import accounts
from idp.services import password_policy
from idp.services import passwords
from idp.services import throttle
from idp.services import users

NAME = "password"
TEMPLATE = "journey/password.html"


def applies(data, user):
    """The sign-in flow; "First time login / Forgot password" switches to recovery."""
    return data.get("flow", "signin") in ("signin", "admin")


def is_done(data, user):
    """Done once the password proved the user."""
    return bool(data.get("password_ok"))


def context(tenant, data, params, user):
    """The page shows the email being signed in."""
    return {"email": data.get("email")}


def submit(tenant, data, form, user):
    """Throttle, verify, then the account state; or switch to the recovery flow.

    An invited account activates through the first-time flow (email code), so its
    password, if an administrator set one, does not sign it in yet.
    """
    if form.get("action") == "recover" and data.get("flow") != "admin":
        return Success({"flow": "recover"})
    email = data["email"]
    wait = throttle.retry_after("password", tenant, email)
    if wait:
        return Challenge(
            message=messages.TOO_MANY_ATTEMPTS % {"minutes": messages.minutes(wait)},
            code="too_many_attempts",
        )
    secret = form.get("password") or ""
    if password_policy.policy_for(tenant).normalize:
        secret = password_policy.normalize_password(secret)  # as set_password hashed it
    found = users.find_user_by_email(tenant, email)
    ok = passwords.verify_password(found.password_hash if found else None, secret)
    admin_only = data.get("flow") == "admin"
    if not ok or found is None or found.state == "invited" or (admin_only and not found.is_admin):
        throttle.record_failure("password", tenant, email)
        return Challenge(message=messages.INVALID_CREDENTIALS, code="invalid_credentials")
    throttle.reset("password", tenant, email)
    problem = accounts.problem(found)
    if problem:
        return messages.failure_for(problem)
    if passwords.needs_rehash(found.password_hash):
        found.password_hash = passwords.hash_password(secret)
        db.session.commit()
    return Success({"password_ok": True, "user_id": found.id, "amr": ["pwd"]})
