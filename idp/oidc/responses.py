"""Authorization responses in every response mode, each carrying ``iss`` (RFC 9207).

Authlib's own form_post page runs an inline script and re-quotes the values; ours
posts the exact ``state`` from a page whose only script is a static file, so it
works under a strict CSP.
"""

from urllib.parse import urlencode
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from flask import make_response
from flask import render_template

RESPONSE_MODES = ("query", "fragment", "form_post")


def _append(uri, params, fragment):
    parts = urlsplit(uri)
    encoded = urlencode(params)
    if fragment:
        return urlunsplit(parts._replace(fragment=encoded))
    query = f"{parts.query}&{encoded}" if parts.query else encoded
    return urlunsplit(parts._replace(query=query))


def authorization_response(redirect_uri, params, response_mode):
    """Deliver ``params`` to the client: a 303 redirect, or an auto-submitted form."""
    if response_mode == "form_post":
        html = render_template("oidc/form_post.html", action=redirect_uri, params=params)
        response = make_response(html, 200)
    else:
        response = make_response("", 303)
        response.headers["Location"] = _append(redirect_uri, params, response_mode == "fragment")
    response.headers["Cache-Control"] = "no-store"
    return response


def error_params(error, description, state, issuer):
    """RFC 6749 §4.1.2.1 error parameters, plus ``iss``."""
    params = [("error", error)]
    if description:
        params.append(("error_description", description))
    if state is not None:
        params.append(("state", state))
    params.append(("iss", issuer))
    return params
