"""Step 1, email first: the tenant's policy routes the address (DESIGN §4, §6).

A domain routed to one upstream goes straight there; to several, to a choice of
buttons; otherwise to the password page if the tenant allows passwords. By default
nothing here reveals whether an account exists; a tenant may choose Azure AD B2C's
behaviour (``reveal_account_state``): unknown and deactivated accounts are then told
so here, as in the Fluxys guide. The admin back door skips routing entirely.
"""

from flask import url_for

from idp.federation import registry
from idp.journey import messages
from idp.journey.outcomes import Challenge
from idp.journey.outcomes import Redirect
from idp.journey.outcomes import Success
from idp.services import accounts
from idp.services import users
from idp.services.users import is_plausible_email
from idp.services.users import normalize_email

NAME = "identify"
TEMPLATE = "journey/identify.html"


def applies(data, user):
    """Every journey starts with the email."""
    return True


def is_done(data, user):
    """Done once an email is on the transaction (or a ``domain_hint`` chose the upstreams)."""
    return bool(data.get("email")) or data.get("flow") == "federate"


def auto(tenant, data, params):
    """The relying party's ``domain_hint`` routes before any email is typed (as Entra ID's
    does); an unknown or password domain just shows the email page."""
    hint = (params.get("domain_hint") or "").strip().lower()
    if not hint or data.get("flow") == "admin" or data.get("domain_hint_used"):
        return None
    upstreams = registry.for_domain(tenant, hint)
    if not upstreams:
        return None
    return federate(upstreams, {"domain_hint_used": True})


def context(tenant, data, params, user):
    """``login_hint`` pre-fills the field (OIDC Core §3.1.2.1)."""
    return {
        "email": data.get("email") or params.get("login_hint", ""),
        "admin": data.get("flow") == "admin",
    }


def submit(tenant, data, form, user):
    """Route the address; the existence of an account never changes the route."""
    email = normalize_email(form.get("email"))
    if not email or len(email) > 320 or not is_plausible_email(email):
        return Challenge(errors={"email": messages.ENTER_EMAIL}, code="invalid_email")
    if data.get("flow") == "admin":
        return Success({"email": email})
    found = users.find_user_by_email(tenant, email)
    route = registry.route(tenant, email, found)
    if route.kind == "refused":
        return messages.federation_failure(route.code)
    if route.kind == "upstreams":
        return federate(route.upstreams, {"email": email})
    if tenant.settings.get("reveal_account_state"):
        if found is None:
            return Challenge(errors={"email": messages.ACCOUNT_NOT_FOUND}, code="account_not_found")
        if accounts.problem(found) == accounts.DEACTIVATED:
            return messages.account_deactivated()
    return Success({"email": email, "flow": data.get("flow") or "signin"})


def federate(upstreams, facts):
    """One upstream: go there now (with ``login_hint``); several: show their buttons."""
    aliases = [u.alias for u in upstreams]
    facts = {**facts, "flow": "federate", "upstreams": aliases}
    if len(aliases) == 1:
        return Redirect(url_for("federation.start", alias=aliases[0]), facts)
    return Success(facts)
