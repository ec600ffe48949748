"""Step 0 for ``prompt=select_account``: continue as the signed-in user, or use another account.

Only planned when the relying party asked for account selection and a session
exists; the transaction then carries who is signed in (``signed_in``).
"""

from idp.journey.outcomes import Success

NAME = "select_account"
TEMPLATE = "journey/select_account.html"


def applies(data, user):
    """Only for ``prompt=select_account`` with a signed-in browser."""
    return bool(data.get("signed_in")) and data.get("reason") == "prompt_select_account"


def is_done(data, user):
    """Done once a choice was made."""
    return bool(data.get("account_chosen"))


def context(tenant, data, params, user):
    """The account this browser is signed in with."""
    return {"signed_in_email": data["signed_in"]["email"]}


def submit(tenant, data, form, user):
    """``current`` keeps the session (no new sign-in); anything else starts from the email."""
    if form.get("choice") == "current":
        current = data["signed_in"]
        return Success(
            {
                "account_chosen": True,
                "reuse_session": True,
                "email": current["email"],
                "user_id": current["user_id"],
            }
        )
    return Success({"account_chosen": True, "reuse_session": False})
