"""The UserInfo endpoint (OIDC Core §5.3), bearer token in the header or the form body.

The answer itself (``userinfo_answer``) needs no request object: Flask's view serves every
form of the request, and ``idp.fastpath.BearerUserInfo`` serves the common one (``GET``
with an ``Authorization: Bearer`` header) in front of Flask, from the same function.
"""

from typing import NamedTuple

from flask import g
from flask import jsonify
from flask import request

from idp.oidc.claims import user_claims
from idp.services import accounts
from idp.services import tokens
from idp.tenancy import issuer_for


class Answer(NamedTuple):
    """A userinfo answer before any framework turns it into a response."""

    status: int
    body: dict
    headers: tuple  # (name, value) pairs besides Content-Type


def bearer_error(status, error, description, challenge=None):
    """RFC 6750 §3: the error in ``WWW-Authenticate``, and as JSON for humans."""
    challenge = challenge or f'Bearer error="{error}", error_description="{description}"'
    body = {"error": error, "error_description": description}
    return Answer(status, body, (("WWW-Authenticate", challenge), ("Cache-Control", "no-store")))


def bearer_token(header):
    """The token of an ``Authorization: Bearer`` header value; None for any other scheme."""
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def presented_token():
    """The access token of this request; ValueError if sent twice or in the query string."""
    from_header = bearer_token(request.headers.get("Authorization", ""))
    from_body = request.form.get("access_token") if request.method == "POST" else None
    if "access_token" in request.args:
        raise ValueError("access tokens in the query string are not accepted")
    if from_header and from_body:
        raise ValueError("the access token was sent twice")
    return from_header or from_body


def userinfo_answer(tenant, value, connect=None):
    """Claims of the token's user, limited to the granted scopes and requested claims.

    ``connect``: returns where to read the token (the request session's when None).
    """
    if not value:
        description = "An access token is required."
        return bearer_error(401, "invalid_token", description, 'Bearer realm="userinfo"')
    row = tokens.find_access_token(tenant, issuer_for(tenant), value, connect)
    if row is None or row.user_id is None:
        return bearer_error(
            401, "invalid_token", "The access token is invalid, expired or revoked."
        )
    if "openid" not in row.scope.split():
        return bearer_error(403, "insufficient_scope", "The openid scope is required.")
    user = tokens.lookup_user(row)  # read with the token, by the same statement
    if user is None or user.state != "active" or accounts.problem(user) is not None:
        return bearer_error(401, "invalid_token", "The user of this token can no longer sign in.")
    requested = (row.claims or {}).get("userinfo")
    return Answer(200, user_claims(user, row.scope, requested), (("Cache-Control", "no-store"),))


def userinfo_response():
    """Flask's view of the endpoint: any method and place the token may come in."""
    try:
        answer = userinfo_answer(g.tenant, presented_token())
    except ValueError as exc:
        answer = bearer_error(400, "invalid_request", str(exc))
    response = jsonify(answer.body)
    response.status_code = answer.status
    for name, value in answer.headers:
        response.headers[name] = value
    return response
