"""Recovery step 3: "The code has been verified. You can now continue." (Fluxys step 7)."""

from idp.journey.outcomes import Success

NAME = "code_verified"
TEMPLATE = "journey/code_verified.html"


def applies(data, user):
    """The recovery flow."""
    return data.get("flow") == "recover"


def is_done(data, user):
    """Done once the user pressed Continue."""
    return bool(data.get("verified_ack"))


def context(tenant, data, params, user):
    """Nothing but the confirmation."""
    return {}


def submit(tenant, data, form, user):
    """Continue."""
    return Success({"verified_ack": True})
