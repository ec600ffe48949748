"""The token, introspection and revocation answers, for Flask's views and the fast path.

These are the endpoints a client calls with its own credentials, and the most called
ones. Flask's views (``idp.oidc.views``) and ``idp.fastpath.ClientEndpoints``, which
serves the usual form of these requests with an app context only, call the same
functions with a Flask ``Request``; everything else — client authentication, the grants,
the checks — is the one Authlib server (``idp.oidc.server``) either way.
"""

from flask import g

from idp.extensions import autocommit_connection
from idp.extensions import statements_without_transaction
from idp.oidc.server import PublicRequest
from idp.oidc.server import authorization_server
from idp.services import tokens


def _oauth2_request(http_request):
    """Authlib's view of the request, which is also kept as ``g.http_request``: its URL is
    an audience a ``private_key_jwt`` assertion may name (``server.PrivateKeyJwt``)."""
    g.http_request = http_request
    return PublicRequest(http_request)


def token_response(http_request):
    """RFC 6749 §3.2; every answer is ``no-store``."""
    form = http_request.form
    if any(len(form.getlist(k)) > 1 for k in form):
        return _token_error("invalid_request", "A parameter is repeated.")
    if form.get("grant_type") == "client_credentials" or tokens.claims_in_one_statement():
        statements_without_transaction()  # each write is one statement (tokens.save_token)
    response = authorization_server.create_token_response(_oauth2_request(http_request))
    code = g.get("redeemed_code")
    if response.status_code != 200 and code is not None:
        # A redemption that failed its checks (PKCE, redirect URI, user) still spends the
        # code; one that lost a race finds it spent already.
        tokens.spend_authorization_code(code.id)
    return response


def _token_error(error, description):
    return authorization_server.handle_response(
        400,
        {"error": error, "error_description": description},
        [("Content-Type", "application/json")],
    )


def introspection_response(http_request):
    """RFC 7662. The presented token is read on a connection of its own
    (``g.token_reads``), not through the ORM session, which only a ``private_key_jwt``
    client's assertion then uses (its ``jti`` is recorded and committed)."""
    with autocommit_connection() as connection:
        g.token_reads = connection
        try:
            return authorization_server.create_endpoint_response(
                "introspection", _oauth2_request(http_request)
            )
        finally:
            del g.token_reads  # closed with the block: nothing after it may read on it


def revocation_response(http_request):
    """RFC 7009."""
    return authorization_server.create_endpoint_response(
        "revocation", _oauth2_request(http_request)
    )
