"""Recovery step 2: the emailed code proves the address; then account states may be told."""

from idp.journey import messages
from idp.journey.outcomes import Challenge
from idp.journey.outcomes import Success
from idp.journey.steps import send_code
from idp.services import accounts
from idp.services import email_codes
from idp.services import users

NAME = "verify_code"
TEMPLATE = "journey/verify_code.html"

RESULTS = {
    "wrong": messages.CODE_WRONG,
    "expired": messages.CODE_EXPIRED,
    "locked": messages.CODE_LOCKED,
    "missing": messages.CODE_MISSING,
}


def applies(data, user):
    """The recovery flow."""
    return data.get("flow") == "recover"


def is_done(data, user):
    """Done once the code was right."""
    return bool(data.get("email_verified"))


def context(tenant, data, params, user):
    """The address the code went to."""
    return {"email": data["email"]}


def submit(tenant, data, form, user):
    """ "Verify code", or "Send new code" (which voids the old one but keeps its failures)."""
    email = data["email"]
    if form.get("action") == "resend":
        refused = send_code.send(tenant, email)
        return refused or Challenge(message=messages.CODE_SENT, status=200, code="code_sent")
    code = "".join((form.get("code") or "").split())
    result = email_codes.verify(tenant, email, send_code.PURPOSE, code)
    found = users.find_user_by_email(tenant, email) if result == "ok" else None
    if found is None:
        wrong = result if result in RESULTS else "wrong"
        return Challenge(errors={"code": RESULTS[wrong]}, code=f"code_{wrong}")
    problem = accounts.problem(found)
    if problem:
        return messages.failure_for(problem)
    return Success({"email_verified": True, "user_id": found.id, "amr": ["otp"]})
