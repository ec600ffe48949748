"""Enrol an authenticator app: QR code (segno, inline SVG) and the secret as text.

Mandatory: a user without one cannot finish signing in. The secret waits,
encrypted, in the transaction until a code from the app proves it was scanned.
"""

from idp.journey.outcomes import Success
from idp.services import crypto
from idp.services import totp

NAME = "totp_enrol"
TEMPLATE = "journey/totp_enrol.html"
APP_LINKS = {
    "microsoft_ios": "https://apps.apple.com/app/microsoft-authenticator/id983156458",
    "microsoft_android": "https://play.google.com/store/apps/details?id=com.azure.authenticator",
    "google_ios": "https://apps.apple.com/app/google-authenticator/id388497605",
    "google_android": "https://play.google.com/store/apps/details?id=com.google.android.apps.authenticator2",
}


def applies(data, user):
    """After the first factor (and a new password when recovering), when none is enrolled."""
    federated = data.get("fed_ok") and not data.get("mfa_trusted")
    proven = data.get("password_ok") or data.get("password_set") or federated
    return bool(proven) and user is not None and (not user.has_totp or data.get("enrolling"))


def is_done(data, user):
    """Done once the user has scanned and pressed Continue."""
    return bool(data.get("enrol_seen"))


def prepare(tenant, data, user):
    """A fresh secret for this transaction, kept encrypted until it is confirmed."""
    if data.get("pending_totp"):
        return None
    return {"pending_totp": crypto.encrypt(totp.new_secret()), "enrolling": True}


def context(tenant, data, params, user):
    """QR code, the secret grouped for typing, and where to get the apps."""
    secret = crypto.decrypt(data["pending_totp"])
    uri = totp.provisioning_uri(secret, user.email, tenant.name)
    return {
        "qr_svg": totp.qr_svg(uri),
        "secret": totp.format_secret(secret),
        "uri": uri,
        "apps": APP_LINKS,
    }


def submit(tenant, data, form, user):
    """Continue to the code check."""
    return Success({"enrol_seen": True})
