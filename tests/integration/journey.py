"""Driving the hosted sign-in through its real pages: which step is shown, and filling it.

Codes come from where a person gets them: the emailed code from the real SMTP
server, the authenticator code from pyotp with the secret shown on the page.
"""

import re
import time

import pyotp

from tests.helpers import parse_forms
from tests.integration.realm import REDIRECT_URI


def step_of(page):
    """The journey step a page shows (its hidden ``step`` input), or None."""
    for form in parse_forms(page.text):
        if "step" in form["inputs"]:
            return form["inputs"]["step"]
    return None


class Authenticator:
    """The user's phone: codes for the secret it scanned, never the same time step twice."""

    def __init__(self, secret):
        self.totp = pyotp.TOTP(secret)
        self.used = set()

    def code(self):
        """A code for a step not used yet: now, or the next one (accepted within ±1 step)."""
        now = time.time()
        for offset in (0, 30, -30):
            step = int((now + offset) // 30)
            if step not in self.used and step >= max(self.used, default=-1):
                self.used.add(step)
                return self.totp.at(now + offset)
        raise AssertionError("no unused TOTP step left in the ±1 window")


class Journey:
    """One browser walking the journey of one realm."""

    def __init__(self, realm, browser, mailbox=None):
        self.realm = realm
        self.browser = browser
        self.mailbox = mailbox
        self.page = None

    def start(self, **params):
        """Open an authorization request; lands on the first journey page."""
        url, self.query, self.verifier = self.realm.authorize_url(**params)
        self.page = self.browser.follow(self.browser.get(url), REDIRECT_URI)
        return self

    @property
    def step(self):
        """The step shown now."""
        return None if isinstance(self.page, str) else step_of(self.page)

    def submit(self, fields=None, button=None, form_index=0):
        """Submit the current page's form and follow idp's redirects."""
        response = self.browser.submit(self.page, fields, button, form_index)
        self.last_status = response.status_code
        self.page = self.browser.follow(response, REDIRECT_URI)
        return self

    def action(self, name):
        """Press a secondary button (``name`` is the button's ``action`` value)."""
        forms = parse_forms(self.page.text)
        index = next(i for i, f in enumerate(forms) if ("action", name) in f["buttons"])
        return self.submit(button=("action", name), form_index=index)

    def expect(self, step):
        """Assert the page shows ``step``."""
        assert self.step == step, f"expected {step}, got {self.step}: {self._text()[:600]}"
        return self

    def _text(self):
        return self.page if isinstance(self.page, str) else self.page.text

    def totp_secret(self):
        """The secret the enrolment page shows for manual entry."""
        match = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', self.page.text)
        assert match, "no secret on the enrolment page"
        return match.group(1).replace(" ", "")

    def recovery_codes(self):
        """The recovery codes shown once after enrolment."""
        return re.findall(r"<li><code>([a-z0-9-]+)</code></li>", self.page.text)

    def code_at_client(self):
        """The authorization code the client received."""
        from tests.helpers import callback_params

        assert isinstance(self.page, str), f"not back at the client: {self._text()[:600]}"
        return callback_params(self.page)["code"]

    def tokens(self):
        """Redeem the code the client received."""
        response = self.realm.redeem(self.code_at_client(), self.verifier)
        assert response.status_code == 200, response.text
        return response.json()
