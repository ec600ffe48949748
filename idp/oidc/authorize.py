"""The authorization endpoint as an ordered pipeline (node-oidc-provider's shape).

1. ``validate_client_and_redirect``: never redirect for an unknown client or an
   unregistered ``redirect_uri`` (RFC 6749 §4.1.2.1).
2. Response mode, then ``validate_parameters`` — errors now go back to the client.
3. Authlib validates response type, scope, PKCE and nonce.
4. The interaction policy decides whether the user must act; ``prompt=none`` turns
   that into ``login_required`` & co.
5. Issue the code, delivered in the requested response mode with ``iss`` (RFC 9207).

A request that needs the user is parked in a login transaction; the journey
sends the browser to ``resume``, which re-runs the same pipeline.
"""

from dataclasses import dataclass

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import current_app
from flask import g
from flask import redirect
from flask import request
from flask import url_for

from idp.i18n import use_ui_locales
from idp.journey import cookies
from idp.journey import transaction as tx
from idp.oidc import consent as consent_store
from idp.oidc import policy
from idp.oidc.request_checks import RedirectableError
from idp.oidc.request_checks import datalist
from idp.oidc.request_checks import validate_client_and_redirect
from idp.oidc.request_checks import validate_parameters
from idp.oidc.responses import RESPONSE_MODES
from idp.oidc.responses import authorization_response
from idp.oidc.responses import error_params
from idp.oidc.server import authorization_server
from idp.services import sessions
from idp.services import users
from idp.tenancy import issuer_for
from idp.tenancy import public_url_of

NONE_ERRORS = {policy.LOGIN: "login_required", policy.CONSENT: "consent_required"}


class ParamsRequest(OAuth2Request):
    """An OAuth2Request over explicit parameters: fresh from the browser or resumed."""

    def __init__(self, pairs):
        super().__init__(request.method, public_url_of(request), headers=request.headers)
        self.payload = BasicOAuth2Payload(dict(reversed(pairs)))
        self.payload._datalist = datalist(pairs)

    @property
    def args(self):
        """Authlib hook."""
        return self.payload.data

    @property
    def form(self):
        """Authlib hook."""
        return self.payload.data


@dataclass
class Attempt:
    """One run of the pipeline: the request, where answers go, and what the browser has."""

    pairs: list
    client: object
    redirect_uri: str
    mode: str
    state: str | None
    transaction: object | None
    session: object | None = None
    user: object | None = None

    def respond(self, params):
        """Deliver ``params`` to the client in the requested response mode."""
        response = authorization_response(self.redirect_uri, params, self.mode)
        cookies.clear_tx_cookie(response, g.tenant)
        return response

    def error(self, error, description=None):
        """An error response with ``state`` and ``iss``."""
        return self.respond(error_params(error, description, self.state, issuer_for(g.tenant)))


def request_pairs():
    """The parameters of this GET or POST authorization request, in order."""
    source = request.form if request.method == "POST" else request.args
    return list(source.items(multi=True))


def start_attempt(pairs, transaction=None):
    """Steps 1–2: an Attempt whose answers may safely go to the client."""
    client, redirect_uri = validate_client_and_redirect(pairs)
    data = datalist(pairs)
    mode = data.get("response_mode", ["query"])[0]
    state = data.get("state", [None])[0]
    attempt = Attempt(pairs, client, redirect_uri, mode, state, transaction)
    if mode not in RESPONSE_MODES or len(data.get("response_mode", [])) > 1:
        attempt.mode = "query"
        raise _Refused(attempt.error("invalid_request", "Unsupported response_mode."))
    return attempt, data


class _Refused(Exception):
    """Carries a ready error response out of ``start_attempt``."""

    def __init__(self, response):
        super().__init__("refused")
        self.response = response


def handle_authorization(pairs, transaction=None, login=None):
    """Run the pipeline for these parameters; returns a Flask response.

    ``login`` is the (SSO session, user) the journey has just established in this request;
    otherwise the browser's session cookie says who is signed in.
    """
    # Error pages and the form_post page speak the language the client asked for.
    use_ui_locales(datalist(pairs).get("ui_locales", [""])[0])
    try:
        attempt, data = start_attempt(pairs, transaction)
    except _Refused as refused:
        return refused.response
    try:
        options = validate_parameters(data, attempt.client)
        attempt.session, attempt.user = login or _current_login()
        grant = authorization_server.get_consent_grant(
            request=ParamsRequest(pairs), end_user=attempt.user
        )
        return _decide(attempt, grant, options)
    except RedirectableError as exc:
        return attempt.error(exc.error, exc.description)
    except OAuth2Error as exc:
        return attempt.error(exc.error, exc.get_error_description() or None)


def _current_login():
    """The SSO session and its user for this browser, if any."""
    session = sessions.load_session(
        g.tenant, cookies.read_session_cookie(request), current_app.config
    )
    if session is None:
        return None, None
    return session, users.get_user(g.tenant, session.user_id)


def _decide(attempt, grant, options):
    """Ask the policy; park the request for the user, refuse it, or issue the code."""
    data = attempt.transaction.data if attempt.transaction is not None else {}
    user = attempt.user
    ctx = policy.AuthorizationContext(
        client=attempt.client,
        scope=grant.request.scope or "",
        prompts=options.prompts,
        max_age=options.max_age,
        session=attempt.session,
        user=user,
        id_token_hint_sub=options.hint_sub,
        fresh_login=bool(data.get("login")),
        consented=bool(data.get("consented")),
        # First-party clients are never asked (policy.consent_missing): no lookup for them.
        consent_scopes=consent_store.granted_scopes(g.tenant, user, attempt.client)
        if user and not attempt.client.first_party
        else set(),
    )
    interaction = policy.needed_interaction(ctx)
    if interaction is not None:
        if "none" in options.prompts:
            error = NONE_ERRORS.get(interaction.prompt, "account_selection_required")
            raise RedirectableError(error, f"User interaction is needed ({interaction.reason}).")
        return _start_interaction(attempt, interaction)
    if attempt.transaction is not None:
        tx.finish_transaction(attempt.transaction)
    return _issue_code(attempt, grant, options)


def _start_interaction(attempt, interaction):
    """Park the request in a transaction and send the browser to the journey."""
    target = url_for("oidc.consent" if interaction.prompt == policy.CONSENT else "journey.login")
    if attempt.transaction is not None:
        tx.update_transaction(
            attempt.transaction, reason=interaction.reason, prompt=interaction.prompt
        )
        return redirect(target, code=303)
    user = attempt.user
    signed_in = {"user_id": user.id, "email": user.email} if user is not None else None
    _, raw_id = tx.start_transaction(g.tenant, attempt.pairs, interaction, signed_in)
    response = redirect(target, code=303)
    cookies.set_tx_cookie(response, g.tenant, raw_id)
    response.headers["Cache-Control"] = "no-store"
    return response


def _issue_code(attempt, grant, options):
    """Mint the code, bound to client, redirect URI, PKCE challenge and the session."""
    oauth_request = grant.request
    session = attempt.session
    oauth_request.user = attempt.user
    acr_values = oauth_request.payload.data.get("acr_values")
    oauth_request.login = {
        "auth_time": session.auth_time,
        "amr": session.amr,
        "acr": session.acr if options.acr_requested(acr_values) else None,
        "sid": session.id,
        "claims": options.claims,
    }
    code = grant.generate_authorization_code()
    grant.save_authorization_code(code, oauth_request)
    params = [("code", code)]
    if attempt.state is not None:
        params.append(("state", attempt.state))
    params.append(("iss", issuer_for(g.tenant)))
    return attempt.respond(params)


def deny(transaction):
    """The user refused consent: ``access_denied`` to the client (RFC 6749 §4.1.2.1)."""
    try:
        attempt, _ = start_attempt(tx.stored_params(transaction), transaction)
    except _Refused as refused:
        return refused.response
    finally:
        tx.finish_transaction(transaction)
    return attempt.error("access_denied", "The user denied the request.")


def resume(transaction=None, login=None):
    """Continue a parked request once the journey (or consent) is done.

    The journey calls it with its transaction and the login it has just made; the
    ``/authorize/resume`` URL (consent, federation, an interrupted browser) without.
    """
    transaction = transaction or tx.load_transaction(g.tenant)
    return handle_authorization(tx.stored_params(transaction), transaction, login)
