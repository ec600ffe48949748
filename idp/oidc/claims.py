"""Which user claims go where (OIDC Core §5.4, §5.5): only what the scope or ``claims`` asked."""

import json

SCOPE_CLAIMS = {
    "profile": ("name",),
    "email": ("email", "email_verified"),
}
SUPPORTED_CLAIMS = ("sub", "name", "email", "email_verified", "auth_time", "acr", "amr", "sid")


def claim_value(user, name):
    """The value of one user claim."""
    return {
        "name": user.name or None,
        "email": user.email,
        "email_verified": bool(user.email_verified),
    }.get(name)


def user_claims(user, scope, requested=None, include_scope_claims=True):
    """``sub`` plus the claims of the granted scopes and of the ``claims`` request member."""
    granted = (scope or "").split()
    names = []
    if include_scope_claims:
        for s in granted:
            names.extend(SCOPE_CLAIMS.get(s, ()))
    for name in requested or {}:
        if name in ("name", "email", "email_verified") and name not in names:
            names.append(name)
    result = {"sub": user.sub}
    for name in names:
        value = claim_value(user, name)
        if value is not None:
            result[name] = value
    return result


def parse_claims_parameter(raw):
    """The ``claims`` request parameter (OIDC Core §5.5) as a dict, or None if absent.

    Raises ValueError when it is not a JSON object of objects.
    """
    if raw in (None, ""):
        return None
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("claims must be a JSON object")
    for member in ("id_token", "userinfo"):
        if member in value and not isinstance(value[member], dict):
            raise ValueError(f"claims.{member} must be a JSON object")
    return {k: value[k] for k in ("id_token", "userinfo") if k in value}
