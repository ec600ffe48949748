"""Authlib grants with thin storage hooks, and the gaps of Authlib's defaults closed.

Closed here: PKCE ``plain`` (refused, RFC 9700 §2.1.1), PKCE optional for public
clients at the authorization endpoint, the code not revoking its tokens on reuse
(RFC 6749 §4.1.2), refresh tokens not rotating, and the OIDC claims we must add
(``sid``, ``azp``, ``amr``; ``acr`` and ``auth_time`` only when they apply).
"""

import secrets
import time

from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from flask import current_app
from flask import g

from idp.oidc import claims as oidc_claims
from idp.services import audit
from idp.services import tokens
from idp.services import users
from idp.tenancy import issuer_for

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only; a public client must send a challenge (RFC 9700 §2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        """Refuse ``plain`` and a missing method, then Authlib's checks."""
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        if challenge and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError(
                "code_challenge_method must be S256", redirect_uri=redirect_uri
            )
        if not challenge and grant.request.client.is_public:
            raise InvalidRequestError(
                "PKCE (code_challenge with S256) is required for public clients",
                redirect_uri=redirect_uri,
            )
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    """RFC 6749 §4.1 with single-use codes claimed atomically in ``query_authorization_code``."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def save_authorization_code(self, code, request):
        """Persist the code with the session facts the ID token will carry."""
        data = request.payload.data
        login = request.login  # set by the authorization view: session facts
        tokens.save_authorization_code(
            g.tenant,
            code,
            client_id=request.client.client_id,
            user_id=request.user.id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope or "",
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            auth_time=login["auth_time"],
            amr=login["amr"],
            acr=login.get("acr"),
            sid=login.get("sid"),
            claims=login.get("claims"),
        )

    def query_authorization_code(self, code, client):
        """The unused code; it is claimed with the token's INSERT (``tokens.save_token``)."""
        row = tokens.find_authorization_code(g.tenant, code, client)
        g.redeemed_code = row
        return row

    def delete_authorization_code(self, authorization_code):
        """Nothing to do: the code was marked used when its token was saved."""

    def authenticate_user(self, authorization_code):
        """The code's user, if still allowed to sign in."""
        user = users.get_user(g.tenant, authorization_code.user_id)
        return user if user is not None and user.state == "active" else None


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """RFC 6749 §6 with rotation: each use returns a new refresh token; reuse kills the family."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        """A live token; presenting a rotated one revokes its whole family (RFC 9700 §4.14.2).

        Within ``REFRESH_REUSE_LEEWAY`` seconds of its rotation a rotated token is only
        refused: that is two requests of the same client racing (two tabs, two nodes),
        and revoking would leave the client with no live family at all.
        """
        row = tokens.find_refresh_token(g.tenant, refresh_token)
        if row is None:
            return None
        if row.rotated_at is not None and row.revoked_at is None:
            leeway = current_app.config["REFRESH_REUSE_LEEWAY"]
            if time.time() - row.rotated_at >= leeway:
                tokens.revoke_family(g.tenant, row.grant_id)
                audit.record(
                    g.tenant, "token.refresh_reuse", user_id=row.user_id, client_id=row.client_id
                )
            return None
        return row if tokens.refresh_token_is_live(row) else None

    def authenticate_user(self, refresh_token):
        """The token's user, if still active."""
        user = users.get_user(g.tenant, refresh_token.user_id) if refresh_token.user_id else None
        return user if user is not None and user.state == "active" else None

    def create_token_response(self):
        """Issue, then save the new tokens and claim the rotation in one step
        (``tokens.save_token``): of two racing requests only one gets new tokens."""
        old = self.request.refresh_token
        user = self.authenticate_user(old)
        if not user:
            raise InvalidGrantError("The user of this token can no longer sign in.")
        self.request.user = user
        token = self.issue_token(user, old)
        self.save_token(token)  # raises invalid_grant if another request rotated it first
        return 200, token, self.TOKEN_RESPONSE_HEADER

    def revoke_old_credential(self, refresh_token):
        """Nothing to do: saving the new tokens marked it rotated."""


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """RFC 6749 §4.4 for confidential clients only."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


class OpenIDConnectCode(OpenIDCode):
    """OIDC Core §3.1: the ID token of the code flow, signed with the client's algorithm."""

    def exists_nonce(self, nonce, request):
        """Replay of a nonce is caught by the RP; codes are single use on our side."""
        return False

    def resolve_client_private_key(self, client):
        """The active key for the client's registered algorithm."""
        return tokens.keyring().signing_key(client.id_token_signed_response_alg)

    def get_encode_header(self, client):
        """Name the key, so relying parties pick it from the JWKS across rotations."""
        alg = client.id_token_signed_response_alg
        return {"alg": alg, "kid": tokens.keyring().signing_key(alg).kid}

    def get_client_algorithm(self, client):
        """RS256 by default, ES256 when registered."""
        return client.id_token_signed_response_alg

    def get_client_claims(self, client):
        """``iss``, ``aud`` and ``azp``, ``exp`` from the configured lifetime."""
        now = int(time.time())
        return {
            "iss": issuer_for(g.tenant),
            "aud": [client.client_id],
            "azp": client.client_id,
            "iat": now,
            "exp": now + current_app.config["ID_TOKEN_TTL"],
        }

    def get_authorization_code_claims(self, authorization_code):
        """Session facts: ``auth_time``, ``amr``, ``acr``, ``nonce``, ``sid``."""
        claims = super().get_authorization_code_claims(authorization_code)
        if authorization_code.sid:
            claims["sid"] = authorization_code.sid
        return claims

    def generate_user_info(self, user, scope):
        """Only what was asked for: scopes, plus the ``claims`` request parameter."""
        code = g.get("redeemed_code")
        requested = (code.claims or {}).get("id_token") if code is not None else None
        return oidc_claims.user_claims(user, scope, requested, include_scope_claims=False)


def new_family_id(prefix):
    """A fresh grant id for families that do not start from a code."""
    return f"{prefix}:{secrets.token_urlsafe(12)}"
