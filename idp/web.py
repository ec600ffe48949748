"""Cross-cutting web concerns: security headers on every response, health and readiness."""

import functools
import logging

from flask import Blueprint
from flask import jsonify
from flask import request
from sqlalchemy import text

from idp.extensions import db

bp = Blueprint("web", __name__)

# No ``form-action``: Chrome applies it to every redirect after a form, and a sign-in ends
# in a redirect chain to the relying party — through other tenants of this idp, or other
# identity providers, whose destinations no page here can know. (Keycloak sets none
# either.) Forms are only ever rendered by our own templates, escaped, with no user HTML.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def security_headers(public_url):
    """The headers every answer carries unless it set its own: CSP without inline script or
    style, no framing, no referrer, no caching; HSTS when served over HTTPS."""
    headers = [
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Cache-Control", "no-store"),
    ]
    if public_url.startswith("https://"):
        headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    return tuple(headers)


def add_security_headers(response, defaults):
    """``defaults`` (``security_headers``) on a response, but for those it set itself.

    One pass over the response's headers, not one per default (``Headers.setdefault``
    scans the whole list, lower-casing every name, each time).
    """
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}
    headers.extend([(name, value) for name, value in defaults if name.lower() not in present])
    return response


def install_security_headers(app):
    """``security_headers`` on every Flask response (the fast paths add their own)."""
    defaults = security_headers(app.config["PUBLIC_URL"])

    @app.after_request
    def add_headers(response):
        return add_security_headers(response, defaults)


# Per-IP limits on every endpoint where something can be guessed or flooded; the
# per-account ladders live in ``idp.services.throttle``. A blueprint's limit is
# checked before any other work (CSRF included); an endpoint's when its view runs.
BLUEPRINT_LIMITS = {"journey": ("60/minute", ["POST"])}
ENDPOINT_LIMITS = {
    "oidc.end_session_confirm": ("30/minute", ["POST"]),
    "oidc.consent": ("30/minute", ["POST"]),
    "oidc.register": ("30/minute", ["POST"]),
    "oidc.client_configuration": ("60/minute", None),
}


def create_limiter(app):
    """A Flask-Limiter of this app's own (memory, or Redis shared by every node)."""
    from flask_limiter import Limiter

    from idp.tenancy import client_ip

    # With Redis down, Flask-Limiter would raise on every limited request (a 500). Instead
    # the per-IP limits go on in this process's memory (logged once: "Rate limit storage
    # unreachable"), and go back to Redis when it answers; the guessable steps fail closed
    # on their own in ``idp.services.throttle``.
    limiter = Limiter(
        key_func=client_ip,
        app=app,
        default_limits=[],
        headers_enabled=True,
        storage_uri=app.config["RATELIMIT_STORAGE_URI"],
        in_memory_fallback_enabled=True,
    )
    app.extensions["idp.limiter"] = limiter  # Flask-Limiter itself keeps only a weak reference
    return limiter


def apply_rate_limits(app, limiter):
    """Attach the limits above to the registered blueprints and views."""
    for name, (limit, methods) in BLUEPRINT_LIMITS.items():
        limiter.limit(limit, methods=methods)(app.blueprints[name])
    for endpoint, (limit, methods) in ENDPOINT_LIMITS.items():
        view = app.view_functions.get(endpoint)
        if view is not None:
            app.view_functions[endpoint] = limiter.limit(limit, methods=methods)(view)
    _run_limiter_only_where_limited(app, limiter)


def _run_limiter_only_where_limited(app, limiter):
    """Flask-Limiter's request hooks, for the requests the limits above can apply to.

    It hooks every request of the app (before: resolve and check limits; after: rate-limit
    headers; teardown: reset), and that costs even where no limit applies — 8 % of a
    userinfo request, and the token, userinfo and introspection endpoints are the most
    called, with unguessable credentials. Their hooks are wrapped to run only for the
    blueprints and endpoints named above, with the methods their limits name; everything
    else skips them (the sign-in pages' GETs among them: only their POSTs are limited).
    """

    def limited():
        limits = BLUEPRINT_LIMITS.get(request.blueprint), ENDPOINT_LIMITS.get(request.endpoint)
        for limit in limits:
            if limit is not None and (limit[1] is None or request.method in limit[1]):
                return True
        return False  # not limited, or not for this method (the sign-in pages' GETs)

    def gated(hook, passes_response):
        @functools.wraps(hook)
        def run(*args):
            if limited():
                return hook(*args)
            return args[0] if passes_response else None

        return run

    def belongs_to_limiter(hook):
        if getattr(hook, "__self__", None) is limiter:
            return True
        return isinstance(hook, functools.partial) and limiter in hook.args

    hooks = (
        (app.before_request_funcs, False),
        (app.after_request_funcs, True),
        (app.teardown_request_funcs, False),
    )
    found = 0
    for registry, passes_response in hooks:
        funcs = registry.get(None, [])
        found += sum(belongs_to_limiter(f) for f in funcs)
        registry[None] = [gated(f, passes_response) if belongs_to_limiter(f) else f for f in funcs]
    if found != 3:  # a Flask-Limiter release that hooks in differently: hooks not found run
        # on every request, as before; say so, since the saving is then (partly) gone
        logging.getLogger("idp.web").warning("Flask-Limiter's request hooks: %d of 3 found", found)


def discard_broken_sessions(app):
    """Close the request's database session without letting a dead connection raise.

    Closing a session rolls its transaction back; when PostgreSQL restarted mid-request that
    rollback fails, and Flask-SQLAlchemy's own teardown would raise it after the answer was
    ready. The session is invalidated instead (its connections are dropped, not returned to
    the pool), so the answer goes out and the next request starts on a fresh connection.
    Registered after ``db.init_app``: Flask runs teardowns in reverse, so this one goes first.
    """
    from psycopg import Error as PsycopgError
    from sqlalchemy.exc import SQLAlchemyError

    @app.teardown_appcontext
    def remove_session(exc):
        try:
            db.session.remove()
        except (SQLAlchemyError, PsycopgError) as error:
            logging.getLogger("idp.errors").warning(
                "discarding a session whose connection failed: %s", error.__class__.__name__
            )
            try:
                db.session.registry().invalidate()
            except (SQLAlchemyError, PsycopgError):
                pass
            db.session.registry.clear()


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Readiness: the database answers."""
    db.session.execute(text("SELECT 1"))
    return jsonify(status="ready")


class DatabaseOutageGuard:
    """Outermost WSGI layer: a database fault that escapes Flask (in a teardown, or in an
    error handler that needed the database itself) is a 503, never a bare 500.

    Flask's own handlers answer most outages (``idp.errors``); this catches what happens
    after them — closing a session on a connection the restart killed, for instance. Such a
    fault can come *after* the inner app called ``start_response`` (Flask tears the request
    down once the response is ready), so the guard holds the inner status and headers back
    until the inner app has returned: otherwise the 503 body would go out under the first
    answer's ``Content-Length`` and the client would see a truncated, corrupt response.
    """

    BODY = (
        b'{"error":"temporarily_unavailable",'
        b'"error_description":"The service is briefly unavailable."}'
    )

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        from psycopg import Error as PsycopgError
        from sqlalchemy.exc import SQLAlchemyError

        held = []
        written = []
        returned = False

        def hold(status, headers, exc_info=None):
            if returned:  # an app that starts its answer lazily, from its iterable
                return start_response(status, headers, exc_info)
            held[:] = [status, headers, exc_info]
            return written.append  # the legacy write() callable: kept, sent after the headers

        try:
            result = self.wsgi_app(environ, hold)
        except (SQLAlchemyError, PsycopgError) as exc:
            logging.getLogger("idp.errors").error(
                "database unavailable outside a handler: %s", exc.__class__.__name__
            )
            headers = [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(self.BODY))),
                ("Cache-Control", "no-store"),
                ("Retry-After", "5"),
            ]
            start_response("503 Service Unavailable", headers)
            return [self.BODY]
        returned = True
        if held:
            start_response(*held)
        if not written:
            return result
        return _prepended(written, result)


def _prepended(chunks, result):
    """The bytes given to ``write()`` first, then the app's iterable (closed afterwards)."""
    try:
        yield from chunks
        yield from result
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
