"""Every message of the guides' error tables that the hosted (password) sign-in can show, made
to happen for real in chromium, each page photographed at phone and desktop width.

Flexopus "Email & Password": invalid email/password combination, user account
disabled / deleted, access expired. Fluxys step 2: "Your account has been
deactivated" (the activation deadline passed) and, for a tenant that reveals account
states, "An account could not be found for the provided user ID". Account states are
told only after the password (or the emailed code) proved who is asking; before that,
every failure reads the same. The states are set with the ``idp`` CLI, the deadline
by editing the user's row.
"""

import time

import pytest

from tests.e2e.application import PASSWORD
from tests.e2e.application import Application
from tests.e2e.application import client_ip
from tests.e2e.application import new_email
from tests.e2e.application import set_activation_deadline
from tests.e2e.journey import INVALID_CREDENTIALS
from tests.e2e.journey import SignIn

pytestmark = pytest.mark.e2e

DISABLED = (
    "account_disabled",
    "User account disabled or deleted",
    "Your account has been deactivated or deleted. Contact your administrator",
)
EXPIRED = (
    "access_expired",
    "Access expired",
    "Your account had an expiration date and the access has expired.",
)
DEACTIVATED = (
    "account_deactivated",
    "Your account has been deactivated",
    "You waited too long to activate your account and it has been deactivated",
)
NOT_FOUND = "An account could not be found for the provided user ID."


@pytest.fixture(scope="module")
def acme(hosted_idp):
    """A tenant that conceals account states until the user is proven (the default)."""
    return Application(hosted_idp, "acme", "Acme Energy")


@pytest.fixture(scope="module")
def globex(hosted_idp):
    """A tenant that tells unknown and deactivated accounts at the email step (Azure AD B2C)."""
    return Application(hosted_idp, "globex", "Globex Gas", "--reveal-account-state")


@pytest.fixture
def browser_for(hosted_idp, open_page):
    """A fresh browser signing in to ``application``, named for its photos."""

    def _open(application, name, viewport="phone"):
        watched = open_page(viewport, prefix=f"error-{name}", client_ip=client_ip())
        return SignIn(watched, application, hosted_idp.smtp).open()

    return _open


def deactivated_invitation(application, database):
    """An invited account whose activation deadline has passed."""
    email = application.invite(new_email("late"))
    set_activation_deadline(database, email, int(time.time()) - 60)
    return email


def test_invalid_combination_reads_the_same_for_unknown_accounts(acme, browser_for):
    """A wrong password and an unknown address get one message, on the same page."""
    known = new_email("known")
    acme.create_user(known)
    pages = []
    for email in (known, new_email("stranger")):
        journey = browser_for(acme, "invalid-combination")
        journey.identify(email)
        journey.enter_password("Wrong-Guess-123")
        journey.at("password")
        journey.field_error("Password", INVALID_CREDENTIALS)
        journey.shoot("password-invalid-combination")
        pages.append(journey.page.locator("main").inner_text().replace(email, "EMAIL"))
    assert pages[0] == pages[1]


def test_disabled_account_is_told_only_after_the_password(acme, browser_for):
    email = new_email("disabled")
    acme.create_user(email)
    acme.cli("disable", "--email", email)
    journey = browser_for(acme, "disabled")
    journey.identify(email)
    journey.enter_password("Wrong-Guess-123")
    journey.field_error("Password", INVALID_CREDENTIALS)
    journey.enter_password(PASSWORD)
    journey.failure(*DISABLED)
    journey.shoot("failure-account-disabled")


def test_deleted_account_is_told_after_the_emailed_code(acme, browser_for):
    """Deleting wipes the password: only the emailed code proves the address, then the
    same "disabled or deleted" page."""
    email = new_email("deleted")
    acme.create_user(email)
    acme.cli("delete", "--email", email)
    journey = browser_for(acme, "deleted")
    journey.identify(email)
    journey.enter_password(PASSWORD)
    journey.field_error("Password", INVALID_CREDENTIALS)
    journey.request_code(email)
    journey.enter_code(journey.emailed_code(email))
    journey.failure(*DISABLED)


def test_access_expired(acme, browser_for):
    email = new_email("expired")
    acme.create_user(email)
    acme.cli("expire", "--email", email)
    journey = browser_for(acme, "access-expired")
    journey.identify(email)
    journey.enter_password(PASSWORD)
    journey.failure(*EXPIRED)
    journey.shoot("failure-access-expired")


def test_deactivated_after_the_activation_deadline(acme, browser_for, hosted_idp):
    """Concealing tenant: the first-time sign-in learns it once the emailed code is right."""
    email = deactivated_invitation(acme, hosted_idp.database)
    journey = browser_for(acme, "deactivated")
    journey.identify(email)
    journey.request_code(email)
    journey.enter_code(journey.emailed_code(email))
    journey.failure(*DEACTIVATED)
    journey.shoot("failure-account-deactivated")


def test_reveal_mode_tells_unknown_and_deactivated_accounts_at_the_email_step(
    globex, browser_for, hosted_idp
):
    """Fluxys step 2's two messages, for a tenant that chose to reveal account states."""
    journey = browser_for(globex, "reveal-not-found")
    journey.identify(new_email("nobody"))
    journey.at("identify")
    journey.field_error("Email address", NOT_FOUND)
    journey.shoot("identify-account-not-found")

    email = deactivated_invitation(globex, hosted_idp.database)
    journey = browser_for(globex, "reveal-deactivated")
    journey.identify(email)
    journey.failure(*DEACTIVATED)


def test_reset_authenticator_is_enrolled_again_at_the_next_sign_in(acme, browser_for):
    """``idp user reset-mfa``: the password still works, then a new app is set up."""
    email = new_email("reset")
    acme.create_user(email)
    acme.cli("reset-mfa", "--email", email)
    journey = browser_for(acme, "reset-mfa")
    journey.identify(email)
    journey.enter_password(PASSWORD)
    journey.enrol()
    journey.tokens()
