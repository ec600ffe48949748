"""Every message the journey shows, with its stable code (the guides' error tables).

Codes never change; texts are translated (Flask-Babel) and may be reworded.
"""

from flask_babel import lazy_gettext as _l

from idp.journey.outcomes import Failure

INVALID_CREDENTIALS = _l("Invalid email and password combination.")
ACCOUNT_NOT_FOUND = _l("An account could not be found for the provided user ID.")
TOO_MANY_ATTEMPTS = _l("Too many attempts. Please wait %(minutes)s minute(s) and try again.")
CODE_WRONG = _l("That code is not correct. Check it and try again.")
CODE_EXPIRED = _l("This code has expired. Select “Send new code” to get a new one.")
CODE_LOCKED = _l("Too many wrong codes. Please request a new code later.")
CODE_MISSING = _l("Send a verification code first.")
CODE_SENT = _l("Verification code has been sent. Please copy it to the input box below.")
CODE_COOLDOWN = _l("Please wait %(seconds)s seconds before asking for a new code.")
CODE_HOURLY = _l("Too many codes were sent to this address. Please try again later.")
TOTP_WRONG = _l("That code is not correct. Enter the current code from your authenticator app.")
RECOVERY_WRONG = _l("That recovery code is not valid or was already used.")
ENTER_EMAIL = _l("Enter a valid email address.")


def account_disabled():
    """Flexopus: "User account disabled / deleted"."""
    return Failure(
        "account_disabled",
        _l("User account disabled or deleted"),
        _l(
            "Your account has been deactivated or deleted. Contact your administrator so they "
            "can reactivate or create the account."
        ),
    )


def access_expired():
    """Flexopus: "Access expired"."""
    return Failure(
        "access_expired",
        _l("Access expired"),
        _l(
            "Your account had an expiration date and the access has expired. Contact your "
            "administrator so that they can activate your account."
        ),
    )


def account_deactivated():
    """Fluxys: not activated within the deadline, deactivated for security reasons."""
    return Failure(
        "account_deactivated",
        _l("Your account has been deactivated"),
        _l(
            "You waited too long to activate your account and it has been deactivated for "
            "security reasons. The account needs to be reactivated before it can be used."
        ),
    )


def minutes(seconds):
    """Whole minutes to wait, at least one."""
    return max(1, (int(seconds) + 59) // 60)


def failure_for(code):
    """The Failure page of an account problem code (see ``idp.services.accounts``)."""
    if code in FEDERATION_FAILURES:
        return federation_failure(code)
    return {
        "account_disabled": account_disabled,
        "access_expired": access_expired,
        "account_deactivated": account_deactivated,
    }[code]()


# Federation and routing: the Flexopus "Single Sign On" error table. Codes are stable.
FEDERATION_FAILURES = {
    "domain_not_allowed": (
        _l("Email domain is not allowed"),
        _l(
            "Your email domain is not on this organisation's list. Contact your administrator "
            "to get the domain whitelisted."
        ),
    ),
    "wrong_tenant": (
        _l("Incorrect sign-in address"),
        _l(
            "You are trying to sign in to the wrong organisation: your account does not exist "
            "here. Check that you opened the address your organisation gave you."
        ),
    ),
    "user_not_found": (
        _l("User does not exist"),
        _l(
            "Your user does not exist in this organisation's directory. Contact your "
            "administrator so that they can create your user."
        ),
    ),
    "idp_denied": (
        _l("Identity provider does not allow access"),
        _l(
            "Your organisation's identity provider did not allow this sign-in. Contact your "
            "administrator to check that you are approved for this application."
        ),
    ),
    "sso_misconfigured": (
        _l("SSO misconfiguration"),
        _l(
            "Single sign-on is not set up correctly for your organisation. Contact your "
            "administrator so they can check the set-up."
        ),
    ),
    "invalid_callback": (
        _l("This sign-in could not be completed"),
        _l(
            "The answer from your organisation's sign-in did not match this sign-in. Please "
            "start again from the application."
        ),
    ),
}


def federation_failure(code):
    """The Failure page of a routing or federation message code."""
    title, message = FEDERATION_FAILURES[code]
    return Failure(code, title, message)


def wrong_sso(right_name):
    """Flexopus "Incorrect SSO selection", naming the sign-in to use instead."""
    return Failure(
        "wrong_sso",
        _l("Incorrect SSO selection"),
        _l(
            "The wrong identity provider was selected. Please sign in with %(name)s.",
            name=right_name,
        ),
    )
