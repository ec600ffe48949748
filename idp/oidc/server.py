"""The Authlib authorization server, bound to the tenant of the current request.

One server object serves every tenant: each storage hook reads ``g.tenant``, set
once per request by ``idp.tenancy``, and every query filters on it — a client,
code or token of one tenant is unknown to another.
"""

import json
import secrets
import time
from collections import defaultdict
from functools import cached_property
from typing import NamedTuple

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Payload
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import current_app
from flask import g
from joserfc.jwk import KeySet
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.models import UsedAssertion
from idp.oidc import grants
from idp.services import client_cache
from idp.services import tokens
from idp.tenancy import issuer_for
from idp.tenancy import public_url_of

NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


class PublicRequest(FlaskOAuth2Request):
    """Authlib's Flask request under the URL the client called (``tenancy.public_url_of``),
    not the plain-HTTP one a node behind its TLS proxy sees, which Authlib refuses."""

    def __init__(self, http_request):  # FlaskOAuth2Request's, with the public URL
        OAuth2Request.__init__(
            self, http_request.method, public_url_of(http_request), headers=http_request.headers
        )
        self._request = http_request
        self.payload = FlaskOAuth2Payload(http_request)


class FormPayload(OAuth2Payload):
    """The parameters of a form body that has no query string beside it."""

    def __init__(self, form):
        self._form = form

    @property
    def data(self):
        """Authlib hook."""
        return self._form

    @cached_property
    def datalist(self):
        """Authlib hook: every value of each parameter."""
        return defaultdict(list, {key: self.data.getlist(key) for key in self.data})


class FormRequest(OAuth2Request):
    """Authlib's request made from a parsed form, headers and the public URL, with no
    Werkzeug ``Request`` under it: the fast path's (``idp.fastpath.ClientEndpoints``).

    ``form``: a Werkzeug ``MultiDict`` of the body, as ``Request.form`` would hold it;
    ``headers``: anything with a case-insensitive ``get`` (Werkzeug's ``EnvironHeaders``).
    """

    def __init__(self, method, url, headers, form):
        super().__init__(method, url, headers=headers)
        self._form = form
        self.payload = FormPayload(form)

    @property
    def form(self):
        """Authlib hook."""
        return self._form

    @property
    def args(self):
        """Authlib hook: there is no query string (the fast path sends those to Flask)."""
        return {}


class Answer(NamedTuple):
    """An endpoint's answer as Authlib gives it, the body already JSON: Flask's views make
    a ``Response`` of it (``client_endpoints.answer_flask_request``), the fast path writes it."""

    status_code: int
    body: bytes
    headers: list


class TenantAuthorizationServer(AuthorizationServer):
    """Authlib's Flask server with our grants, token format and client authentication."""

    def init_app(self, app, query_client=None, save_token=None):
        """Register grants, endpoints and the private_key_jwt method."""
        super().init_app(app, query_client=_query_client, save_token=_save_token)
        self.scopes_supported = None  # unknown scopes are ignored (OIDC Core §3.1.2.1)
        self.register_token_generator("default", generate_token)
        self.register_grant(
            grants.AuthorizationCodeGrant,
            [
                grants.S256CodeChallenge(required=True),
                grants.OpenIDConnectCode(require_nonce=False),
            ],
        )
        self.register_grant(grants.RefreshTokenGrant)
        self.register_grant(grants.ClientCredentialsGrant)
        self.register_client_auth_method("private_key_jwt", PrivateKeyJwt())
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    def authenticate_client(self, request, methods, endpoint="token"):
        """Refuse a request that authenticates more than one way (RFC 6749 §2.3)."""
        form = request.form
        ways = sum(
            [
                bool(extract_basic_authorization(request.headers)[0]),
                "client_secret" in form,
                "client_assertion" in form,
            ]
        )
        if ways > 1:
            raise InvalidRequestError("The client used more than one authentication method.")
        return super().authenticate_client(request, methods, endpoint)

    def create_oauth2_request(self, request):
        """Accept an already built request (a resumed authorization) as it is; a Flask one
        under its public URL (``PublicRequest``)."""
        if isinstance(request, OAuth2Request):
            return request
        return PublicRequest(request)

    def handle_response(self, status_code, payload, headers):
        """An ``Answer``; every token-endpoint style answer is ``no-store`` (RFC 6749 §5.1).

        Only the client endpoints (``idp.oidc.client_endpoints``) reach this, and their
        payloads are JSON objects: the authorization endpoint builds its own redirects
        (``idp.oidc.authorize``)."""
        kept = [(k, v) for k, v in headers if k.lower() not in ("cache-control", "pragma")]
        return Answer(status_code, json.dumps(payload).encode(), kept + NO_STORE)


def _query_client(client_id):
    """Authlib only reads the client: it may come from this process's cache."""
    return client_cache.query_client(g.tenant, client_id)


def refresh_allowed(client, scope):
    """Refresh tokens need the grant type and, for OpenID requests, ``offline_access``."""
    granted = (scope or "").split()
    return client.check_grant_type("refresh_token") and (
        "offline_access" in granted or "openid" not in granted
    )


def generate_token(
    grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True
):
    """Authlib token generator: an RFC 9068 access token, maybe an opaque refresh token."""
    ttl = expires_in or current_app.config["ACCESS_TOKEN_TTL"]
    access_token, jti = tokens.create_access_token(
        g.tenant, issuer_for(g.tenant), client, user, scope, ttl
    )
    g.issued_jti = jti
    token = {"token_type": "Bearer", "access_token": access_token, "expires_in": ttl}
    if scope:
        token["scope"] = scope
    if include_refresh_token and refresh_allowed(client, scope):
        token["refresh_token"] = secrets.token_urlsafe(32)
    return token


def _save_token(token, request):
    meta = {"client_id": request.client.client_id, "jti": g.issued_jti}
    origin = request.authorization_code or request.refresh_token
    if origin is not None:
        meta.update(
            user_id=origin.user_id,
            auth_time=origin.auth_time,
            sid=origin.sid,
            amr=origin.amr,
            acr=origin.acr,
            claims=origin.claims,
        )
    if request.authorization_code is not None:
        code = request.authorization_code
        meta.update(grant_id=code.family, claim=("code", code.id))
    elif request.refresh_token is not None:
        old = request.refresh_token
        meta.update(grant_id=old.grant_id, family_expires_at=old.family_expires_at)
        meta["claim"] = ("refresh", old.id)
    else:
        meta["grant_id"] = grants.new_family_id("cc")
    if tokens.save_token(g.tenant, token, meta):
        return
    # Claimed first by a concurrent request: a code is then used twice (its tokens go), a
    # refresh token was rotated by the other request.
    if request.authorization_code is not None:
        tokens.code_reused(g.tenant, request.authorization_code)
        raise InvalidGrantError("The authorization code was already used.")
    raise InvalidGrantError("The refresh token was already used.")


class PrivateKeyJwt(JWTBearerClientAssertion):
    """``private_key_jwt`` (OIDC Core §9, RFC 7523) with ``jti`` replay protection in the DB."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self):
        """The token endpoint, the issuer, or the endpoint being called."""
        issuer = issuer_for(g.tenant)
        return [f"{issuer}/token", issuer, g.endpoint_url]  # see client_endpoints

    def validate_jti(self, claims, jti):
        """Record the assertion id; a second use hits the unique constraint."""
        if not isinstance(jti, str) or len(jti) > 200:
            return False
        exp = claims.get("exp") if isinstance(claims.get("exp"), int) else int(time.time()) + 3600
        db.session.add(
            UsedAssertion(tenant_id=g.tenant.id, client_id=claims["sub"], jti=jti, expires_at=exp)
        )
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            return False
        return True

    def resolve_client_public_key(self, client):
        """The keys the client registered."""
        if not client.jwks:
            raise InvalidClientError(description="The client has no registered keys.")
        return KeySet.import_key_set(client.jwks)


class PresentedToken:
    """A token found by its value, remembering whether it was an access or a refresh token."""

    def __init__(self, row, kind):
        self.row = row  # a ``tokens.lookup_*`` row: the token's columns and its user's
        self.kind = kind

    def check_client(self, client):
        """Authlib hook."""
        return self.row.client_id == client.get_client_id()

    def is_expired(self):
        """Authlib hook."""
        if self.kind == "refresh_token":
            return not tokens.refresh_token_is_live(self.row)
        return self.row.access_expires_at <= time.time()

    def is_revoked(self):
        """Authlib hook."""
        return self.row.revoked_at is not None or (
            self.kind == "access_token" and self.row.access_revoked_at is not None
        )


def find_presented_token(token_string, hint):
    """Look the value up as a refresh token or an access token JWT: the hint first, else the
    kind its shape suggests (a hint is only a hint, RFC 7009 §2.1: the other kind is tried too)."""
    kinds = ["refresh_token", "access_token"]
    if hint == "access_token" or (hint is None and token_string.count(".") == 2):
        kinds.reverse()  # our access tokens are JWTs; refresh tokens never contain a dot
    reads = g.get("token_reads")  # connects introspection's own connection; else the session
    for kind in kinds:
        if kind == "refresh_token":
            row = tokens.lookup_refresh_token(g.tenant, token_string, reads)
        else:
            row = tokens.lookup_access_token(g.tenant, issuer_for(g.tenant), token_string, reads)
        if row is not None:
            return PresentedToken(row, kind)
    return None


class UnsupportedHint(OAuth2Error):
    """``unsupported_token_type`` with the 400 status of RFC 6749 §5.2."""

    error = "unsupported_token_type"
    status_code = 400


class HintCheck:
    """An unknown ``token_type_hint`` is a 400 ``unsupported_token_type`` (RFC 7009 §2.2.1,
    RFC 6749 §5.2); Authlib answers 401, which tells the client its credentials failed."""

    def check_params(self, request, client):
        """Authlib hook."""
        if "token" not in request.form:
            raise InvalidRequestError("Missing 'token'.")
        hint = request.form.get("token_type_hint")
        if hint and hint not in self.SUPPORTED_TOKEN_TYPES:
            raise UnsupportedHint()


class Revocation(HintCheck, RevocationEndpoint):
    """RFC 7009: revoking a refresh token revokes its family; an access token, itself."""

    CLIENT_AUTH_METHODS = grants.AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        """Authlib hook."""
        return find_presented_token(token_string, token_type_hint)

    def revoke_token(self, token, request):
        """Authlib hook."""
        if token.kind == "refresh_token":
            tokens.revoke_family(g.tenant, token.row.grant_id)
        else:
            tokens.revoke_access_token(token.row.id)


class Introspection(HintCheck, IntrospectionEndpoint):
    """RFC 7662, client authentication required; a client sees only its own tokens."""

    CLIENT_AUTH_METHODS = grants.AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        """Authlib hook."""
        return find_presented_token(token_string, token_type_hint)

    def check_permission(self, token, client, request):
        """Only the client the token was issued to may introspect it."""
        return token.check_client(client)

    def introspect_token(self, token):
        """The RFC 7662 §2.2 members."""
        row = token.row
        payload = {
            "active": True,
            "scope": row.scope,
            "client_id": row.client_id,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "iat": row.issued_at,
            "exp": row.access_expires_at
            if token.kind == "access_token"
            else row.refresh_expires_at,
            "iss": issuer_for(g.tenant),
            "jti": row.jti if token.kind == "access_token" else None,
        }
        if row.user_id:
            payload["sub"] = row.user_sub
            payload["username"] = row.user_email
        else:
            payload["sub"] = row.client_id
        return {k: v for k, v in payload.items() if v is not None}


authorization_server = TenantAuthorizationServer()
