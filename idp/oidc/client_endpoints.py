"""The token, introspection and revocation answers, for Flask's views and the fast path.

These are the endpoints a client calls with its own credentials, and the most called
ones. Flask's views (``idp.oidc.views``) give these functions Authlib's request made from
Flask's (``server.PublicRequest``); ``idp.fastpath.ClientEndpoints``, which serves the
usual form of these requests with an app context only, one made from the WSGI environ and
the parsed body (``server.FormRequest``). Everything else — client authentication, the
grants, the checks — is the one Authlib server (``idp.oidc.server``) either way, and the
answer is its ``server.Answer``.
"""

from flask import current_app
from flask import g
from flask import request as flask_request

from idp.extensions import autocommit_reads
from idp.extensions import statements_without_transaction
from idp.oidc.server import PublicRequest
from idp.oidc.server import authorization_server
from idp.services import tokens


def _serving(request):
    """Keep the endpoint's URL as the client called it (``g.endpoint_url``): an audience a
    ``private_key_jwt`` assertion may name (``server.PrivateKeyJwt``)."""
    g.endpoint_url = request.uri.partition("?")[0]
    return request


def token_response(request):
    """RFC 6749 §3.2; every answer is ``no-store``."""
    form = request.form
    if any(len(form.getlist(k)) > 1 for k in form):
        return _token_error("invalid_request", "A parameter is repeated.")
    if form.get("grant_type") != "client_credentials" and tokens.claims_in_one_statement():
        # Each write is one statement (tokens.save_token); a client-credentials token's
        # only statement does not use the session at all.
        statements_without_transaction()
    answer = authorization_server.create_token_response(_serving(request))
    code = g.get("redeemed_code")
    if answer.status_code != 200 and code is not None:
        # A redemption that failed its checks (PKCE, redirect URI, user) still spends the
        # code; one that lost a race finds it spent already.
        tokens.spend_authorization_code(code.id)
    return answer


def _token_error(error, description):
    return authorization_server.handle_response(
        400,
        {"error": error, "error_description": description},
        [("Content-Type", "application/json")],
    )


def introspection_response(request):
    """RFC 7662. The presented token is read on a connection of its own
    (``g.token_reads``, which connects at its first read: a token the cache keeps needs
    none), not through the ORM session, which only a ``private_key_jwt`` client's
    assertion then uses (its ``jti`` is recorded and committed)."""
    with autocommit_reads() as connect:
        g.token_reads = connect
        try:
            return authorization_server.create_endpoint_response(
                "introspection", _serving(request)
            )
        finally:
            del g.token_reads  # closed with the block: nothing after it may read on it


def revocation_response(request):
    """RFC 7009."""
    return authorization_server.create_endpoint_response("revocation", _serving(request))


def answer_flask_request(endpoint):
    """A Flask view's ``Response``: ``endpoint``'s answer to the current Flask request."""
    answer = endpoint(PublicRequest(flask_request._get_current_object()))
    return current_app.response_class(
        answer.body, status=answer.status_code, headers=answer.headers
    )
