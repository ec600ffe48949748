"""Account states of the user guides: what stops a proven user from signing in."""

import time

DISABLED = "account_disabled"
EXPIRED = "access_expired"
DEACTIVATED = "account_deactivated"


def problem(user, now=None):
    """The stable code of what blocks this account, or None when it may sign in."""
    now = now or time.time()
    if user.state in ("disabled", "deleted"):
        return DISABLED
    if user.state == "invited" and user.activation_deadline and user.activation_deadline <= now:
        return DEACTIVATED
    if user.access_expires_at is not None and user.access_expires_at <= now:
        return EXPIRED
    return None
