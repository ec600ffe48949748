"""A demo relying party at /demo-app (development only): sign in, see the tokens, sign out.

It is a real OAuth client of the demo tenant — Authlib's requests client with
PKCE, state and nonce — talking to idp over HTTP like any other application.
"""

import json
import secrets

from authlib.integrations.requests_client import OAuth2Session
from flask import Blueprint
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.services.seed import DEMO_TENANT
from idp.services.seed import demo_client_path

bp = Blueprint("demo", __name__, url_prefix="/demo-app")


def _settings():
    base = current_app.config["PUBLIC_URL"]
    with open(demo_client_path(current_app.config)) as fh:
        creds = json.load(fh)
    issuer = f"{base}/{DEMO_TENANT}"
    return creds, issuer, f"{base}/demo-app/callback"


def _oauth(creds, redirect_uri, **kwargs):
    return OAuth2Session(
        creds["client_id"],
        creds["client_secret"],
        scope="openid profile email",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        **kwargs,
    )


@bp.get("/")
def home():
    """The relying party's page: a sign-in button, or what it knows about you."""
    return render_template("demo/home.html", result=session.get("demo_result"))


@bp.post("/login")
def login():
    """Start the code flow with PKCE, state and nonce."""
    creds, issuer, redirect_uri = _settings()
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = _oauth(creds, redirect_uri).create_authorization_url(
        f"{issuer}/authorize", code_verifier=verifier, nonce=nonce
    )
    session["demo_flow"] = {"state": state, "verifier": verifier, "nonce": nonce}
    return redirect(url, code=303)


@bp.get("/callback")
def callback():
    """Check state and iss, redeem the code, verify the ID token, call userinfo."""
    creds, issuer, redirect_uri = _settings()
    flow = session.pop("demo_flow", None)
    if request.args.get("error"):
        return render_template("demo/home.html", error=request.args.get("error_description")), 400
    if not flow or request.args.get("state") != flow["state"] or request.args.get("iss") != issuer:
        return render_template("demo/home.html", error="state or issuer mismatch"), 400
    client = _oauth(creds, redirect_uri, state=flow["state"])
    token = client.fetch_token(
        f"{issuer}/token", code=request.args["code"], code_verifier=flow["verifier"]
    )
    keys = KeySet.import_key_set(client.get(f"{issuer}/jwks").json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256", "ES256"])
    claims = id_token.claims
    if claims.get("nonce") != flow["nonce"] or claims.get("iss") != issuer:
        return render_template("demo/home.html", error="ID token nonce or issuer mismatch"), 400
    userinfo = client.get(f"{issuer}/userinfo").json()
    session["demo_result"] = {"claims": claims, "userinfo": userinfo, "id_token": token["id_token"]}
    return redirect("/demo-app/", code=303)


@bp.post("/logout")
def logout():
    """RP-initiated logout with id_token_hint, back to this page."""
    _, issuer, _ = _settings()
    result = session.pop("demo_result", None) or {}
    base = current_app.config["PUBLIC_URL"]
    from urllib.parse import urlencode

    query = urlencode(
        {
            "id_token_hint": result.get("id_token", ""),
            "post_logout_redirect_uri": f"{base}/demo-app/",
        }
    )
    return redirect(f"{issuer}/logout?{query}", code=303)
