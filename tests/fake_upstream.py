"""A misbehaving OpenID provider for federation tests: every answer can be corrupted on purpose.

:class:`FakeUpstream` is a werkzeug app on ``127.0.0.1:0`` in a thread. It serves
discovery, JWKS, an authorization endpoint with no login page (it answers the given
``redirect_uri`` at once with ``code``, ``state`` and ``iss``, remembering the nonce and
``code_challenge``), a token endpoint that checks the client's secret, the code, the
redirect URI and PKCE like a real OP before returning an RS256 ID token signed with its
own key (joserfc), and userinfo.

Its behaviour is switched per test with faults, keyword arguments of the constructor
(or ``fake.faults[...] = ...`` later):

``issuer``
    the discovery document's ``issuer`` (default: the real one)
``iss_supported``
    ``authorization_response_iss_parameter_supported`` (default ``True``)
``algs``
    ``id_token_signing_alg_values_supported`` (default ``["RS256"]``)
``error``
    the authorization endpoint answers ``error=<this>`` instead of a code
``state`` / ``response_iss``
    the ``state`` / ``iss`` it answers with (``DROP`` leaves ``iss`` out)
``signing``
    ``"rs256"`` (default); ``"other_key"``: RS256 by a key not in its JWKS, same ``kid``;
    ``"none"``: an unsigned token; ``"hs256_public_pem"``: HS256 with the public key PEM
    as the MAC secret (the algorithm-confusion attack)
``body``
    ``{endpoint: bytes}``: that endpoint answers 200 with these bytes as JSON, whatever they are
``claims`` / ``userinfo``
    overrides of the ID token's / userinfo's claims (``DROP`` removes one); an ID token
    override may be a callable, called with the token's honest ``iat`` (``lambda now: …``)
``hang``
    endpoint names (``"discovery"``, ``"token"``, …) that answer only after ``HANG_SECONDS``
    or when the fake is stopped, whichever comes first
``trickle``
    endpoint names whose answer is sent one byte at a time, spread over ``HANG_SECONDS``
    (each byte well within any read timeout)
``endless``
    endpoint names whose body never ends: blanks, chunk after chunk, until the client
    hangs up (or, as a safety net, ``ENDLESS_CAP`` bytes)

``received`` lists every request as ``(method, path)``; ``streamed`` the bytes each
endless body got out before the client hung up; ``account`` is the signed-in user
(``email`` defaults to the ``login_hint``).
"""

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response

DROP = object()  # a fault value meaning "leave this out"
CLIENT_ID = "idp-rp"
HANG_SECONDS = 30
ENDLESS_CAP = 64 * 1024 * 1024
KID = "fake-1"
PATHS = {
    "/.well-known/openid-configuration": "discovery",
    "/jwks": "jwks",
    "/authorize": "authorize",
    "/token": "token",
    "/userinfo": "userinfo",
}


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _merge(base, overrides):
    merged = {**base, **(overrides or {})}
    return {name: value for name, value in merged.items() if value is not DROP}


class FakeUpstream:
    """One fake OP; ``start()`` it, and ``stop()`` it when the test ends."""

    def __init__(self, client_id=CLIENT_ID, client_secret=None, **faults):
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.redirect_uri = None  # the only one accepted, once the test registered it
        self.faults = faults
        self.account = {
            "sub": f"fake-{secrets.token_hex(4)}",
            "email_verified": True,
            "name": "Fake User",
            "amr": ["pwd", "mfa"],
        }
        self.received = []
        self.streamed = {}
        self.key = RSAKey.generate_key(2048, parameters={"kid": KID}, private=True)
        self._codes = {}
        self._tokens = {}
        self._stopping = threading.Event()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self):
        """Serve in the background."""
        self._thread.start()
        return self

    def stop(self):
        """Wake every hanging answer, stop serving and close the socket."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def calls(self, endpoint):
        """How many requests ``endpoint`` (``"token"``, …) received."""
        return sum(1 for _, path in self.received if PATHS.get(path) == endpoint)

    # -- the OP ----------------------------------------------------------------------

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        self.received.append((request.method, request.path))
        endpoint = PATHS.get(request.path)
        if endpoint in self.faults.get("hang", ()):
            self._stopping.wait(HANG_SECONDS)
        handler = getattr(self, f"_{endpoint}", None) if endpoint else None
        response = handler(request) if handler else Response("not found", 404)
        if endpoint in self.faults.get("body", {}):
            response = Response(self.faults["body"][endpoint], content_type="application/json")
        if endpoint in self.faults.get("trickle", ()):
            response = self._trickled(response)
        if endpoint in self.faults.get("endless", ()):
            response = Response(self._endless(endpoint), content_type="application/json")
        response.headers["Connection"] = "close"  # no idle keep-alive thread outlives stop()
        return response(environ, start_response)

    def _trickled(self, response):
        body = response.get_data()
        pause = HANG_SECONDS / len(body)

        def one_byte_at_a_time():
            for index in range(len(body)):
                if self._stopping.wait(pause):
                    return
                yield body[index : index + 1]

        trickled = Response(one_byte_at_a_time(), response.status_code, response.headers)
        trickled.headers["Content-Length"] = str(len(body))
        return trickled

    def _endless(self, endpoint):
        chunk = b" " * 65536
        self.streamed[endpoint] = 0
        while self.streamed[endpoint] < ENDLESS_CAP and not self._stopping.is_set():
            self.streamed[endpoint] += len(chunk)
            yield chunk

    def _json(self, body, status=200):
        return Response(json.dumps(body), status, content_type="application/json")

    def _discovery(self, request):
        return self._json(
            {
                "issuer": self.faults.get("issuer", self.issuer),
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": self.faults.get("algs", ["RS256"]),
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": self.faults.get(
                    "iss_supported", True
                ),
            }
        )

    def _jwks(self, request):
        return self._json(KeySet([self.key]).as_dict(private=False))

    def _authorize(self, request):
        args = request.args
        if args.get("client_id") != self.client_id or args.get("redirect_uri") != self.redirect_uri:
            return Response("unknown client or redirect_uri", 400)
        answer = {"state": self.faults.get("state", args.get("state"))}
        if "error" in self.faults:
            answer["error"] = self.faults["error"]
        else:
            answer["code"] = secrets.token_urlsafe(16)
            self._codes[answer["code"]] = {
                "redirect_uri": args["redirect_uri"],
                "nonce": args.get("nonce"),
                "challenge": args.get("code_challenge"),
                "login_hint": args.get("login_hint"),
            }
        answer["iss"] = self.faults.get("response_iss", self.issuer)
        answer = {name: value for name, value in answer.items() if value is not DROP}
        return Response(
            status=302, headers={"Location": f"{args['redirect_uri']}?{urlencode(answer)}"}
        )

    def _token(self, request):
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != (self.client_id, self.client_secret):
            return self._json({"error": "invalid_client"}, 401)
        form = request.form
        grant = self._codes.pop(form.get("code", ""), None)  # single use
        verifier = form.get("code_verifier", "")
        if (
            form.get("grant_type") != "authorization_code"
            or grant is None
            or form.get("redirect_uri") != grant["redirect_uri"]
            or _b64(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]
        ):
            return self._json({"error": "invalid_grant"}, 400)
        claims = self._id_token_claims(grant)
        access_token = secrets.token_urlsafe(16)
        self._tokens[access_token] = claims
        overrides = self.faults.get("claims") or {}
        now = claims["iat"]
        claims = _merge(claims, {k: v(now) if callable(v) else v for k, v in overrides.items()})
        return self._json(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self._sign(claims),
            }
        )

    def _userinfo(self, request):
        auth = request.headers.get("Authorization", "")
        claims = self._tokens.get(auth.removeprefix("Bearer "))
        if claims is None:
            return self._json({"error": "invalid_token"}, 401)
        public = {name: claims.get(name) for name in ("sub", "email", "email_verified", "name")}
        return self._json(_merge(public, self.faults.get("userinfo")))

    # -- the ID token ----------------------------------------------------------------

    def _id_token_claims(self, grant):
        """The honest claims; the ``claims`` fault is applied on top when signing."""
        now = int(time.time())
        return {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            "email": grant["login_hint"],
            **self.account,
        }

    def _sign(self, claims):
        signing = self.faults.get("signing", "rs256")
        if signing == "rs256":
            return jwt.encode({"alg": "RS256", "kid": KID}, claims, self.key)
        if signing == "other_key":
            other = RSAKey.generate_key(2048, parameters={"kid": KID}, private=True)
            return jwt.encode({"alg": "RS256", "kid": KID}, claims, other)
        alg = {"none": "none", "hs256_public_pem": "HS256"}[signing]
        header = _b64(json.dumps({"alg": alg, "kid": KID, "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims).encode())
        signing_input = f"{header}.{payload}".encode()
        if alg == "none":
            return f"{header}.{payload}."
        secret = self.key.as_pem(private=False)
        return f"{header}.{payload}.{_b64(hmac.digest(secret, signing_input, 'sha256'))}"
