"""Domain exceptions and the one place that turns them into pages or OAuth errors.

The public description stays apart from internal detail: a handler never shows a
stack trace, and API endpoints (token, userinfo, …) always answer JSON.
"""

import logging
import re

from flask import g
from flask import jsonify
from flask import render_template
from flask import request
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import PendingRollbackError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from idp.extensions import db

log = logging.getLogger("idp.errors")

# Endpoints whose callers are programs: they get RFC 6749 §5.2 style JSON errors.
API_ENDPOINTS = {
    "oidc.token",
    "oidc.userinfo",
    "oidc.revoke",
    "oidc.introspect",
    "oidc.register",
    "oidc.client_configuration",
    "oidc.jwks",
    "oidc.discovery",
    "oidc.oauth_metadata",
}


class IdpError(Exception):
    """Base of the domain errors: ``title`` and ``message`` are safe to show."""

    status_code = 400
    title = _l("Something went wrong")
    message = _l("Please start again from the application you came from.")

    def __init__(self, message=None):
        super().__init__(message or self.message)
        if message:
            self.message = message


class UnknownTenant(IdpError):
    """The first path segment names no tenant."""

    status_code = 404
    title = _l("Sign-in page not found")
    message = _l("This address does not belong to any organisation. Check the URL you were given.")


class ValidationFailed(IdpError):
    """Input that breaks a rule; ``error`` is the OAuth error code when one applies."""

    def __init__(self, message, error="invalid_request"):
        super().__init__(message)
        self.error = error


class InvalidAuthorizationRequest(IdpError):
    """A request we must not redirect for (unknown client, unregistered redirect URI)."""

    title = _l("The application sent an invalid sign-in request")

    def __init__(self, error, description):
        super().__init__(description)
        self.error = error


class JourneyExpired(IdpError):
    """The login transaction is unknown, expired, or belongs to another browser."""

    title = _l("Your sign-in has expired")
    message = _l(
        "For your security, sign-in requests expire. Please start again from the application."
    )


API_PATH = re.compile(
    r"^(/\.well-known/.*"
    r"|/[^/]+/(token|userinfo|revoke|introspect|jwks|register(/.*)?|\.well-known/.*))$"
)


def wants_json():
    """True for program-facing endpoints, which never get HTML (also on 404/405 routing errors)."""
    return request.endpoint in API_ENDPOINTS or bool(API_PATH.match(request.path))


def render_error(status, title, message, error=None):
    """A friendly error page, or JSON for program-facing endpoints.

    Programs get the English text: RFC 6749 §5.2 keeps ``error_description`` to ASCII.
    """
    if wants_json():
        with force_locale("en"):
            message = str(message)
        body = {"error": error or "invalid_request", "error_description": message}
        response = jsonify(body)
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        return response
    page = render_template("errors/error.html", title=title, message=message, error=error)
    return page, status


def register_error_handlers(app):
    """Bind every handler; called once from ``create_app``."""

    @app.errorhandler(IdpError)
    def handle_idp_error(exc):
        return render_error(exc.status_code, exc.title, exc.message, getattr(exc, "error", None))

    @app.errorhandler(CSRFError)
    def handle_csrf(exc):
        return render_error(
            400,
            _l("This form has expired"),
            _l("The page was open too long or was sent twice. Go back, reload it and try again."),
            "csrf",
        )

    @app.errorhandler(OperationalError)  # refused, dropped or restarting server
    @app.errorhandler(InterfaceError)  # a connection found closed
    @app.errorhandler(PendingRollbackError)  # a session still holding a failed transaction
    @app.errorhandler(PoolTimeoutError)  # no pooled connection came free in time
    def handle_database_down(exc):
        log.error("database unavailable: %s", exc.__class__.__name__)
        _forget_database_state()
        return render_error(
            503,
            _l("Temporarily unavailable"),
            _l("The service is briefly unavailable. Please try again in a moment."),
            "temporarily_unavailable",
        )

    @app.errorhandler(HTTPException)
    def handle_http(exc):
        if exc.code == 429:
            return render_error(
                429,
                _l("Too many attempts"),
                _l("Please wait a moment and try again."),
                "slow_down",
            )
        return render_error(
            exc.code, exc.name, exc.description or exc.name, _http_error_code(exc.code)
        )

    @app.errorhandler(Exception)
    def handle_unexpected(exc):
        log.exception("unhandled error")
        return render_error(
            500,
            _l("Something went wrong"),
            _l("An unexpected error occurred. Please try again."),
            "server_error",
        )


def _forget_database_state():
    """Roll back the failed transaction and take the tenant off the error page: its branding
    would be reloaded from the database that just failed, turning the 503 into a 500."""
    try:
        db.session.rollback()
    except SQLAlchemyError:  # the connection is gone; teardown discards the session anyway
        log.warning("rollback after a database error failed")
    g.pop("tenant", None)


def _http_error_code(status):
    return {404: "not_found", 405: "invalid_request", 413: "invalid_request"}.get(
        status, "invalid_request"
    )
