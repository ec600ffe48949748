"""The hottest, simplest requests answered in front of Flask.

Discovery and JWKS come straight from precomputed bytes (``ConstantDocuments``); the
usual userinfo request, a ``GET`` with a bearer header, from one indexed read
(``BearerUserInfo``); a client's ``POST`` to the token, introspection or revocation
endpoint from the same Authlib server as Flask's view, with an app context only
(``ClientEndpoints``). Anything else goes on to Flask unchanged.

Both documents are constant between key rotations, and relying parties fetch them
often; routing them through Flask (request context, URL map, tenant query, after-
request hooks) costs ten times the work of the answer itself. This WSGI layer
answers them from bytes with an ETag (and 304 for a matching ``If-None-Match``),
with the same security headers as every other response. Anything else — and any
slug not known to be a tenant — goes on to Flask unchanged.

Tenant existence comes from the per-process tenant cache every request uses
(``tenants.tenant_for_request``, ``IDP_TENANT_CACHE_TTL``), so a deleted tenant's public
metadata may still be served that long; nothing else depends on it.
"""

import json
import logging
import re
from http import HTTPStatus
from urllib.parse import parse_qsl

from werkzeug.datastructures import EnvironHeaders
from werkzeug.datastructures import ImmutableMultiDict

from idp.oidc.discovery import DOCUMENT_HEADERS
from idp.oidc.discovery import metadata_bytes
from idp.services.keys import load_keyring

DISCOVERY = re.compile(
    r"^/(?:\.well-known/oauth-authorization-server/(?P<a>[a-z0-9-]{2,63})"
    r"|(?P<b>[a-z0-9-]{2,63})/\.well-known/(?:openid-configuration|oauth-authorization-server))$"
)
JWKS = re.compile(r"^/(?P<slug>[a-z0-9-]{2,63})/jwks$")
USERINFO = re.compile(r"^/(?P<slug>[a-z0-9-]{2,63})/userinfo$")
CLIENT_ENDPOINT = re.compile(r"^/(?P<slug>[a-z0-9-]{2,63})/(?P<name>token|introspect|revoke)$")

# The answer to a bug on a fast path: what Flask's handler says (``errors.handle_unexpected``)
# to a JSON client, and a log line; never the exception's text.
SERVER_ERROR = {
    "error": "server_error",
    "error_description": "An unexpected error occurred. Please try again.",
}


class ConstantDocuments:
    """WSGI middleware serving discovery and JWKS for known tenants."""

    def __init__(self, wsgi_app, flask_app):
        from idp.web import security_headers

        self.wsgi_app = wsgi_app
        self.flask_app = flask_app
        self.config = flask_app.config  # read per request: tests and tools may change it
        # Once, as web.install_security_headers does for Flask's answers: theirs (discovery's
        # caching and CORS), then the security headers (HSTS when the public URL is HTTPS).
        own = {name for name, _ in DOCUMENT_HEADERS}
        rest = (h for h in security_headers(flask_app.config["PUBLIC_URL"]) if h[0] not in own)
        self.static_headers = DOCUMENT_HEADERS + tuple(rest)

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.wsgi_app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        match = DISCOVERY.match(path)
        kind = "discovery"
        if match is None:
            match, kind = JWKS.match(path), "jwks"
        if match is None:
            return self.wsgi_app(environ, start_response)
        slug = next(group for group in match.groups() if group)
        if not self._is_tenant(slug):
            return self.wsgi_app(environ, start_response)
        ring = load_keyring(self.config["KEYS_DIR"])
        if kind == "jwks":
            body, etag, content_type = ring.jwks_bytes, ring.jwks_etag, "application/jwk-set+json"
        else:
            body, etag = metadata_bytes(f"{self.config['PUBLIC_URL']}/{slug}", ring)
            content_type = "application/json"
        return self._answer(environ, start_response, body, etag, content_type)

    def _answer(self, environ, start_response, body, etag, content_type):
        quoted = f'"{etag}"'
        headers = [("ETag", quoted), *self.static_headers]
        if quoted in environ.get("HTTP_IF_NONE_MATCH", ""):
            start_response("304 Not Modified", headers)
            return [b""]
        headers += [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [b"" if environ["REQUEST_METHOD"] == "HEAD" else body]

    def _is_tenant(self, slug):
        """Known to the tenant cache; unknown slugs always ask Flask (and the DB)."""
        from sqlalchemy.exc import SQLAlchemyError

        from idp.services import tenants

        if tenants.kept_tenant(self.flask_app, slug) is not None:
            return True  # the usual case: no app context to push
        try:
            with self.flask_app.app_context():
                return tenants.tenant_for_request(slug) is not None
        except SQLAlchemyError:
            # Out here no error handler runs: an exception would be gunicorn's bare 500.
            # Flask asks the database again and answers 503 temporarily_unavailable.
            return False


class BearerUserInfo:
    """WSGI middleware answering ``GET /{tenant}/userinfo`` with a bearer header.

    Through Flask this request cost twice the work of its answer: the request context, URL
    map, hooks and an ORM session around one JWT check and one indexed read. Here the same
    ``userinfo.userinfo_answer`` runs inside an app context only, on an autocommit
    connection (one round trip; none for a token ``services.token_cache`` keeps), and the
    answer gets ``web.security_headers``. A query string, a form body, a missing header or
    a tenant this process does not keep go to Flask, which handles every form of the
    request (and refuses a token in the query).
    A database fault propagates to ``web.DatabaseOutageGuard`` (503).
    """

    def __init__(self, wsgi_app, flask_app):
        from idp.web import security_headers

        self.wsgi_app = wsgi_app
        self.flask_app = flask_app
        # Once, as web.install_security_headers does for Flask's answers.
        self.security_headers = security_headers(flask_app.config["PUBLIC_URL"])

    def __call__(self, environ, start_response):
        from idp.oidc.userinfo import bearer_token
        from idp.services import tenants

        if environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING"):
            return self.wsgi_app(environ, start_response)
        match = USERINFO.match(environ.get("PATH_INFO", ""))
        value = bearer_token(environ.get("HTTP_AUTHORIZATION", ""))
        if match is None or value is None:
            return self.wsgi_app(environ, start_response)
        tenant = tenants.kept_tenant(self.flask_app, match.group("slug"))
        if tenant is None:
            return self.wsgi_app(environ, start_response)
        return self._answer(start_response, tenant, value)

    def _answer(self, start_response, tenant, value):
        from psycopg import Error as PsycopgError
        from sqlalchemy.exc import SQLAlchemyError

        from idp.extensions import autocommit_reads
        from idp.oidc.userinfo import userinfo_answer

        with self.flask_app.app_context():
            try:
                with autocommit_reads() as connect:
                    status, body, headers = userinfo_answer(tenant, value, connect)
            except (SQLAlchemyError, PsycopgError):
                raise
            except Exception:
                logging.getLogger("idp.errors").exception("unhandled error")
                status, headers, body = 500, (("Cache-Control", "no-store"),), SERVER_ERROR
        payload = json.dumps(body, separators=(",", ":")).encode()
        return json_answer(start_response, status, headers, payload, self.security_headers)


class ClientEndpoints:
    """WSGI middleware answering a client's ``POST`` to ``/{tenant}/token``, ``/introspect``
    and ``/revoke``.

    Flask's request context, URL map, hooks and error handlers were a fifth of a
    client-credentials token's time (13 % of its Python calls), and Werkzeug's form parsing
    and ``Response`` a quarter of what introspection had left. These endpoints need none
    of them: no cookies, no CSRF (clients authenticate themselves), no rate limit, no
    templates. Here the same functions Flask's views call (``oidc.client_endpoints``) run
    on Authlib's request made from the environ and the body (``server.FormRequest``), in
    an app context marked as serving a request (``extensions.serving_request``), with
    ``g.tenant`` from the tenant cache; their ``server.Answer`` is written as it is, with
    ``web.security_headers``. The body is parsed as Werkzeug parses a form
    (``parse_qsl``, blank values kept; a body that is not UTF-8 is an empty form).

    A query string (Flask's ``request.values`` would merge it into the parameters), a
    body that is not ``application/x-www-form-urlencoded``, without ``Content-Length``
    or above ``MAX_BODY``, and a tenant this process does not keep go to Flask. A
    database fault propagates to ``web.DatabaseOutageGuard`` (503).
    """

    MAX_BODY = 64 * 1024  # far above any token request; larger ones meet Flask's limits
    FORM = "application/x-www-form-urlencoded"

    def __init__(self, wsgi_app, flask_app):
        from idp.oidc import client_endpoints
        from idp.web import security_headers

        self.wsgi_app = wsgi_app
        self.flask_app = flask_app
        self.security_headers = security_headers(flask_app.config["PUBLIC_URL"])
        self.answers = {
            "token": client_endpoints.token_response,
            "introspect": client_endpoints.introspection_response,
            "revoke": client_endpoints.revocation_response,
        }

    def __call__(self, environ, start_response):
        from idp.services import tenants

        if environ.get("REQUEST_METHOD") != "POST" or environ.get("QUERY_STRING"):
            return self.wsgi_app(environ, start_response)
        match = CLIENT_ENDPOINT.match(environ.get("PATH_INFO", ""))
        length = environ.get("CONTENT_LENGTH") or ""
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if (
            match is None
            or mimetype != self.FORM
            or not length.isdecimal()
            or int(length) > self.MAX_BODY
        ):
            return self.wsgi_app(environ, start_response)
        tenant = tenants.kept_tenant(self.flask_app, match.group("slug"))
        if tenant is None:
            return self.wsgi_app(environ, start_response)
        status, headers, body = self._answer(
            environ, tenant, self.answers[match.group("name")], int(length)
        )
        return json_answer(start_response, status, headers, body, self.security_headers)

    def _answer(self, environ, tenant, answer, length):
        from flask import g
        from psycopg import Error as PsycopgError
        from sqlalchemy.exc import SQLAlchemyError

        from idp.oidc.server import FormRequest
        from idp.tenancy import public_url

        with self.flask_app.app_context():
            g.tenant = tenant
            g._serving_request = True
            url = public_url(environ["PATH_INFO"])  # no query string here
            request = FormRequest("POST", url, EnvironHeaders(environ), _form(environ, length))
            try:
                answer = answer(request)
            except (SQLAlchemyError, PsycopgError):
                raise
            except Exception:
                logging.getLogger("idp.errors").exception("unhandled error")
                return 500, (("Cache-Control", "no-store"),), json.dumps(SERVER_ERROR).encode()
        return answer.status_code, answer.headers, answer.body


def _form(environ, length):
    """The body's parameters, as Werkzeug's form parser gives them."""
    body = environ["wsgi.input"].read(length) if length else b""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return ImmutableMultiDict()  # Werkzeug's parser too: an empty form
    return ImmutableMultiDict(parse_qsl(text, keep_blank_values=True, errors="replace"))


def json_answer(start_response, status, headers, body, security_headers):
    """Write a JSON answer: ``headers`` (the endpoint's own), then ``security_headers``
    that the endpoint did not set, as ``web.add_security_headers`` does for Flask's."""
    given = {name.lower() for name, _ in headers}
    written = [("Content-Length", str(len(body))), *headers]
    if "content-type" not in given:
        written.append(("Content-Type", "application/json"))
    written += [(name, value) for name, value in security_headers if name.lower() not in given]
    start_response(f"{status} {HTTPStatus(status).phrase}", written)
    return [body]
