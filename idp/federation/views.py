"""Leaving for an upstream and coming back: ``/login/sso/<alias>`` and one callback per upstream.

The callback URL names the upstream (RFC 9700 §4.4.2, mix-up defence): a response
delivered to another upstream's callback fails the state check of that attempt.
Failures are shown with the Flexopus message for their code, and written to the
audit log with their cause for the tenant's administrators.
"""

from flask import Blueprint
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for

from idp.extensions import db
from idp.federation import linking
from idp.federation import registry
from idp.federation import upstream_client
from idp.federation.upstream_client import FederationError
from idp.journey import messages
from idp.journey import transaction as tx
from idp.services import accounts
from idp.services import audit
from idp.tenancy import add_tenant_to_urls
from idp.tenancy import client_ip
from idp.tenancy import endpoint_url
from idp.tenancy import resolve_tenant

bp = Blueprint("federation", __name__, url_prefix="/<tenant>")
bp.url_value_preprocessor(resolve_tenant)
bp.url_defaults(add_tenant_to_urls)


def callback_url(alias, tenant=None):
    """This upstream's own redirect URI under the tenant's issuer, to register at the upstream."""
    return endpoint_url(tenant or g.tenant, f"federation/{alias}/callback")


def _fail(transaction, failure, upstream, cause):
    audit.record(
        g.tenant,
        "federation.failure",
        ip=client_ip(),
        code=failure.code,
        upstream=upstream.alias if upstream else None,
        cause=cause,
        email=transaction.data.get("email") if transaction else None,
    )
    return render_template("journey/failure.html", failure=failure), 403


@bp.get("/login/sso/<alias>")
def start(alias):
    """Send the browser to the upstream, remembering state, nonce and PKCE in the transaction."""
    transaction = tx.load_transaction(g.tenant)
    upstream = registry.find(g.tenant, alias)
    if (
        upstream is None
        or not upstream.enabled
        or alias not in transaction.data.get("upstreams", [])
    ):
        return _fail(
            transaction,
            messages.federation_failure("sso_misconfigured"),
            upstream,
            f"upstream {alias!r} is not offered to this sign-in",
        )
    db.session.commit()  # release the connection: the upstream may be slow to answer
    try:
        location, attempt = upstream_client.begin(
            upstream, callback_url(alias), login_hint=transaction.data.get("email")
        )
    except FederationError as exc:
        return _fail(transaction, messages.federation_failure(exc.code), upstream, exc.cause)
    tx.update_transaction(transaction, fed_attempt=attempt)
    return redirect(location, code=303)


@bp.get("/federation/<alias>/callback")
def callback(alias):
    """Check the answer, find or link the user, then let the journey continue."""
    transaction = tx.load_transaction(g.tenant)
    upstream = registry.find(g.tenant, alias)
    attempt = transaction.data.get("fed_attempt")
    tx.update_transaction(transaction, fed_attempt=None)  # single use, whatever happens next
    if upstream is None:
        return _fail(
            transaction,
            messages.federation_failure("invalid_callback"),
            None,
            f"callback for unknown upstream {alias!r}",
        )
    try:
        identity = upstream_client.finish(upstream, attempt, request.args, callback_url(alias))
        user = linking.resolve(g.tenant, upstream, identity)
    except FederationError as exc:
        code = "invalid_callback" if exc.code == "wrong_callback" else exc.code
        return _fail(transaction, messages.federation_failure(code), upstream, exc.cause)
    except linking.LinkRefused as exc:
        failure = (
            messages.wrong_sso(exc.right_upstream.display_name)
            if exc.code == "wrong_sso"
            else messages.failure_for(exc.code)
        )
        return _fail(transaction, failure, upstream, exc.detail)
    problem = accounts.problem(user)
    if problem:
        return _fail(transaction, messages.failure_for(problem), upstream, problem)
    asserted_mfa = "mfa" in identity.amr or len(set(identity.amr) - {"fed"}) > 1
    amr = ["fed", "mfa"] if asserted_mfa and upstream.trust_mfa else ["fed"]
    tx.update_transaction(
        transaction,
        fed_ok=True,
        user_id=user.id,
        amr=amr,
        email=user.email,
        mfa_trusted=upstream.trust_mfa,
        upstream=upstream.alias,
    )
    audit.record(g.tenant, "federation.success", user_id=user.id, upstream=upstream.alias)
    return redirect(url_for("journey.login"), code=303)
