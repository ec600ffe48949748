"""What `make run` gives a newcomer, in a real browser: the demo relying party signs in and out.

idp runs under `idp serve` after ``idp init --demo`` (see conftest), and Debian's chromium
walks the README's journey: /demo-app/ → Sign in → email → password → the mandatory
authenticator (set up on this first sign-in, recovery codes shown once) → the decoded ID
token and UserInfo → Sign out. Every page must also keep the strict CSP: chromium reports
a blocked inline script or style on the console, and any such report fails the test.

Steps are recognised by their fields and buttons, not their headings, whose wording is
the tenant's copy and may change without the journey changing.
"""

import json

import pytest

from idp.services.seed import DEMO_EMAIL
from idp.services.seed import DEMO_PASSWORD
from idp.services.seed import DEMO_TENANT
from tests.e2e.conftest import CSP_VIOLATION
from tests.e2e.conftest import VIEWPORTS
from tests.e2e.conftest import authenticator_code
from tests.e2e.conftest import tab_to

pytestmark = pytest.mark.e2e


def _expect():
    """Playwright's auto-waiting assertions (imported late: the package may be missing)."""
    from playwright.sync_api import expect

    return expect


def _button(page, name):
    return page.get_by_role("button", name=name, exact=True)


def _assert_page_clean(watched):
    """No CSP violation reported on the console and no uncaught script error, on any page."""
    assert watched.csp_violations() == [], watched.console_errors
    assert watched.page_errors == []


def _assert_signed_out_demo(watched):
    expect = _expect()
    page = watched.page
    expect(_button(page, "Sign in")).to_be_visible()
    expect(page.locator("#id-token-claims")).to_have_count(0)


def _assert_identify_step(watched, server):
    """The tenant's email step with an empty field: nobody is signed in."""
    expect = _expect()
    page = watched.page
    expect(_button(page, "Continue")).to_be_visible()
    assert page.url.startswith(f"{server.url}/{DEMO_TENANT}/")
    expect(page.get_by_label("Email address")).to_have_value("")
    expect(page.get_by_label("Email address")).to_be_editable()
    expect(page.get_by_label("Password", exact=True)).to_have_count(0)


def _assert_password_step(watched):
    """The password step, with the email just given shown read-only."""
    expect = _expect()
    page = watched.page
    expect(page.get_by_label("Password", exact=True)).to_be_visible()
    expect(page.get_by_label("Email address")).to_have_value(DEMO_EMAIL)


def _assert_enrol_step(watched):
    """The authenticator set-up: a QR code, with the key as text behind a disclosure."""
    expect = _expect()
    page = watched.page
    expect(page.locator("figure.qr svg")).to_be_visible()
    expect(page.locator("#totp-secret")).to_have_count(1)


def _assert_code_step(watched):
    expect = _expect()
    expect(watched.page.get_by_label("Enter your code")).to_be_visible()


def _assert_recovery_codes_step(watched):
    expect = _expect()
    codes = watched.page.locator("#recovery-codes li")
    expect(codes.first).to_be_visible()


def _assert_signed_in_demo(watched, server):
    """The demo shows the verified ID token's claims and the UserInfo answer."""
    expect = _expect()
    page = watched.page
    expect(page.get_by_text(f"Signed in as {DEMO_EMAIL}")).to_be_visible()
    claims = json.loads(page.locator("#id-token-claims").inner_text())
    assert claims["iss"] == f"{server.url}/{DEMO_TENANT}"
    assert claims["aud"] in ("demo-rp", ["demo-rp"])  # OIDC Core §2: a string or a list
    assert {"pwd", "otp"} <= set(claims["amr"])
    assert claims["sub"]
    userinfo = json.loads(page.locator("#userinfo").inner_text())
    assert userinfo["email"] == DEMO_EMAIL
    assert userinfo["sub"] == claims["sub"]


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_demo_sign_in_and_out(idp_server, open_page, viewport):
    """The README's journey by mouse, at phone and at desktop width, a screenshot per page."""
    watched = open_page(viewport)
    page = watched.page

    page.goto(f"{idp_server.url}/demo-app/")
    _assert_signed_out_demo(watched)
    watched.screenshot("demo-signed-out")

    _button(page, "Sign in").click()
    _assert_identify_step(watched, idp_server)
    watched.screenshot("identify")
    page.get_by_label("Email address").fill(DEMO_EMAIL)
    _button(page, "Continue").click()

    _assert_password_step(watched)
    watched.screenshot("password")
    page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
    _button(page, "Sign in").click()

    _assert_enrol_step(watched)
    watched.screenshot("authenticator-qr")
    page.get_by_text("Still having trouble?").click()  # the key to type when a QR won't scan
    secret = page.locator("#totp-secret").inner_text()
    watched.screenshot("authenticator-key")
    _button(page, "Continue").click()

    _assert_code_step(watched)
    watched.screenshot("authenticator-code")
    page.get_by_label("Enter your code").fill(authenticator_code(secret))
    _button(page, "Verify").click()

    _assert_recovery_codes_step(watched)
    watched.screenshot("recovery-codes")
    _button(page, "I have saved my recovery codes").click()

    _assert_signed_in_demo(watched, idp_server)
    watched.screenshot("demo-signed-in")

    _button(page, "Sign out").click()
    _assert_signed_out_demo(watched)
    assert page.url == f"{idp_server.url}/demo-app/"
    watched.screenshot("demo-after-sign-out")

    _button(page, "Sign in").click()
    _assert_identify_step(watched, idp_server)
    watched.screenshot("identify-after-sign-out")
    _assert_page_clean(watched)


def test_demo_sign_in_by_keyboard_only(idp_server, open_page):
    """Tab and Enter alone reach every control of the journey: the forms need no mouse."""
    expect = _expect()
    watched = open_page("desktop", prefix="keyboard")
    page = watched.page
    keyboard = page.keyboard

    page.goto(f"{idp_server.url}/demo-app/")
    tab_to(page, _button(page, "Sign in"))
    keyboard.press("Enter")

    _assert_identify_step(watched, idp_server)
    expect(page.get_by_label("Email address")).to_be_focused()  # autofocus: type at once
    keyboard.type(DEMO_EMAIL)
    tab_to(page, _button(page, "Continue"))
    watched.screenshot("identify-continue-focused")
    keyboard.press("Enter")

    _assert_password_step(watched)
    expect(page.get_by_label("Password", exact=True)).to_be_focused()
    keyboard.type(DEMO_PASSWORD)
    tab_to(page, _button(page, "Sign in"))
    watched.screenshot("password-sign-in-focused")
    keyboard.press("Enter")

    _assert_enrol_step(watched)
    tab_to(page, page.get_by_text("Still having trouble?"))
    keyboard.press("Enter")  # opens the disclosure with the key
    secret = page.locator("#totp-secret").inner_text()
    tab_to(page, _button(page, "Continue"))
    watched.screenshot("authenticator-continue-focused")
    keyboard.press("Enter")

    _assert_code_step(watched)
    expect(page.get_by_label("Enter your code")).to_be_focused()
    keyboard.type(authenticator_code(secret))
    tab_to(page, _button(page, "Verify"))
    keyboard.press("Enter")

    _assert_recovery_codes_step(watched)
    tab_to(page, _button(page, "I have saved my recovery codes"))
    watched.screenshot("recovery-codes-focused")
    keyboard.press("Enter")

    _assert_signed_in_demo(watched, idp_server)
    tab_to(page, _button(page, "Sign out"))
    keyboard.press("Enter")
    _assert_signed_out_demo(watched)
    _assert_page_clean(watched)


def test_csp_violations_reach_the_console_watch(idp_server, open_page):
    """The CSP check above is not vacuous: an inline style injected into a page is blocked
    by idp's policy, and chromium reports it on the console where the journey tests look."""
    watched = open_page("desktop", prefix="csp-probe")
    page = watched.page
    page.goto(f"{idp_server.url}/demo-app/")
    with page.expect_console_message(lambda message: bool(CSP_VIOLATION.search(message.text))):
        page.evaluate(
            "() => { const style = document.createElement('style');"
            " style.textContent = 'body { color: red }'; document.head.appendChild(style); }"
        )
    assert watched.csp_violations()
