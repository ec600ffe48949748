"""Several upstreams for one domain (Flexopus "Multiple Single Sign On"): one button each."""

from flask import url_for

from idp.federation import registry
from idp.journey.outcomes import Challenge
from idp.journey.outcomes import Redirect

NAME = "choose_sso"
TEMPLATE = "journey/choose_sso.html"


def applies(data, user):
    """The federation flow, until an upstream vouched for the user."""
    return data.get("flow") == "federate"


def is_done(data, user):
    """Done once an upstream's answer proved the user."""
    return bool(data.get("fed_ok"))


def context(tenant, data, params, user):
    """The upstreams this domain may use, with their names and button styles."""
    upstreams = [registry.find(tenant, alias) for alias in data.get("upstreams", [])]
    return {"email": data.get("email"), "upstreams": [u for u in upstreams if u is not None]}


def submit(tenant, data, form, user):
    """Go to the chosen upstream — only one of those offered."""
    alias = form.get("upstream")
    if alias not in data.get("upstreams", []):
        return Challenge()
    return Redirect(url_for("federation.start", alias=alias))
