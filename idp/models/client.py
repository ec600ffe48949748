"""An OAuth client (relying party) of one tenant, with the hooks Authlib's ClientMixin expects."""

import hashlib
import hmac

from sqlalchemy import JSON
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.extensions import db
from idp.models._types import tenant_fk
from idp.models._types import timestamp


def hash_secret(secret):
    """Client secrets are >= 256 random bits, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Client(db.Model):
    """Registered metadata lives in ``meta`` with RFC 7591 names; secrets only as hashes."""

    __tablename__ = "clients"
    __table_args__ = (UniqueConstraint("tenant_id", "client_id", name="uq_clients_tenant_client"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = tenant_fk(index=False)  # uq_clients_tenant_client leads with it
    client_id: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    first_party: Mapped[bool] = mapped_column(default=False)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    registration_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[int] = timestamp()

    @property
    def redirect_uris(self):
        """Exact redirect URIs; no wildcards, no prefixes (RFC 9700 §4.1.1)."""
        return list(self.meta.get("redirect_uris", []))

    @property
    def post_logout_redirect_uris(self):
        """Where RP-initiated logout may send the user back to."""
        return list(self.meta.get("post_logout_redirect_uris", []))

    @property
    def grant_types(self):
        """Grant types this client may use at the token endpoint."""
        return list(self.meta.get("grant_types", ["authorization_code"]))

    @property
    def response_types(self):
        """Response types this client may ask for at the authorization endpoint."""
        return list(self.meta.get("response_types", ["code"]))

    @property
    def token_endpoint_auth_method(self):
        """The one way this client authenticates (RFC 7591 §2)."""
        return self.meta.get("token_endpoint_auth_method", "client_secret_basic")

    @property
    def is_public(self):
        """A public client cannot keep a secret: PKCE is then mandatory."""
        return self.token_endpoint_auth_method == "none"

    @property
    def scope(self):
        """Space-separated scopes this client may be granted."""
        return self.meta.get("scope", "openid profile email offline_access")

    @property
    def id_token_signed_response_alg(self):
        """RS256 unless the client registered ES256."""
        return self.meta.get("id_token_signed_response_alg", "RS256")

    @property
    def access_token_signed_response_alg(self):
        """RS256 (what RFC 9068 requires resource servers to accept) unless ES256 was chosen."""
        return self.meta.get("access_token_signed_response_alg", "RS256")

    @property
    def jwks(self):
        """Public keys for private_key_jwt client authentication."""
        return self.meta.get("jwks")

    # Authlib ClientMixin -------------------------------------------------------------

    def get_client_id(self):
        """Authlib hook."""
        return self.client_id

    def get_default_redirect_uri(self):
        """No fallback to a registered URI: ``redirect_uri`` is required (OIDC Core §3.1.2.1)."""
        return None

    def get_allowed_scope(self, scope):
        """Grant the requested scopes this client is allowed, in request order."""
        if not scope:
            return ""
        allowed = set(self.scope.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri):
        """Exact string comparison against the registered list."""
        return any(hmac.compare_digest(redirect_uri, uri) for uri in self.redirect_uris)

    def check_client_secret(self, client_secret):
        """Constant-time comparison of hashes."""
        if not self.secret_hash:
            return False
        return hmac.compare_digest(hash_secret(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method, endpoint):
        """A client authenticates only the way it registered, at every endpoint."""
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type):
        """Authlib hook."""
        return response_type in self.response_types

    def check_grant_type(self, grant_type):
        """Authlib hook."""
        return grant_type in self.grant_types


class InitialAccessToken(db.Model):
    """Bearer token the CLI issues to gate dynamic client registration (RFC 7591 §3)."""

    __tablename__ = "initial_access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = tenant_fk()
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[int | None] = timestamp(nullable=True)
    created_at: Mapped[int] = timestamp()
