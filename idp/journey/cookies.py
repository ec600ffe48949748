"""Browser cookies of a tenant: the SSO session secret and the signed transaction id.

Both are scoped to the tenant's path, HttpOnly, and hold only opaque random values.
Over https they are ``SameSite=None; Secure`` so a relying party's form_post or
cross-site POST to /authorize still finds the session; over plain http (local
development) browsers refuse that, so they fall back to ``Lax``.
"""

from flask import current_app
from itsdangerous import BadSignature
from itsdangerous import URLSafeSerializer

SESSION_COOKIE = "idp_session"
TX_COOKIE = "idp_tx"


def _path(tenant):
    return f"/{tenant.slug}/"


def _flags():
    secure = current_app.config["PUBLIC_URL"].startswith("https://")
    return {"httponly": True, "secure": secure, "samesite": "None" if secure else "Lax"}


def _signer():
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="idp.login-transaction")


def set_session_cookie(response, tenant, secret):
    """Point this browser at a new SSO session."""
    response.set_cookie(SESSION_COOKIE, secret, path=_path(tenant), **_flags())


def read_session_cookie(request):
    """The SSO session secret this browser holds, if any."""
    return request.cookies.get(SESSION_COOKIE)


def clear_session_cookie(response, tenant):
    """Forget the SSO session in this browser."""
    response.delete_cookie(SESSION_COOKIE, path=_path(tenant), **_flags())


def set_tx_cookie(response, tenant, raw_id):
    """Bind a login transaction to this browser."""
    max_age = current_app.config["LOGIN_TX_TTL"]
    response.set_cookie(
        TX_COOKIE, _signer().dumps(raw_id), path=_path(tenant), max_age=max_age, **_flags()
    )


def read_tx_cookie(request):
    """The raw transaction id from a validly signed cookie, else None."""
    value = request.cookies.get(TX_COOKIE)
    if not value:
        return None
    try:
        raw = _signer().loads(value)
    except BadSignature:
        return None
    return raw if isinstance(raw, str) else None


def clear_tx_cookie(response, tenant):
    """Forget the transaction in this browser."""
    response.delete_cookie(TX_COOKIE, path=_path(tenant), **_flags())
