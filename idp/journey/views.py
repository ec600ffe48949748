"""The one view that advances the journey: load the transaction, run the current step, persist.

Every successful POST answers 303 (post/redirect/get), so a reload never re-submits: to
the same URL while a step is left, and straight back to the application (the code, or
consent) once the last step is done. A POST naming a step that is not the current one
is ignored and the current step is shown, so steps cannot be skipped or replayed. Each
request's writes are one database transaction (``one_transaction``).
"""

import re

from flask import Blueprint
from flask import current_app
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for

from idp.errors import JourneyExpired
from idp.extensions import one_transaction
from idp.i18n import use_ui_locales
from idp.journey import cookies
from idp.journey import plan
from idp.journey import transaction as tx
from idp.journey.outcomes import Challenge
from idp.journey.outcomes import Failure
from idp.journey.outcomes import Redirect
from idp.journey.outcomes import Success
from idp.oidc import authorize as authz
from idp.services import audit
from idp.services import sessions
from idp.services import users
from idp.tenancy import add_tenant_to_urls
from idp.tenancy import client_ip
from idp.tenancy import resolve_tenant

bp = Blueprint("journey", __name__, url_prefix="/<tenant>")
bp.url_value_preprocessor(resolve_tenant)
bp.url_defaults(add_tenant_to_urls)

ACR_BY_FACTORS = {1: "urn:idp:loa:1fa", 2: "urn:idp:loa:2fa"}


@bp.route("/login", methods=["GET", "POST"])
@one_transaction
def login():
    """Show the current step, or run it on POST."""
    transaction = tx.load_transaction(g.tenant)
    params = dict(reversed(tx.stored_params(transaction)))
    use_ui_locales(params.get("ui_locales"))
    user = _user(transaction.data)
    step = plan.current_step(transaction.data, user)
    if step is None:
        return _complete(transaction, user)
    if request.method == "POST" and request.form.get("step") == step.NAME:
        outcome = step.submit(g.tenant, transaction.data, request.form, user)
        tx.update_transaction(transaction, **outcome.facts)
        if isinstance(outcome, Success):
            return _after_success(transaction)
        if isinstance(outcome, Redirect):
            return redirect(outcome.location, code=303)
        if isinstance(outcome, Failure):
            _audit_failure(transaction, outcome.code)
            page = render_template("journey/failure.html", failure=outcome)
            return page, 403
        if outcome.status >= 400:
            _audit_failure(transaction, step.NAME)
        return _render(step, transaction, params, user, outcome), outcome.status
    automatic = getattr(step, "auto", None)
    outcome = automatic(g.tenant, transaction.data, params) if automatic else None
    if outcome is not None:
        tx.update_transaction(transaction, **outcome.facts)
        target = outcome.location if isinstance(outcome, Redirect) else url_for("journey.login")
        return redirect(target, code=303)
    _prepare(step, transaction, user)
    return _render(step, transaction, params, user, Challenge())


@bp.get("/login/admin")
@one_transaction
def admin_login():
    """The admin back door (Flexopus): administrators sign in with password and authenticator,
    whatever the routing — it works when SSO is broken or passwords are switched off.

    Reached from a pending sign-in (the application sent the browser here first); it
    changes only this transaction, never how ordinary users are routed.
    """
    transaction = tx.load_transaction(g.tenant)
    keep = {k: transaction.data.get(k) for k in ("reason", "prompt", "signed_in")}
    transaction.data = {**keep, "flow": "admin", "account_chosen": True}
    tx.update_transaction(transaction)
    audit.record(g.tenant, "admin_backdoor.opened", ip=client_ip())
    return redirect(url_for("journey.login"), code=303)


@bp.post("/login/restart")
@one_transaction
def restart():
    """ "Use another account": forget the email and everything proven; keep the request."""
    transaction = tx.load_transaction(g.tenant)
    keep = ("reason", "prompt", "signed_in", "account_chosen")
    flow = {"flow": "admin"} if transaction.data.get("flow") == "admin" else {}
    transaction.data = {**{k: transaction.data.get(k) for k in keep}, **flow}
    tx.update_transaction(transaction)
    return redirect(url_for("journey.login"), code=303)


def _after_success(transaction):
    """The next step's page, by a 303 to this view; or, when no step is left, the end of
    the sign-in in this same request (saving the browser two more round trips)."""
    user = _user(transaction.data)
    if plan.current_step(transaction.data, user) is None:
        return _complete(transaction, user)
    return redirect(url_for("journey.login"), code=303)


def _user(data):
    return users.get_user(g.tenant, data["user_id"]) if data.get("user_id") else None


def _prepare(step, transaction, user):
    prepare = getattr(step, "prepare", None)
    facts = prepare(g.tenant, transaction.data, user) if prepare else None
    if facts:
        tx.update_transaction(transaction, **facts)


def _render(step, transaction, params, user, outcome):
    position, total = plan.progress(transaction.data, user)
    return render_template(
        step.TEMPLATE,
        step=step.NAME,
        errors=outcome.errors,
        message=outcome.message,
        notice=outcome.status < 400,
        code=outcome.code,
        position=position,
        total=total,
        **step.context(g.tenant, transaction.data, params, user),
    )


def _complete(transaction, user):
    """Every step is done: a fresh SSO session (new id), then the authorization request
    carries on in this request, with that session (its cookie goes out with the answer)."""
    data = transaction.data
    config = current_app.config
    old = sessions.load_session(g.tenant, cookies.read_session_cookie(request), config)
    if data.get("reuse_session") and old is not None and user and old.user_id == user.id:
        tx.update_transaction(transaction, login={"sid": old.id, "auth_time": old.auth_time})
        return authz.resume(transaction, login=(old, user))
    if not plan.complete(data, user):
        raise JourneyExpired()
    if old is not None:
        sessions.end_session(old)
    amr = data.get("amr") or ["pwd"]
    acr = ACR_BY_FACTORS[2 if "mfa" in amr else 1]
    session, secret = sessions.create_session(g.tenant, user, amr, acr, config)
    tx.update_transaction(transaction, login={"sid": session.id, "auth_time": session.auth_time})
    audit.record(
        g.tenant,
        "login.success",
        user_id=user.id,
        ip=client_ip(),
        amr=amr,
        admin_backdoor=data.get("flow") == "admin",
    )
    response = authz.resume(transaction, login=(session, user))
    cookies.set_session_cookie(response, g.tenant, secret)
    return response


def _audit_failure(transaction, reason):
    audit.record(
        g.tenant,
        "login.failure",
        ip=client_ip(),
        email=transaction.data.get("email"),
        reason=reason,
        user_id=transaction.data.get("user_id"),
    )


BRAND_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


@bp.get("/branding.css")
def branding():
    """The tenant's colour as a stylesheet: pages carry no inline style (strict CSP)."""
    color = g.tenant.settings.get("brand_color") or ""
    css = f":root {{ --brand: {color}; }}\n" if BRAND_COLOR.match(color) else ""
    response = current_app.response_class(css, content_type="text/css")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
