""" "Does this request need the user?" — an ordered list of named checks (node-oidc-provider's
interaction policy). The first check that fires names the reason, which is logged,
tested, and turned into ``login_required`` & co. when ``prompt=none``.
"""

import time
from dataclasses import dataclass

LOGIN = "login"
CONSENT = "consent"
SELECT_ACCOUNT = "select_account"


@dataclass(frozen=True)
class Interaction:
    """Why the user must be involved, and which prompt (login, consent, select_account)."""

    reason: str
    prompt: str


@dataclass
class AuthorizationContext:
    """Everything the checks look at, gathered once by the authorization view."""

    client: object
    scope: str
    prompts: set
    max_age: int | None
    session: object | None
    user: object | None
    id_token_hint_sub: str | None
    fresh_login: bool
    consented: bool
    consent_scopes: set


def no_session(ctx):
    """No live SSO session in this browser."""
    return ctx.session is None or ctx.user is None


def user_inactive(ctx):
    """The session's user was disabled, expired or deleted since signing in."""
    return ctx.user.state != "active" or (
        ctx.user.access_expires_at is not None and ctx.user.access_expires_at <= time.time()
    )


def prompt_login(ctx):
    """``prompt=login``: re-authenticate even with a session (OIDC Core §3.1.2.1)."""
    return LOGIN in ctx.prompts and not ctx.fresh_login


def max_age(ctx):
    """The session's sign-in is older than ``max_age`` seconds: actively re-authenticate."""
    return (
        ctx.max_age is not None
        and not ctx.fresh_login
        and time.time() - ctx.session.auth_time > ctx.max_age
    )


def id_token_hint(ctx):
    """The hinted user is not the one signed in."""
    return ctx.id_token_hint_sub is not None and ctx.id_token_hint_sub != ctx.user.sub


def prompt_select_account(ctx):
    """``prompt=select_account``: let the user confirm or switch the account."""
    return SELECT_ACCOUNT in ctx.prompts and not ctx.fresh_login


def prompt_consent(ctx):
    """``prompt=consent``: ask again even when consent is remembered."""
    return CONSENT in ctx.prompts and not ctx.consented


def consent_missing(ctx):
    """A third-party client without remembered consent for every requested scope."""
    if ctx.client.first_party or ctx.consented:
        return False
    return not set(ctx.scope.split()) <= ctx.consent_scopes


CHECKS = (
    (no_session, LOGIN),
    (user_inactive, LOGIN),
    (prompt_login, LOGIN),
    (max_age, LOGIN),
    (id_token_hint, LOGIN),
    (prompt_select_account, SELECT_ACCOUNT),
    (prompt_consent, CONSENT),
    (consent_missing, CONSENT),
)


def needed_interaction(ctx):
    """The first check that fires, as an Interaction, or None when the code can be issued."""
    for check, prompt in CHECKS:
        if check(ctx):
            return Interaction(check.__name__, prompt)
    return None
