"""idp as the relying party of an upstream: start the code flow, finish it, validate the ID token.

RFC 9700 §2.1 and §4.4 for clients: a fresh ``state``, ``nonce`` and PKCE S256
verifier per attempt; a distinct redirect URI per upstream; the RFC 9207 ``iss``
response parameter checked when present or promised. OIDC Core §3.1.3.7 for the
ID token: signature by the upstream's JWKS with an algorithm allow-list (never
``none``, never HMAC — an HS256 token "signed" with a public key is refused),
``iss``, ``aud``, ``azp``, ``exp``, ``iat`` and ``nonce``.
"""

import base64
import hashlib
import math
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.federation.outbound import OutboundError
from idp.federation.outbound import get_json
from idp.federation.outbound import post_form
from idp.services import crypto

ALLOWED_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
CLOCK_SKEW = 60
MAX_ID_TOKEN_AGE = 600


class FederationError(Exception):
    """An upstream sign-in that must stop. ``code`` is the user-facing message code
    (``idp_denied``, ``sso_misconfigured``, ``expired``), ``cause`` the detail for the audit log."""

    def __init__(self, code, cause):
        super().__init__(f"{code}: {cause}")
        self.code = code
        self.cause = cause


@dataclass
class UpstreamIdentity:
    """Who the upstream says signed in, after every check passed."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    groups: list
    amr: list


def metadata(upstream):
    """The upstream's discovery document, whose ``issuer`` must be the configured one."""
    try:
        document = get_json(upstream.metadata_url, upstream.allow_private_network)
    except OutboundError as exc:
        raise FederationError("sso_misconfigured", f"discovery: {exc}") from exc
    if document.get("issuer") != upstream.issuer:
        raise FederationError(
            "sso_misconfigured",
            f"discovery issuer {document.get('issuer')!r} is not {upstream.issuer!r}",
        )
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(name), str):
            raise FederationError("sso_misconfigured", f"discovery has no {name}")
    return document


def begin(upstream, redirect_uri, login_hint=None):
    """The authorization URL to send the browser to, and the attempt to remember."""
    document = metadata(upstream)
    verifier = secrets.token_urlsafe(48)
    attempt = {
        "upstream": upstream.alias,
        "state": secrets.token_urlsafe(24),
        "nonce": secrets.token_urlsafe(24),
        "verifier": crypto.encrypt(verifier),
        "started": int(time.time()),
    }
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": upstream.client_id,
        "redirect_uri": redirect_uri,
        "scope": upstream.scopes,
        "state": attempt["state"],
        "nonce": attempt["nonce"],
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    if login_hint:
        params["login_hint"] = login_hint
    endpoint = document["authorization_endpoint"]
    separator = "&" if "?" in endpoint else "?"
    return endpoint + separator + urlencode(params), attempt


def finish(upstream, attempt, args, redirect_uri):
    """Check the authorization response, redeem the code, validate the ID token."""
    if not attempt or attempt.get("upstream") != upstream.alias:
        raise FederationError("wrong_callback", "no sign-in with this upstream is under way")
    if not _same(args.get("state", ""), attempt["state"]):
        raise FederationError("wrong_callback", "state does not match")
    document = metadata(upstream)
    _check_response_issuer(upstream, document, args)
    if args.get("error"):
        code = "idp_denied" if args["error"] == "access_denied" else "sso_misconfigured"
        raise FederationError(
            code, f"upstream error {args.get('error')}: {args.get('error_description', '')}"[:300]
        )
    if not args.get("code"):
        raise FederationError("sso_misconfigured", "no code in the authorization response")
    tokens = _redeem(
        upstream, document, args["code"], crypto.decrypt(attempt["verifier"]), redirect_uri
    )
    claims = validate_id_token(upstream, document, tokens.get("id_token"), attempt["nonce"])
    mapping = _mapping(upstream)
    if mapping["email"] not in claims and tokens.get("access_token"):
        claims = {**_userinfo(upstream, document, tokens["access_token"], claims["sub"]), **claims}
    return _identity(upstream, claims)


def _userinfo(upstream, document, access_token, subject):
    """OIDC Core §5.3: claims the ID token left out; ``sub`` must be the ID token's (§5.3.4)."""
    if not isinstance(document.get("userinfo_endpoint"), str):
        return {}
    try:
        info = get_json(document["userinfo_endpoint"], upstream.allow_private_network,
                        bearer=access_token)
    except OutboundError as exc:
        raise FederationError("sso_misconfigured", f"userinfo: {exc}") from exc
    if info.get("sub") != subject:
        raise FederationError("sso_misconfigured", "userinfo sub differs from the id_token's")
    return {k: v for k, v in info.items() if k not in ("iss", "aud", "nonce", "exp", "iat")}


def _mapping(upstream):
    return {"email": "email", "name": "name", "groups": "groups", **(upstream.claim_mapping or {})}


def _check_response_issuer(upstream, document, args):
    """RFC 9207 §2.4: a present or promised ``iss`` must be this upstream's (mix-up defence)."""
    promised = document.get("authorization_response_iss_parameter_supported") is True
    if "iss" in args or promised:
        if args.get("iss") != upstream.issuer:
            raise FederationError(
                "sso_misconfigured", f"authorization response iss {args.get('iss')!r} (mix-up?)"
            )


def _redeem(upstream, document, code, verifier, redirect_uri):
    secret = crypto.decrypt(upstream.client_secret) if upstream.client_secret else None
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    auth = (upstream.client_id, secret) if secret else None
    if auth is None:
        data["client_id"] = upstream.client_id
    try:
        status, body = post_form(
            document["token_endpoint"], data, auth, upstream.allow_private_network
        )
    except OutboundError as exc:
        raise FederationError("sso_misconfigured", f"token endpoint: {exc}") from exc
    if status != 200 or "id_token" not in body:
        raise FederationError(
            "sso_misconfigured", f"token endpoint answered {status} {body.get('error', '')}"
        )
    return body


def _jwks(upstream, document):
    try:
        return KeySet.import_key_set(get_json(document["jwks_uri"], upstream.allow_private_network))
    except OutboundError as exc:
        raise FederationError("sso_misconfigured", f"jwks: {exc}") from exc
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise FederationError("sso_misconfigured", "jwks is not a valid key set") from exc


def validate_id_token(upstream, document, id_token, nonce, now=None):
    """OIDC Core §3.1.3.7, every rule; returns the claims."""
    if not isinstance(id_token, str):
        raise FederationError("sso_misconfigured", "no id_token")
    offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [alg for alg in ALLOWED_ALGS if alg in offered] or ["RS256"]
    try:
        token = jwt.decode(id_token, _jwks(upstream, document), algorithms=algorithms)
    except (JoseError, ValueError, TypeError) as exc:
        raise FederationError("sso_misconfigured", f"id_token signature: {exc}") from exc
    claims = token.claims
    now = now or time.time()
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    problems = [
        (claims.get("iss") != upstream.issuer, "iss"),
        (upstream.client_id not in auds, "aud"),
        (len(auds) > 1 and claims.get("azp") != upstream.client_id, "azp"),
        (not _numeric_date(claims.get("exp")) or claims["exp"] + CLOCK_SKEW < now, "exp"),
        (
            not _numeric_date(claims.get("iat"))
            or claims["iat"] - CLOCK_SKEW > now
            or claims["iat"] + MAX_ID_TOKEN_AGE < now,
            "iat",
        ),
        (not _same(claims.get("nonce"), nonce), "nonce"),
        (not isinstance(claims.get("sub"), str) or not claims["sub"], "sub"),
    ]
    for failed, name in problems:
        if failed:
            raise FederationError("sso_misconfigured", f"id_token {name} is not valid")
    return claims


def _same(value, expected):
    """Constant-time string equality that never raises: compare_digest refuses non-ASCII str."""
    return isinstance(value, str) and secrets.compare_digest(value.encode(), expected.encode())


def _numeric_date(value):
    """RFC 7519 §2 NumericDate: a finite number (Python's json also reads NaN and Infinity,
    which every comparison would let through)."""
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _identity(upstream, claims):
    mapping = {
        "email": "email",
        "name": "name",
        "groups": "groups",
        **(upstream.claim_mapping or {}),
    }
    email = claims.get(mapping["email"])
    groups = claims.get(mapping["groups"]) or []
    amr = claims.get("amr") if isinstance(claims.get("amr"), list) else []
    return UpstreamIdentity(
        issuer=claims["iss"],
        subject=claims["sub"],
        email=email.strip().lower() if isinstance(email, str) else None,
        email_verified=claims.get("email_verified") is True,
        name=claims.get(mapping["name"]) if isinstance(claims.get(mapping["name"]), str) else None,
        groups=[g for g in groups if isinstance(g, str)] if isinstance(groups, list) else [],
        amr=[a for a in amr if isinstance(a, str)],
    )
