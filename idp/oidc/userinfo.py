"""The UserInfo endpoint (OIDC Core §5.3), bearer token in the header or the form body."""

from flask import g
from flask import jsonify
from flask import request

from idp.oidc.claims import user_claims
from idp.services import accounts
from idp.services import tokens
from idp.tenancy import issuer_for


def bearer_error(status, error, description):
    """RFC 6750 §3: the error in ``WWW-Authenticate``, and as JSON for humans."""
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    challenge = f'Bearer error="{error}", error_description="{description}"'
    response.headers["WWW-Authenticate"] = challenge if error else "Bearer"
    response.headers["Cache-Control"] = "no-store"
    return response


def presented_token():
    """The access token of this request; ValueError if sent twice or in the query string."""
    header = request.headers.get("Authorization", "")
    from_header = header[7:].strip() if header[:7].lower() == "bearer " else None
    from_body = request.form.get("access_token") if request.method == "POST" else None
    if "access_token" in request.args:
        raise ValueError("access tokens in the query string are not accepted")
    if from_header and from_body:
        raise ValueError("the access token was sent twice")
    return from_header or from_body


def userinfo_response():
    """Claims of the token's user, limited to the granted scopes and requested claims."""
    try:
        value = presented_token()
    except ValueError as exc:
        return bearer_error(400, "invalid_request", str(exc))
    if not value:
        response = bearer_error(401, "invalid_token", "An access token is required.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="userinfo"'
        return response
    row = tokens.find_access_token(g.tenant, issuer_for(g.tenant), value)
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
    response = jsonify(user_claims(user, row.scope, requested))
    response.headers["Cache-Control"] = "no-store"
    return response
