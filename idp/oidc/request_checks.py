"""Checks of an authorization request, in the order they run (node-oidc-provider's pipeline).

``validate_client_and_redirect`` comes first and never redirects: an unknown client
or an unregistered ``redirect_uri`` is shown to the user (RFC 6749 §4.1.2.1).
``validate_parameters`` runs once the redirect URI is trusted; its errors are
``RedirectableError`` and go back to the client.
"""

from dataclasses import dataclass

from flask import g
from joserfc import jwt
from joserfc.errors import JoseError

from idp.errors import InvalidAuthorizationRequest
from idp.oidc.claims import parse_claims_parameter
from idp.services import client_cache
from idp.services import tokens
from idp.tenancy import issuer_for

SINGLE_VALUED = (
    "response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "response_mode",
    "prompt", "max_age", "id_token_hint", "login_hint", "ui_locales", "acr_values", "claims",
    "code_challenge", "code_challenge_method", "display", "request", "request_uri",
)  # fmt: skip
PROMPTS = {"none", "login", "consent", "select_account"}


class RedirectableError(Exception):
    """An error to send back to the client's (validated) redirect URI."""

    def __init__(self, error, description=None):
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class Options:
    """The parsed OpenID parameters the interaction policy looks at."""

    prompts: frozenset
    max_age: int | None
    claims: dict | None
    hint_sub: str | None

    def acr_requested(self, acr_values):
        """``acr`` goes in the ID token only when asked for (acr_values or ``claims``)."""
        id_token_claims = (self.claims or {}).get("id_token") or {}
        return bool(acr_values) or "acr" in id_token_claims


def datalist(pairs):
    """Parameter name → every value it was given, in order."""
    result = {}
    for name, value in pairs:
        result.setdefault(name, []).append(value)
    return result


def validate_client_and_redirect(pairs):
    """A known client and exactly one exactly registered redirect URI; else an error page."""
    data = datalist(pairs)
    client_ids = data.get("client_id", [])
    if len(client_ids) != 1:
        raise InvalidAuthorizationRequest(
            "invalid_request", "The request must name exactly one client."
        )
    client = client_cache.query_client(g.tenant, client_ids[0])  # only read here
    if client is None:
        raise InvalidAuthorizationRequest(
            "invalid_client", "The application is not known to this sign-in service."
        )
    uris = data.get("redirect_uri", [])
    if len(uris) != 1:
        raise InvalidAuthorizationRequest(
            "invalid_request", "The request must carry exactly one redirect_uri."
        )
    if not client.check_redirect_uri(uris[0]):
        raise InvalidAuthorizationRequest(
            "invalid_request", "The redirect_uri is not registered for this application."
        )
    return client, uris[0]


def validate_parameters(data, client):
    """Duplicates, request objects, prompt, max_age, claims, id_token_hint → Options."""
    first = {k: v[0] for k, v in data.items()}
    for name in SINGLE_VALUED:
        if len(data.get(name, [])) > 1:
            raise RedirectableError("invalid_request", f"Parameter {name} is repeated.")
    if "request" in first:
        raise RedirectableError("request_not_supported", "Request objects are not supported.")
    if "request_uri" in first:
        raise RedirectableError("request_uri_not_supported", "request_uri is not supported.")
    prompts = frozenset(first.get("prompt", "").split())
    if prompts - PROMPTS:
        raise RedirectableError("invalid_request", "Unsupported prompt value.")
    if "none" in prompts and len(prompts) > 1:
        raise RedirectableError("invalid_request", "prompt=none cannot be combined.")
    max_age = first.get("max_age")
    if max_age is not None:
        if not max_age.isdigit() or len(max_age) > 10:
            raise RedirectableError("invalid_request", "max_age must be a non-negative integer.")
        max_age = int(max_age)
    try:
        claims = parse_claims_parameter(first.get("claims"))
    except ValueError:
        raise RedirectableError("invalid_request", "The claims parameter is not valid.") from None
    hint = first.get("id_token_hint")
    hint_sub = id_token_hint_subject(hint, client) if hint else None
    return Options(prompts, max_age, claims, hint_sub)


def id_token_hint_subject(value, client):
    """The ``sub`` of an ID token we issued to this client; expiry does not matter here."""
    try:
        token = jwt.decode(value, tokens.keyring().public_keyset, algorithms=["RS256", "ES256"])
    except (JoseError, ValueError, TypeError):
        raise RedirectableError("invalid_request", "id_token_hint is not valid.") from None
    aud = token.claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if token.claims.get("iss") != issuer_for(g.tenant) or client.client_id not in auds:
        raise RedirectableError("invalid_request", "id_token_hint was not issued to this client.")
    return token.claims.get("sub")
