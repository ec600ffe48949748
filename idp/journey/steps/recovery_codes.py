"""Show the ten recovery codes once, right after enrolment; they are stored only hashed."""

from idp.journey.outcomes import Success
from idp.services import crypto

NAME = "recovery_codes"
TEMPLATE = "journey/recovery_codes.html"


def applies(data, user):
    """Only when fresh codes wait to be shown."""
    return bool(data.get("recovery_pending"))


def is_done(data, user):
    """Never done while codes wait: the user must confirm they kept them."""
    return False


def context(tenant, data, params, user):
    """The codes, decrypted for this one page."""
    return {"codes": crypto.decrypt(data["recovery_pending"]).split("\n")}


def submit(tenant, data, form, user):
    """ "I have saved my codes": forget them for good."""
    return Success({"recovery_pending": None})
