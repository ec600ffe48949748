"""Recovery step 1 (first-time sign-in and forgotten password): send a code to the address.

The answer is the same whether or not the account exists (Flexopus: "we will not
confirm … that your email address exists"): a code is issued either way, and
mailed only to a real account, so throttling and messages cannot tell them apart.
"""

from flask import current_app

from idp.journey import messages
from idp.journey.outcomes import Challenge
from idp.journey.outcomes import Success
from idp.services import audit
from idp.services import email_codes
from idp.services import mail
from idp.services import users

NAME = "send_code"
TEMPLATE = "journey/send_code.html"
PURPOSE = "recover"


def applies(data, user):
    """The recovery flow."""
    return data.get("flow") == "recover"


def is_done(data, user):
    """Done once a code went out."""
    return bool(data.get("code_sent"))


def context(tenant, data, params, user):
    """The address the code will go to, and how long a code lives."""
    return {
        "email": data["email"],
        "minutes": max(1, current_app.config.get("EMAIL_CODE_TTL", 300) // 60),
    }


def send(tenant, email):
    """Issue a code and mail it to a real account; returns a Challenge when refused."""
    issued = email_codes.issue(tenant, email, PURPOSE)
    if issued.refused == "cooldown":
        return Challenge(
            message=messages.CODE_COOLDOWN % {"seconds": issued.retry_after}, code="code_cooldown"
        )
    if issued.refused:
        return Challenge(message=messages.CODE_HOURLY, code="code_hourly_limit")
    config = current_app.config
    # Rendered for every address, delivered after the response only to real accounts: the
    # page and its timing are the same whether or not the account exists.
    message = mail.render(config, tenant, "verification_code", email, code=issued.code)
    if users.find_user_by_email(tenant, email) is not None:
        mail.send_in_background(config, email, *message, sender_name=tenant.name)
    audit.record(tenant, "email_code.sent", email=email)
    return None


def submit(tenant, data, form, user):
    """ "Send verification code"."""
    refused = send(tenant, data["email"])
    return refused or Success({"code_sent": True})
