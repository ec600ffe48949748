"""The user guides' sign-in journeys in chromium, from the application's request to its tokens.

The Fluxys guide step by step: first-time activation from an invitation, the
returning sign-in, the forgotten password; then an expired emailed code, a recovery
code instead of the phone, the lock-out after wrong passwords, and the returning
sign-in by keyboard alone. One idp (`idp serve`, real SMTP) serves the whole module; the
tenant, client and users are made with the ``idp`` CLI, and each journey has its own
user and its own browser. Every page is photographed at phone and desktop width into
test-artifacts/screenshots/ for a person to review.
"""

import pytest

from tests.e2e.application import NEW_PASSWORD
from tests.e2e.application import PASSWORD
from tests.e2e.application import Application
from tests.e2e.application import age_email_codes
from tests.e2e.application import client_ip
from tests.e2e.application import new_email
from tests.e2e.conftest import tab_to
from tests.e2e.journey import CODE_SENT
from tests.e2e.journey import CODE_VERIFIED
from tests.e2e.journey import INVALID_CREDENTIALS
from tests.e2e.journey import SignIn

pytestmark = pytest.mark.e2e

CODE_EXPIRED = "This code has expired."
TOO_MANY_ATTEMPTS = "Too many attempts. Please wait"
TOTP_WRONG = "That code is not correct. Enter the current code from your authenticator app."


@pytest.fixture(scope="module")
def acme(hosted_idp):
    """The tenant of the journeys, with the Fluxys guide's password rules (Azure AD B2C)."""
    return Application(hosted_idp, "acme", "Acme Energy", "--password-policy", "b2c")


@pytest.fixture
def browser_for(hosted_idp, acme, open_page):
    """A fresh browser (its own cookies and address) signing in to Acme, named for its photos."""

    def _open(name, viewport="phone"):
        watched = open_page(viewport, prefix=name, client_ip=client_ip())
        return SignIn(watched, acme, hosted_idp.smtp)

    return _open


def subjects_to(smtp, email):
    """The subjects of every mail delivered to ``email`` so far."""
    return [d.message["Subject"] for d in smtp.deliveries if email in d.rcpt_tos]


def test_first_time_activation_from_invitation_to_tokens(acme, browser_for, hosted_idp):
    """Fluxys "Creating Your Single Sign-On Account", steps 1 to 10, then the tokens."""
    email = acme.invite(new_email("first"))
    journey = browser_for("activation")
    phone, codes = journey.activate(email, NEW_PASSWORD)
    journey.shoot("back-at-application")
    assert len(codes) == 10 and len(set(codes)) == 10
    claims, userinfo = journey.tokens()
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"])
    assert userinfo["email"] == email and userinfo["email_verified"] is True
    assert userinfo["sub"] == claims["sub"]
    subjects = subjects_to(hosted_idp.smtp, email)
    assert "Your Acme Energy password was changed" in subjects, subjects
    assert "Your Acme Energy authenticator app was changed" in subjects, subjects


def test_returning_sign_in_with_password_and_authenticator(acme, browser_for):
    """Fluxys "Logging into a Fluxys application": email, password, the app's code."""
    email = new_email("returning")
    phone = acme.create_user(email)
    journey = browser_for("returning", "desktop").open()
    journey.identify(email)
    journey.enter_password(PASSWORD)
    journey.authenticator_code(phone)
    journey.shoot("back-at-application")
    claims, userinfo = journey.tokens()
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"])
    assert userinfo["email"] == email


def test_forgot_password_with_an_enrolled_authenticator(acme, browser_for):
    """Fluxys "Resetting your password": the emailed code, then the app, then a new password."""
    email = new_email("forgot")
    phone = acme.create_user(email)
    journey = browser_for("forgot").open()
    journey.identify(email)
    journey.prove_email(email)
    journey.authenticator_code(phone)  # the reset asks for the app before the new password
    journey.choose_password(NEW_PASSWORD)
    claims, _ = journey.tokens()
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"])

    again = browser_for("forgot-after").open()
    again.identify(email)
    again.enter_password(PASSWORD)  # the old one is gone
    again.at("password")
    again.field_error("Password", INVALID_CREDENTIALS)
    again.fill("Password", NEW_PASSWORD)
    again.press("Sign in")
    again.at("second_factor")


def test_expired_email_code_then_send_new_code(acme, browser_for, hosted_idp):
    """Fluxys step 5: a code is valid 5 minutes; "Send new code" gives one that works."""
    email = acme.invite(new_email("expired"))
    journey = browser_for("expired-code").open()
    journey.identify(email)
    journey.request_code(email)
    old_code = journey.emailed_code(email)
    age_email_codes(hosted_idp.database, email, seconds=400)  # past its 5 minutes
    journey.enter_code(old_code)
    journey.at("verify_code")
    journey.field_error("Verification code", CODE_EXPIRED)
    journey.shoot("verify-code-expired")
    journey.press("Send new code")
    journey.at("verify_code")
    journey.says(CODE_SENT)
    journey.shoot("verify-code-new-code-sent")
    journey.enter_code(journey.emailed_code(email))
    journey.at("code_verified")
    journey.says(CODE_VERIFIED)


def test_recovery_code_instead_of_the_authenticator_then_not_now(acme, browser_for):
    """A lost phone: a saved recovery code signs in once; re-enrolment can wait."""
    email = acme.invite(new_email("recovery"))
    _, codes = browser_for("recovery-activation").activate(email, NEW_PASSWORD)

    journey = browser_for("recovery-code").open()
    journey.identify(email)
    journey.enter_password(NEW_PASSWORD)
    journey.at("second_factor")
    journey.press("Lost your phone? Use a recovery code")
    journey.at("second_factor")
    journey.shoot("recovery-code")
    journey.fill("Recovery code", codes[0])
    journey.press("Verify")
    journey.at("reenrol_offer")
    journey.says("You have 9 recovery codes left.")
    journey.shoot("reenrol-offer")
    journey.press("Not now")
    claims, userinfo = journey.tokens()
    assert "mfa" in claims["amr"]
    assert userinfo["email"] == email


def test_lock_out_after_wrong_passwords_and_recovery_still_works(acme, browser_for):
    """Five wrong passwords: "Too many attempts", even for the right one; the forgot-password
    path (an emailed code and the app) still leads in."""
    email = new_email("lockout")
    phone = acme.create_user(email)
    journey = browser_for("lockout").open()
    journey.identify(email)
    for _ in range(5):
        journey.enter_password("Wrong-Guess-123")
        journey.at("password")
        journey.field_error("Password", INVALID_CREDENTIALS)
    journey.shoot("password-invalid-combination")
    journey.enter_password(PASSWORD)
    journey.at("password")
    journey.field_error("Password", TOO_MANY_ATTEMPTS)
    journey.shoot("password-too-many-attempts")
    journey.prove_email(email)
    journey.authenticator_code(phone)
    journey.choose_password(NEW_PASSWORD)
    claims, _ = journey.tokens()
    assert "pwd" in claims["amr"]


def test_returning_sign_in_by_keyboard_only(acme, browser_for):
    """Type and Tab and Enter, no mouse: every control is reachable, focus lands in the field
    to type in, and a mistake is announced on its field."""
    email = new_email("keyboard")
    phone = acme.create_user(email)
    journey = browser_for("keyboard", "desktop").open()
    page, keyboard, expect = journey.page, journey.page.keyboard, journey.expect

    journey.at("identify")
    journey.check_page()
    expect(journey.field("Email address")).to_be_focused()
    keyboard.type(email)
    tab_to(page, journey.button("Continue"))
    keyboard.press("Enter")

    journey.at("password")
    journey.check_page()
    expect(journey.field("Password")).to_be_focused()
    keyboard.type("Not-My-Password-1")
    keyboard.press("Enter")  # implicit submission, as from any text field
    journey.at("password")
    journey.field_error("Password", INVALID_CREDENTIALS)
    expect(journey.field("Password")).to_be_focused()
    keyboard.type(PASSWORD)
    tab_to(page, journey.button("Sign in"))
    journey.shoot("keyboard-sign-in-focused")
    keyboard.press("Enter")

    journey.at("second_factor")
    journey.check_page()
    expect(journey.field("Enter your code")).to_be_focused()
    right = phone.code()
    keyboard.type(f"{(int(right) + 1) % 1_000_000:06d}")
    tab_to(page, journey.button("Verify"))
    keyboard.press("Enter")
    journey.at("second_factor")
    journey.field_error("Enter your code", TOTP_WRONG)
    journey.shoot("authenticator-code-wrong")
    expect(journey.field("Enter your code")).to_be_focused()
    keyboard.type(right)
    tab_to(page, journey.button("Verify"))
    keyboard.press("Enter")

    claims, userinfo = journey.tokens()
    assert "mfa" in claims["amr"] and userinfo["email"] == email
