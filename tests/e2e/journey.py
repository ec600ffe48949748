"""One browser walking idp's hosted sign-in, as a person does, for an ``Application``.

Steps are told apart by the form's hidden ``step`` field; what a person reads and
presses (labels, buttons, the guides' messages) is found by its text. Every page
``shoot`` is asked for is checked — strict CSP kept, no inline script or style,
every control labelled, every field error tied to its field — and photographed at
phone and desktop width the first time it is met in the run.
"""

import re

from tests.e2e.application import PASSWORD
from tests.helpers import callback_params
from tests.integration.journey import Authenticator
from tests.smtp import extract_code

CODE_SENT = "Verification code has been sent. Please copy it to the input box below."
CODE_VERIFIED = "The code has been verified. You can now continue."
INVALID_CREDENTIALS = "Invalid email and password combination."
MET = re.compile(r"(^|\s)met(\s|$)")
UNMET = re.compile(r"(^|\s)unmet(\s|$)")
# The visible form controls, with their labels and ARIA ties, as the page has them.
CONTROLS = """() => Array.from(document.querySelectorAll("input, select, textarea"))
  .filter(el => el.type !== "hidden" && el.checkVisibility())
  .map(el => ({
    id: el.id,
    labels: Array.from(el.labels || []).map(label => label.innerText.trim()),
    invalid: el.getAttribute("aria-invalid"),
    describedBy: (el.getAttribute("aria-describedby") || "").split(/\\s+/).filter(Boolean),
  }))"""
FIELD_ERRORS = """() => Array.from(document.querySelectorAll(".field-error"))
  .map(el => ({id: el.id, text: el.innerText.trim()}))"""
# Pages already photographed in this run: met again in a later journey, they are only checked.
PHOTOGRAPHED = set()


def _expect():
    """Playwright's auto-waiting assertions (imported late: the package may be missing)."""
    from playwright.sync_api import expect

    return expect


class SignIn:
    """A ``WatchedPage`` walking the hosted sign-in of ``application``; mail from ``smtp``."""

    def __init__(self, watched, application, smtp):
        self.watched = watched
        self.page = watched.page
        self.application = application
        self.smtp = smtp
        self.expect = _expect()

    # -- looking and acting ------------------------------------------------------------

    def open(self):
        """Start at the application's authorization request; lands on the email step."""
        url, self.query, self.verifier = self.application.authorize_request()
        self.page.goto(url)
        return self

    def step(self):
        """The journey step shown (its hidden ``step`` field), or None on any other page."""
        field = self.page.locator("input[name=step]")
        return field.first.input_value() if field.count() else None

    def at(self, step):
        """Assert the page shows ``step`` (and has loaded: its styles and scripts apply)."""
        self.expect(self.page.locator("input[name=step]").first).to_have_value(step)
        self.page.wait_for_load_state()

    def field(self, label):
        """The form control a person finds by its label."""
        return self.page.get_by_label(label, exact=True)

    def fill(self, label, value):
        """Type ``value`` into the field labelled ``label``."""
        self.field(label).fill(value)

    def button(self, name):
        """The button of that accessible name."""
        return self.page.get_by_role("button", name=name, exact=True)

    def press(self, name):
        """Press the button of that name."""
        self.button(name).click()

    def says(self, text):
        """Assert the page shows ``text``."""
        self.expect(self.page.get_by_text(text).first).to_be_visible()

    def shoot(self, name):
        """Check the page; photograph it at phone and desktop width if not done yet."""
        self.check_page()
        if name not in PHOTOGRAPHED:
            PHOTOGRAPHED.add(name)
            self.watched.screenshots(name)

    # -- what every page must keep -----------------------------------------------------

    def check_page(self):
        """Strict CSP kept, no script error, every control labelled, every error tied."""
        assert self.watched.csp_violations() == [], self.watched.console_errors
        assert self.watched.page_errors == []
        # Chrome's autofill leaves an empty style attribute on password forms: not ours.
        inline = self.page.locator('script:not([src]), [style]:not([style=""])')
        assert inline.count() == 0, inline.evaluate_all("els => els.map(el => el.outerHTML)")
        controls = self.page.evaluate(CONTROLS)
        for control in controls:
            assert control["labels"], f"control #{control['id']} has no label"
            found = self.field(control["labels"][0]).evaluate_all("els => els.map(el => el.id)")
            assert control["id"] in found, (control, found)
        for error in self.page.evaluate(FIELD_ERRORS):
            tied = [c for c in controls if error["id"] in c["describedBy"]]
            assert error["text"] and tied, f"field error {error} is tied to no field"
            assert all(c["invalid"] == "true" for c in tied), tied
        for button in self.page.get_by_role("button").all():
            assert button.inner_text().strip(), "a button without a name"

    def field_error(self, label, text):
        """Assert ``text`` is the error of the field ``label``: aria-invalid, aria-describedby."""
        field = self.field(label)
        self.expect(field).to_have_attribute("aria-invalid", "true")
        ids = (field.get_attribute("aria-describedby") or "").split()
        texts = [self.page.locator(f"#{id_}").inner_text() for id_ in ids]
        assert any(text in described for described in texts), (ids, texts)

    def failure(self, code, title, text):
        """Assert the journey ended on the message page of error ``code``."""
        message = self.page.locator("[data-error-code]")
        self.expect(message).to_have_attribute("data-error-code", code)
        self.expect(message).to_contain_text(text)
        self.expect(self.page.get_by_role("heading", level=1)).to_have_text(title)
        self.expect(self.page.locator("input[name=step]")).to_have_count(0)

    # -- the steps of the guides -------------------------------------------------------

    def identify(self, email):
        """Email address, Continue."""
        self.at("identify")
        self.shoot("identify")
        self.fill("Email address", email)
        self.press("Continue")

    def enter_password(self, password=PASSWORD):
        """Password, Sign in (the email is shown read-only above it)."""
        self.at("password")
        self.shoot("password")
        self.fill("Password", password)
        self.press("Sign in")

    def request_code(self, email):
        """ "First time login / Forgot password?", then "Send verification code"."""
        self.at("password")
        self.shoot("password")
        self.press("First time login / Forgot password?")
        self.at("send_code")
        self.says(email)
        self.shoot("send-code")
        self.press("Send verification code")
        self.at("verify_code")
        self.says(CODE_SENT)
        self.shoot("verify-code")

    def enter_code(self, code):
        """Verification code, "Verify code"."""
        self.fill("Verification code", code)
        self.press("Verify code")

    def prove_email(self, email):
        """From the password step to "The code has been verified", code read from the mail."""
        self.request_code(email)
        self.enter_code(self.emailed_code(email))
        self.at("code_verified")
        self.says(CODE_VERIFIED)
        self.shoot("code-verified")
        self.press("Continue")

    def authenticator_code(self, phone):
        """The code the authenticator app shows, Verify."""
        self.at("second_factor")
        self.shoot("authenticator-code")
        self.fill("Enter your code", phone.code())
        self.press("Verify")

    def choose_password(self, password):
        """New password and its confirmation, typed key by key: the rules turn "met" live."""
        self.at("set_password")
        rules = self.page.locator("#password-rules li[data-pattern]")
        assert rules.count() > 1
        self.shoot("set-password")
        for rule in rules.all():  # nothing typed: every rule is neutral
            self.expect(rule).not_to_have_class(MET)
            self.expect(rule).not_to_have_class(UNMET)
        self.field("New password").press_sequentially(password[:3])
        self.expect(self.page.locator("#password-rules li.unmet").first).to_be_visible()
        self.field("New password").press_sequentially(password[3:])
        self.field("Confirm new password").press_sequentially(password)
        for rule in rules.all():
            self.expect(rule).to_have_class(MET)
        self.shoot("set-password-rules-met")
        self.press("Continue")

    def enrol(self):
        """The QR code, the key under "Still having trouble?", the app's first code, and the
        recovery codes; returns the phone and the codes."""
        self.at("totp_enrol")
        self.expect(self.page.locator("figure.qr svg")).to_be_visible()
        self.shoot("authenticator-qr")
        self.page.get_by_text("Still having trouble?").click()
        secret = self.page.locator("#totp-secret").inner_text()
        self.shoot("authenticator-key")
        self.press("Continue")
        phone = Authenticator("".join(secret.split()))
        self.at("totp_confirm")
        self.shoot("authenticator-confirm")
        self.fill("Enter your code", phone.code())
        self.press("Verify")
        self.at("recovery_codes")
        codes = self.page.locator("#recovery-codes li").all_inner_texts()
        self.shoot("recovery-codes")
        self.press("I have saved my recovery codes")
        return phone, codes

    def activate(self, email, password):
        """The first-time sign-in of an invited account, to the application and its code;
        returns the phone and the recovery codes."""
        self.open()
        self.identify(email)
        self.prove_email(email)
        self.choose_password(password)
        phone, codes = self.enrol()
        self.back_at_application()
        return phone, codes

    # -- back at the application -------------------------------------------------------

    def emailed_code(self, email):
        """The code of the next verification mail to ``email`` (other mails are passed over)."""
        for _ in range(10):
            message = self.smtp.wait_for_message(email)
            if "verification code" in message["Subject"]:
                return extract_code(message)
        raise AssertionError(f"no verification code mail to {email}")

    def back_at_application(self):
        """Wait for the redirect to the application; its ``code`` (state and iss checked)."""
        self.page.wait_for_url(f"{self.application.redirect_uri}?*")
        params = callback_params(self.page.url)
        assert params["state"] == self.query["state"]
        assert params["iss"] == self.application.issuer  # RFC 9207
        return params["code"]

    def tokens(self):
        """Redeem the application's code over HTTP: the ID token's claims and UserInfo."""
        tokens = self.application.redeem(self.back_at_application(), self.verifier)
        claims = self.application.id_token_claims(tokens["id_token"], self.query["nonce"])
        return claims, self.application.userinfo(tokens["access_token"])
