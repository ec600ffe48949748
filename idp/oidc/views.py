"""Protocol endpoints of a tenant. Views are thin: parse, call the server or a service, answer."""

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import g
from flask import render_template
from flask import request

from idp.errors import JourneyExpired
from idp.extensions import csrf
from idp.extensions import one_transaction
from idp.extensions import statements_without_transaction
from idp.i18n import use_ui_locales
from idp.journey import cookies
from idp.journey import transaction as tx
from idp.oidc import authorize as authz
from idp.oidc import client_endpoints
from idp.oidc import consent as consent_store
from idp.oidc import logout
from idp.oidc import registration
from idp.oidc.discovery import DOCUMENT_HEADERS
from idp.oidc.discovery import metadata_bytes
from idp.oidc.userinfo import userinfo_response
from idp.services import clients
from idp.services import sessions
from idp.services import tokens
from idp.services import users
from idp.tenancy import add_tenant_to_urls
from idp.tenancy import issuer_for
from idp.tenancy import resolve_tenant

bp = Blueprint("oidc", __name__, url_prefix="/<tenant>")
bp.url_value_preprocessor(resolve_tenant)
bp.url_defaults(add_tenant_to_urls)

# RFC 8414 §3.1 puts the well-known segment before the issuer's path, outside ``/<tenant>``.
well_known = Blueprint("oidc_well_known", __name__)
well_known.url_value_preprocessor(resolve_tenant)


def _constant(body, etag, content_type="application/json"):
    """Precomputed bytes with an ETag; a matching If-None-Match gets 304."""
    response = Response(body, content_type=content_type)
    response.set_etag(etag)
    response.headers.extend(DOCUMENT_HEADERS)
    return response.make_conditional(request)


@bp.get("/.well-known/openid-configuration")
def discovery():
    """OpenID Connect Discovery 1.0 §4."""
    return _constant(*metadata_bytes(issuer_for(g.tenant), tokens.keyring()))


@bp.get("/.well-known/oauth-authorization-server")
def oauth_metadata():
    """RFC 8414 metadata (also served at the RFC's path-inserted location)."""
    return discovery()


@well_known.get("/.well-known/oauth-authorization-server/<tenant>")
def oauth_metadata_path_inserted():
    """RFC 8414 §3.1: where RFC 8414 clients (openid-client's ``oauth2`` discovery) look."""
    return discovery()


@bp.get("/jwks")
def jwks():
    """The published keys: next, active and retired (RFC 7517)."""
    ring = tokens.keyring()
    return _constant(ring.jwks_bytes, ring.jwks_etag, "application/jwk-set+json")


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt
@one_transaction
def authorize():
    """The authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2)."""
    return authz.handle_authorization(authz.request_pairs())


@bp.get("/authorize/resume")
@one_transaction
def resume():
    """Where the journey sends the browser once the user has acted."""
    return authz.resume()


@bp.route("/consent", methods=["GET", "POST"])
@one_transaction
def consent():
    """Ask a third-party client's user to allow the requested scopes."""
    transaction = tx.load_transaction(g.tenant)
    params = dict(reversed(tx.stored_params(transaction)))
    use_ui_locales(params.get("ui_locales"))
    client = clients.query_client(g.tenant, params.get("client_id"))
    session = sessions.load_session(
        g.tenant, cookies.read_session_cookie(request), current_app.config
    )
    user = users.get_user(g.tenant, session.user_id) if session else None
    if client is None or user is None:
        raise JourneyExpired()
    scope = client.get_allowed_scope(params.get("scope", ""))
    if request.method == "POST":
        if request.form.get("decision") != "allow":
            return authz.deny(transaction)
        consent_store.remember_consent(g.tenant, user, client, scope)
        tx.update_transaction(transaction, consented=True)
        return authz.resume()
    scopes = [(s, consent_store.SCOPE_DESCRIPTIONS.get(s, s)) for s in scope.split()]
    return render_template("oidc/consent.html", client=client, user=user, scopes=scopes)


@bp.post("/token")
@csrf.exempt
def token():
    """The token endpoint (RFC 6749 §3.2); the usual request is served by the fast path."""
    return client_endpoints.answer_flask_request(client_endpoints.token_response)


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    """OIDC Core §5.3."""
    statements_without_transaction()
    return userinfo_response()


@bp.post("/revoke")
@csrf.exempt
def revoke():
    """RFC 7009."""
    return client_endpoints.answer_flask_request(client_endpoints.revocation_response)


@bp.post("/introspect")
@csrf.exempt
def introspect():
    """RFC 7662."""
    return client_endpoints.answer_flask_request(client_endpoints.introspection_response)


@bp.post("/register")
@csrf.exempt
def register():
    """RFC 7591 §3: dynamic client registration, gated by an initial access token."""
    return registration.create_registration_response(g.tenant, request)


@bp.route("/register/<client_id>", methods=["GET", "PUT", "DELETE"])
@csrf.exempt
def client_configuration(client_id):
    """RFC 7592 §2: the client configuration endpoint, behind the registration access token."""
    return registration.create_configuration_response(g.tenant, client_id, request)


@bp.route("/logout", methods=["GET", "POST"])
@csrf.exempt
def end_session():
    """RP-Initiated Logout 1.0 §2."""
    return logout.end_session_view()


@bp.post("/logout/confirm")
def end_session_confirm():
    """The user's answer on our logout confirmation page."""
    return logout.confirm_view()
