"""Dynamic Client Registration (RFC 7591) and Client Management (RFC 7592), per tenant.

Authlib's ``ClientRegistrationEndpoint`` and ``ClientConfigurationEndpoint`` do not
fit as thin hooks: they validate metadata with JOSE claims classes (ours must go
through ``clients.validate_metadata``), answer a missing token with 403
``access_denied`` where RFC 6750 §3.1 wants 401 ``invalid_token``, mint a 24-byte
hex secret, and their error descriptions reject characters our messages may hold.
Overriding all of that would leave nothing of them, so the little that remains
is written out here.

Every answer carries ``Cache-Control: no-store``: it holds a secret or a
registration access token (RFC 7591 §3.2.1, RFC 7592 §3).
"""

import json

from flask import Response

from idp.errors import ValidationFailed
from idp.services import audit
from idp.services import clients
from idp.services import registration_tokens
from idp.tenancy import client_ip
from idp.tenancy import endpoint_url

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

# RFC 7592 §2.2: issued by the server, never sent back by the client in an update.
SERVER_FIELDS = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)


class RegistrationError(Exception):
    """An error answer: RFC 7591 §3.2.2 codes, or RFC 6750 §3.1 ``invalid_token``."""

    def __init__(self, status, error, description, www_authenticate=None):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.www_authenticate = www_authenticate


def _invalid_token(token):
    """RFC 6750 §3.1: 401 with a challenge; no error code when no token was sent at all."""
    challenge = 'Bearer error="invalid_token"' if token else "Bearer"
    return RegistrationError(
        401,
        "invalid_token",
        "The bearer token is missing or not valid.",
        www_authenticate=challenge,
    )


def _invalid_request(description):
    return RegistrationError(400, "invalid_request", description)


def bearer_token(request):
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1), or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _json_body(request):
    """RFC 7591 §3.1: the metadata is a JSON object sent as ``application/json``."""
    if request.mimetype != "application/json":
        raise _invalid_request("The request body must be application/json.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise _invalid_request("The request body must be a JSON object.")
    return body


def _answer(status, payload=None):
    if payload is None:
        return Response(status=status, headers=NO_STORE)
    return Response(
        json.dumps(payload), status=status, mimetype="application/json", headers=NO_STORE
    )


def _error_answer(exc):
    """One JSON shape for every failure (RFC 7591 §3.2.2)."""
    if isinstance(exc, ValidationFailed):
        exc = RegistrationError(400, exc.error, exc.message)
    response = _answer(exc.status, {"error": exc.error, "error_description": exc.description})
    if exc.www_authenticate:
        response.headers["WWW-Authenticate"] = exc.www_authenticate
    return response


def registration_client_uri(tenant, client):
    """The client configuration endpoint of one client (RFC 7592 §3)."""
    return endpoint_url(tenant, f"register/{client.client_id}")


def describe_registration(tenant, client, token, secret=None):
    """RFC 7591 §3.2.1 / RFC 7592 §3 response: metadata plus the management credentials."""
    info = clients.describe_client(client, secret)
    if client.secret_hash:
        info.setdefault("client_secret_expires_at", 0)
    info["registration_access_token"] = token
    info["registration_client_uri"] = registration_client_uri(tenant, client)
    return info


def create_registration_response(tenant, request):
    """RFC 7591 §3: register a third-party client, gated by an initial access token."""
    token = bearer_token(request)
    try:
        if registration_tokens.query_initial_access_token(tenant, token) is None:
            raise _invalid_token(token)
        body = _json_body(request)
        name = clients.validate_client_name(body.get("client_name"))
        client, secret = clients.create_client(tenant, name, body, first_party=False)
    except (RegistrationError, ValidationFailed) as exc:
        return _error_answer(exc)
    management_token = registration_tokens.issue_registration_access_token(client)
    audit.record(tenant, "client.registered", client_id=client.client_id, ip=client_ip())
    return _answer(201, describe_registration(tenant, client, management_token, secret))


def create_configuration_response(tenant, client_id, request):
    """RFC 7592 §2: read (GET), replace (PUT) or delete (DELETE) one client.

    The registration access token is checked against the client named in the URL,
    looked up in this tenant only: a token of another client, or of a client of
    another tenant, is simply not valid here (401, RFC 7592 §2.1).
    """
    token = bearer_token(request)
    client = clients.query_client(tenant, client_id)
    try:
        if not registration_tokens.check_registration_access_token(client, token):
            raise _invalid_token(token)
        if request.method == "DELETE":
            clients.delete_client(tenant, client)
            audit.record(tenant, "client.deleted", client_id=client_id, ip=client_ip())
            return _answer(204)
        if request.method == "PUT":
            _update_client(client, _json_body(request))
            audit.record(tenant, "client.updated", client_id=client_id, ip=client_ip())
    except (RegistrationError, ValidationFailed) as exc:
        return _error_answer(exc)
    return _answer(200, describe_registration(tenant, client, token))


def _update_client(client, body):
    """RFC 7592 §2.2: the body replaces the metadata; omitted fields take their defaults."""
    sent = [name for name in SERVER_FIELDS if name in body]
    if sent:
        raise _invalid_request(f"{sent[0]} is issued by the server and must not be sent.")
    if body.get("client_id") != client.client_id:
        raise _invalid_request("client_id must be present and be this client's identifier.")
    if "client_secret" in body:
        secret = body["client_secret"]
        if not isinstance(secret, str) or not client.check_client_secret(secret):
            raise _invalid_request("client_secret does not match the issued secret.")
    name = clients.validate_client_name(body.get("client_name"))
    clients.update_client(client, name, body)
