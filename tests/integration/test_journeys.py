"""The journeys of the user guides through real HTTP, with codes read from a real SMTP server.

First-time sign-in (Fluxys "Creating Your Single Sign-On Account"), returning
sign-in, forgotten password, recovery codes, lock-out and the account states of the
Flexopus error table.
"""

import time
import uuid

import pytest
from sqlalchemy import update

from idp.extensions import db
from idp.models import EmailCode
from idp.models import User
from idp.services import lifecycle
from idp.services import tenants
from tests.helpers import Browser
from tests.helpers import callback_params
from tests.integration.journey import Authenticator
from tests.integration.journey import Journey
from tests.integration.realm import REDIRECT_URI
from tests.integration.realm import Realm
from tests.integration.test_code_flow import decode_id_token
from tests.smtp import extract_code

NEW_PASSWORD = "Fresh-Start-2026!"


@pytest.fixture
def mail(app, smtp_server, monkeypatch):
    """idp delivers to a real SMTP server for this test."""
    monkeypatch.setitem(app.config, "SMTP_URL", smtp_server.url)
    return smtp_server


@pytest.fixture
def realm(server, factory, browser):
    """A realm whose seeded user already has an authenticator (returning users)."""
    return Realm(server, factory, browser)


def invite(app, realm, email=None, **kwargs):
    """An invited account, as ``idp user invite`` makes it."""
    email = email or f"new-{uuid.uuid4().hex[:8]}@example.com"
    with app.app_context():
        lifecycle.invite(tenants.query_tenant(realm.tenant.slug), email, **kwargs)
    return email


def emailed_code(mail, email):
    """The code of the next verification mail to ``email`` (other mails are passed over)."""
    for _ in range(10):
        message = mail.wait_for_message(email)
        if "verification code" in message["Subject"]:
            return extract_code(message)
    raise AssertionError(f"no verification code mail to {email}")


def age_codes(app, email, seconds=3600):
    """Move the address's codes into the past, as if the resend cooldown had passed."""
    with app.app_context():
        rows = db.session.execute(db.select(EmailCode).where(EmailCode.email == email)).scalars()
        for row in rows:
            row.created_at -= seconds
            row.expires_at -= seconds
        db.session.commit()


def activate(journey, mail, email, password=NEW_PASSWORD):
    """Walk the first-time sign-in to the end; returns the user's phone."""
    journey.expect("identify").submit({"email": email}).expect("password")
    journey.action("recover").expect("send_code").submit().expect("verify_code")
    code = emailed_code(mail, email)
    journey.submit({"code": code}).expect("code_verified").submit().expect("set_password")
    journey.submit({"new_password": password, "confirm_password": password})
    journey.expect("totp_enrol")
    assert (
        "<svg" in journey.page.text and "style=" not in journey.page.text.split("<svg", 1)[1][:4000]
    )
    phone = Authenticator(journey.totp_secret())
    journey.submit().expect("totp_confirm").submit({"code": phone.code()})
    journey.expect("recovery_codes")
    codes = journey.recovery_codes()
    journey.submit()
    return phone, codes


def test_first_time_sign_in_from_invitation_to_tokens(app, realm, browser, mail):
    email = invite(app, realm)
    welcome = mail.wait_for_message(email)
    assert "Test Org" in welcome.get_body(preferencelist=("plain",)).get_content()
    journey = Journey(realm, browser, mail).start()
    phone, codes = activate(journey, mail, email)
    assert len(codes) == 10 and len(set(codes)) == 10
    tokens = journey.tokens()
    claims = decode_id_token(realm, tokens["id_token"]).claims
    assert set(claims["amr"]) >= {"otp", "mfa", "pwd"}
    assert realm.userinfo(tokens["access_token"]).json()["email"] == email
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.email == email)).scalar_one()
        assert user.state == "active" and user.email_verified
        assert phone.totp.secret not in (user.totp_secret or ""), "secret encrypted at rest"
    mails = [d.message["Subject"] for d in mail.deliveries if email in d.rcpt_tos]
    assert len(mails) >= 4, mails  # invitation, code, password changed, authenticator


def test_returning_sign_in_needs_password_and_authenticator(app, realm, browser, mail, server):
    email = invite(app, realm, welcome_email=False)
    phone, _ = activate(Journey(realm, browser, mail).start(), mail, email)
    again = Journey(realm, Browser(server)).start()
    again.expect("identify").submit({"email": email}).expect("password")
    again.submit({"password": NEW_PASSWORD}).expect("second_factor")
    again.submit({"code": "000000"}).expect("second_factor")
    assert again.last_status == 400
    again.submit({"code": phone.code()})
    assert "mfa" in decode_id_token(realm, again.tokens()["id_token"]).claims["amr"]


def test_a_totp_code_is_never_accepted_twice(app, realm, browser, mail, server):
    email = invite(app, realm, welcome_email=False)
    phone, _ = activate(Journey(realm, browser, mail).start(), mail, email)
    code = phone.code()
    first = Journey(realm, Browser(server)).start()
    first.submit({"email": email}).submit({"password": NEW_PASSWORD}).submit({"code": code})
    first.code_at_client()
    second = Journey(realm, Browser(server)).start()
    second.submit({"email": email}).submit({"password": NEW_PASSWORD}).submit({"code": code})
    second.expect("second_factor")
    assert "not correct" in second.page.text


def test_the_last_step_answers_with_the_code_and_the_session(app, realm, browser, mail, server):
    """The authenticator code's POST ends the sign-in itself: one 303 to the client with the
    code, the state and the issuer, and the new SSO session's cookie on that same answer."""
    email = invite(app, realm, welcome_email=False)
    phone, _ = activate(Journey(realm, browser, mail).start(), mail, email)
    journey = Journey(realm, Browser(server)).start(state="s-123")
    journey.submit({"email": email}).submit({"password": NEW_PASSWORD}).expect("second_factor")
    answer = journey.browser.submit(journey.page, {"code": phone.code()})
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith(REDIRECT_URI)
    params = callback_params(answer.headers["Location"])
    assert params["state"] == "s-123" and params["iss"] == realm.issuer
    assert "idp_session=" in answer.headers.get("Set-Cookie", "")
    response = realm.redeem(params["code"], journey.verifier)
    assert response.status_code == 200, response.text
    # The cookie set on that answer is the SSO session: the next request needs nobody.
    again = Journey(realm, journey.browser).start()
    assert isinstance(again.page, str) and "code" in callback_params(again.page)


def test_forgot_password_with_authenticator(app, realm, browser, mail, server):
    email = invite(app, realm, welcome_email=False)
    phone, _ = activate(Journey(realm, browser, mail).start(), mail, email)
    age_codes(app, email)
    journey = Journey(realm, Browser(server), mail).start()
    journey.submit({"email": email}).action("recover").submit().expect("verify_code")
    journey.submit({"code": emailed_code(mail, email)}).submit()
    journey.expect("second_factor").submit({"code": phone.code()}).expect("set_password")
    journey.submit({"new_password": "Another-Pass-99", "confirm_password": "Another-Pass-99"})
    journey.code_at_client()
    old = Journey(realm, Browser(server)).start()
    old.submit({"email": email}).submit({"password": NEW_PASSWORD}).expect("password")
    assert "Invalid email and password combination." in old.page.text
    # The session of the first browser ended with the password change.
    url, _, _ = realm.authorize_url(prompt="none")
    assert "login_required" in browser.get(url).headers["Location"]


def test_forgot_password_never_says_whether_the_account_exists(app, realm, mail, server):
    known = invite(app, realm, welcome_email=False)
    pages = []
    for email in (known, f"stranger-{uuid.uuid4().hex[:6]}@example.com"):
        journey = Journey(realm, Browser(server), mail).start()
        journey.submit({"email": email}).action("recover").submit().expect("verify_code")
        journey.submit({"code": "123456"})
        pages.append((journey.last_status, journey.page.text.replace(email, "EMAIL")))
    mail.wait_for_message(known)
    assert all(known in d.rcpt_tos or "stranger" not in str(d.rcpt_tos) for d in mail.deliveries)
    assert pages[0][0] == pages[1][0] == 400
    strip = [
        "\n".join(line for line in text.splitlines() if "csrf_token" not in line)
        for _, text in pages
    ]
    assert strip[0] == strip[1]


def test_expired_code_then_send_new_code(app, realm, browser, mail):
    email = invite(app, realm, welcome_email=False)
    journey = Journey(realm, browser, mail).start()
    journey.submit({"email": email}).action("recover").submit().expect("verify_code")
    old_code = emailed_code(mail, email)
    age_codes(app, email, seconds=400)
    journey.submit({"code": old_code}).expect("verify_code")
    assert "expired" in journey.page.text
    journey.action("resend").expect("verify_code")
    new_code = emailed_code(mail, email)
    journey.submit({"code": new_code}).expect("code_verified")


def test_five_wrong_codes_lock_the_code(app, realm, browser, mail):
    email = invite(app, realm, welcome_email=False)
    journey = Journey(realm, browser, mail).start()
    journey.submit({"email": email}).action("recover").submit().expect("verify_code")
    code = emailed_code(mail, email)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        journey.submit({"code": wrong})
    journey.submit({"code": code}).expect("verify_code")
    assert "Too many wrong codes" in journey.page.text


def test_recovery_code_stands_in_for_the_authenticator_once(app, realm, browser, mail, server):
    email = invite(app, realm, welcome_email=False)
    _, codes = activate(Journey(realm, browser, mail).start(), mail, email)
    journey = Journey(realm, Browser(server)).start()
    journey.submit({"email": email}).submit({"password": NEW_PASSWORD}).expect("second_factor")
    journey.action("use_recovery").submit({"code": codes[0].upper()}).expect("reenrol_offer")
    assert "9 recovery codes left" in journey.page.text
    journey.submit(button=("choice", "later")).code_at_client()
    reuse = Journey(realm, Browser(server)).start()
    reuse.submit({"email": email}).submit({"password": NEW_PASSWORD}).action("use_recovery")
    reuse.submit({"code": codes[0]}).expect("second_factor")
    assert "not valid or was already used" in reuse.page.text


def test_recovery_code_then_reenrol(app, realm, browser, mail, server):
    email = invite(app, realm, welcome_email=False)
    _, codes = activate(Journey(realm, browser, mail).start(), mail, email)
    journey = Journey(realm, Browser(server)).start()
    journey.submit({"email": email}).submit({"password": NEW_PASSWORD}).action("use_recovery")
    journey.submit({"code": codes[1]}).submit(button=("choice", "reenrol")).expect("totp_enrol")
    url, _, _ = realm.authorize_url(prompt="none")
    assert "login_required" in browser.get(url).headers["Location"], "the old phone's session ends"
    phone = Authenticator(journey.totp_secret())
    journey.submit().submit({"code": phone.code()}).expect("recovery_codes")
    journey.submit().code_at_client()


def test_wrong_passwords_lock_out_but_recovery_still_works(app, realm, browser, mail, server):
    journey = Journey(realm, browser).start()
    journey.submit({"email": realm.email})
    for _ in range(5):
        journey.submit({"password": "wrong-password"})
    journey.submit({"password": realm.password}).expect("password")
    assert "Too many attempts" in journey.page.text
    recover = Journey(realm, Browser(server), mail).start()
    recover.submit({"email": realm.email}).action("recover").submit().expect("verify_code")
    recover.submit({"code": emailed_code(mail, realm.email)}).expect("code_verified")


def test_steps_cannot_be_skipped(app, realm, browser, mail):
    email = invite(app, realm, welcome_email=False)
    journey = Journey(realm, browser, mail).start()
    journey.submit({"email": email}).action("recover").submit().expect("verify_code")
    forged = browser.http.post(
        journey.page.url,
        data={
            "csrf_token": "x",
            "step": "set_password",
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
        allow_redirects=False,
    )
    assert forged.status_code == 400
    page = browser.http.get(journey.page.url)
    assert 'value="verify_code"' in page.text


def test_state_messages_only_after_proof(app, realm, browser, server):
    with app.app_context():
        db.session.execute(update(User).where(User.email == realm.email).values(state="disabled"))
        db.session.commit()
    journey = Journey(realm, browser).start()
    journey.submit({"email": realm.email}).submit({"password": "wrong-one"})
    assert "Invalid email and password combination." in journey.page.text
    journey.submit({"password": realm.password})
    assert journey.last_status == 403
    assert 'data-error-code="account_disabled"' in journey.page.text


def test_access_expired_message(app, realm, browser):
    with app.app_context():
        db.session.execute(
            update(User)
            .where(User.email == realm.email)
            .values(access_expires_at=int(time.time()) - 10)
        )
        db.session.commit()
    journey = Journey(realm, browser).start()
    journey.submit({"email": realm.email}).submit({"password": realm.password})
    assert 'data-error-code="access_expired"' in journey.page.text


def test_deactivated_after_the_activation_deadline(app, realm, browser, mail):
    email = invite(app, realm, welcome_email=False)
    with app.app_context():
        db.session.execute(
            update(User)
            .where(User.email == email)
            .values(activation_deadline=int(time.time()) - 10)
        )
        db.session.commit()
    journey = Journey(realm, browser, mail).start()
    journey.submit({"email": email}).action("recover").submit()
    journey.submit({"code": emailed_code(mail, email)})
    assert 'data-error-code="account_deactivated"' in journey.page.text


def test_reveal_mode_tells_unknown_accounts_at_the_email_step(app, server, factory, browser):
    realm = Realm(server, factory, browser)
    with app.app_context():
        tenants.update_tenant(tenants.query_tenant(realm.tenant.slug), reveal_account_state=True)
    journey = Journey(realm, browser).start()
    journey.submit({"email": "nobody@example.com"}).expect("identify")
    assert "An account could not be found for the provided user ID." in journey.page.text


def test_admin_reset_mfa_forces_a_new_enrolment(app, realm, browser):
    with app.app_context():
        lifecycle.reset_mfa(tenants.query_tenant(realm.tenant.slug), realm.email)
    journey = Journey(realm, browser).start()
    journey.submit({"email": realm.email}).submit({"password": realm.password}).expect("totp_enrol")


def test_invited_account_cannot_use_an_admin_set_password(app, realm, browser, factory):
    email, password = factory.user(realm.tenant, active=False, totp_secret=None)
    journey = Journey(realm, browser).start()
    journey.submit({"email": email}).submit({"password": password}).expect("password")


def test_the_wizard_resumes_where_the_user_stopped(app, realm, browser, mail):
    """Closing the tab after the code step: reopening the sign-in continues at the next step."""
    email = invite(app, realm, welcome_email=False)
    journey = Journey(realm, browser, mail).start()
    journey.submit({"email": email}).action("recover").submit()
    journey.submit({"code": emailed_code(mail, email)}).expect("code_verified")
    reopened = browser.http.get(f"{realm.issuer}/login")
    assert 'value="code_verified"' in reopened.text
    assert "Step 4 of 5" in reopened.text
