"""Recovery: choose and confirm the new password under the tenant's policy.

Setting it activates an invited account, ends the user's other sessions and
revokes their refresh tokens, and tells the user by mail.
"""

import time

from flask import current_app

from idp.extensions import db
from idp.journey.outcomes import Challenge
from idp.journey.outcomes import Success
from idp.services import audit
from idp.services import mail
from idp.services import password_policy
from idp.services import passwords
from idp.services import sessions
from idp.services import tokens

NAME = "set_password"
TEMPLATE = "journey/set_password.html"


def applies(data, user):
    """The recovery flow, once the address (and the authenticator, if any) is proven."""
    return data.get("flow") == "recover"


def is_done(data, user):
    """Done once the new password is stored."""
    return bool(data.get("password_set"))


def context(tenant, data, params, user):
    """The rules, shown live as they are met."""
    return {"email": data["email"], "policy": password_policy.policy_for(tenant)}


def submit(tenant, data, form, user):
    """Check the policy, store the argon2id hash, activate, end other sessions."""
    policy = password_policy.policy_for(tenant)
    result = password_policy.check(
        policy,
        form.get("new_password") or "",
        form.get("confirm_password") or "",
        email=user.email,
        tenant=tenant,
    )
    if not result.ok:
        return Challenge(
            errors={"new_password": " ".join(str(m) for m in result.messages)},
            code="password_policy",
        )
    user.password_hash = passwords.hash_password(result.normalized)
    user.password_changed_at = int(time.time())
    if user.state == "invited":
        user.state = "active"
    user.email_verified = True
    db.session.commit()
    sessions.end_user_sessions(tenant, user.id)
    tokens.revoke_user_tokens(tenant, user.id)
    audit.record(tenant, "password.set", user_id=user.id)
    mail.send_template(current_app.config, tenant, "password_changed", user.email)
    amr = sorted(set(data.get("amr") or []) | {"pwd"})
    return Success({"password_set": True, "amr": amr})
