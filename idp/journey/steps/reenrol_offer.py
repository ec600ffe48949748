"""After a recovery code: offer to set up the authenticator again (the old one may be lost)."""

from idp.journey.outcomes import Success
from idp.services import audit
from idp.services import recovery_codes
from idp.services import sessions
from idp.services import tokens
from idp.services import totp

NAME = "reenrol_offer"
TEMPLATE = "journey/reenrol_offer.html"


def applies(data, user):
    """Only right after a recovery code stood in for the authenticator."""
    return bool(data.get("recovery_used"))


def is_done(data, user):
    """Done once the user chose."""
    return bool(data.get("reenrol_decided"))


def context(tenant, data, params, user):
    """How many codes are left."""
    return {"remaining": recovery_codes.remaining(tenant, user)}


def submit(tenant, data, form, user):
    """ "Set up now" drops the old authenticator and enrols a new one; "Later" goes on."""
    if form.get("choice") == "reenrol":
        totp.reset(tenant, user)
        sessions.end_user_sessions(tenant, user.id)  # whoever has the lost phone is out
        tokens.revoke_user_tokens(tenant, user.id)
        audit.record(tenant, "totp.reset", user_id=user.id, by="user")
        return Success(
            {
                "reenrol_decided": True,
                "enrolling": True,
                "enrol_seen": False,
                "enrolled": False,
                "pending_totp": None,
            }
        )
    return Success({"reenrol_decided": True})
