"""RP-Initiated Logout 1.0: end the SSO session, then maybe return to the relying party.

A request is trusted when its ``id_token_hint`` is one we issued to the signed-in
user (§2); anything else gets a confirmation page first, so a third party cannot
sign people out with a link. ``post_logout_redirect_uri`` must exactly match a
registered value of the identified client (§3), else we never redirect.
"""

from urllib.parse import urlencode

from flask import current_app
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from joserfc import jwt
from joserfc.errors import JoseError

from idp.errors import InvalidAuthorizationRequest
from idp.i18n import use_ui_locales
from idp.journey import cookies
from idp.services import audit
from idp.services import clients
from idp.services import sessions
from idp.services import tokens
from idp.services import users
from idp.tenancy import client_ip
from idp.tenancy import issuer_for


def _hint_claims(value):
    """Claims of an ID token we issued (expired is fine for a hint), or an error page."""
    try:
        token = jwt.decode(value, tokens.keyring().public_keyset, algorithms=["RS256", "ES256"])
    except (JoseError, ValueError, TypeError):
        raise InvalidAuthorizationRequest(
            "invalid_request", "The id_token_hint is not valid."
        ) from None
    if token.claims.get("iss") != issuer_for(g.tenant):
        raise InvalidAuthorizationRequest(
            "invalid_request", "The id_token_hint was issued elsewhere."
        )
    return token.claims


def parse_logout_request(values):
    """Validate the parameters; returns ``(client, redirect_to, hint_claims)``."""
    hint = _hint_claims(values["id_token_hint"]) if values.get("id_token_hint") else None
    client_id = values.get("client_id")
    if hint is not None:
        aud = hint.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if client_id and client_id not in auds:
            raise InvalidAuthorizationRequest(
                "invalid_request", "client_id does not match the id_token_hint."
            )
        client_id = client_id or hint.get("azp") or auds[0]
    client = clients.query_client(g.tenant, client_id) if client_id else None
    if client_id and client is None:
        raise InvalidAuthorizationRequest("invalid_client", "The application is not known.")
    target = values.get("post_logout_redirect_uri")
    redirect_to = None
    if target:
        if client is None or target not in client.post_logout_redirect_uris:
            raise InvalidAuthorizationRequest(
                "invalid_request",
                "The post_logout_redirect_uri is not registered for this application.",
            )
        redirect_to = target
        if values.get("state"):
            redirect_to += ("&" if "?" in target else "?") + urlencode({"state": values["state"]})
    return client, redirect_to, hint


def end_session_view():
    """GET or POST from the RP: log out at once when trusted, else ask first."""
    values = request.values
    use_ui_locales(values.get("ui_locales"))  # §2: the RP may ask for the page's language
    client, redirect_to, hint = parse_logout_request(values)
    session = sessions.load_session(
        g.tenant, cookies.read_session_cookie(request), current_app.config
    )
    user = users.get_user(g.tenant, session.user_id) if session else None
    trusted = (
        hint is not None
        and user is not None
        and hint.get("sub") == user.sub
        and hint.get("sid") in (None, session.id)
    )
    if session is None or trusted:
        return _finish(session, redirect_to)
    forward = {
        k: values[k]
        for k in ("client_id", "post_logout_redirect_uri", "state", "ui_locales")
        if values.get(k)
    }
    if client is not None:
        forward["client_id"] = client.client_id
    return render_template("oidc/logout_confirm.html", client=client, user=user, forward=forward)


def confirm_view():
    """POST from our own confirmation page (CSRF-protected)."""
    use_ui_locales(request.form.get("ui_locales"))
    client, redirect_to, _ = parse_logout_request(request.form)
    session = sessions.load_session(
        g.tenant, cookies.read_session_cookie(request), current_app.config
    )
    if request.form.get("decision") != "logout":
        return render_template("oidc/logged_out.html", stayed=True)
    return _finish(session, redirect_to)


def _finish(session, redirect_to):
    """End the session on the server, forget the cookie, revoke what the session issued."""
    if session is not None:
        sessions.end_session(session)
        tokens.revoke_session_tokens(g.tenant, session.id)
        audit.record(g.tenant, "logout", user_id=session.user_id, ip=client_ip())
    if redirect_to:
        response = redirect(redirect_to, code=303)
    else:
        response = current_app.make_response(render_template("oidc/logged_out.html", stayed=False))
    cookies.clear_session_cookie(response, g.tenant)
    response.headers["Cache-Control"] = "no-store"
    return response
