"""Journey steps alone, each with a hand-built transaction (authentik's stage tests).

No HTTP: a step gets the transaction's data and a form, and must answer the right
outcome — and the plan must pick the right next step from the facts it returns.
"""

import time
import uuid

import pyotp
import pytest

from idp.extensions import db
from idp.journey import plan
from idp.journey.outcomes import Challenge
from idp.journey.outcomes import Failure
from idp.journey.outcomes import Success
from idp.journey.steps import identify
from idp.journey.steps import password
from idp.journey.steps import second_factor
from idp.journey.steps import set_password
from idp.journey.steps import totp_confirm
from idp.journey.steps import verify_code
from idp.services import crypto
from idp.services import email_codes
from idp.services import recovery_codes
from idp.services import tenants
from idp.services import users

PASSWORD = "Correct-Horse-9"


@pytest.fixture
def ctx(app):
    """An app and request context (the steps read config and the throttle store)."""
    with app.test_request_context():
        yield app


@pytest.fixture
def tenant(ctx):
    return tenants.create_tenant(f"u-{uuid.uuid4().hex[:10]}", "Unit Org")


@pytest.fixture
def user(tenant):
    secret = pyotp.random_base32()
    row = users.create_user(
        tenant,
        f"u-{uuid.uuid4().hex[:6]}@example.com",
        password=PASSWORD,
        totp_secret=secret,
        active=True,
    )
    row.plain_secret = secret
    return row


def signin(user, **facts):
    return {"email": user.email, "flow": "signin", **facts}


def test_identify_accepts_any_plausible_email_and_starts_the_sign_in_flow(tenant):
    outcome = identify.submit(tenant, {}, {"email": "  Someone@Example.COM "}, None)
    assert outcome == Success({"email": "someone@example.com", "flow": "signin"})
    assert isinstance(identify.submit(tenant, {}, {"email": "not-an-email"}, None), Challenge)


def test_password_success_proves_the_user(tenant, user):
    outcome = password.submit(tenant, signin(user), {"password": PASSWORD}, None)
    assert isinstance(outcome, Success)
    assert outcome.facts["user_id"] == user.id and outcome.facts["amr"] == ["pwd"]


def test_password_failure_is_one_message_for_known_and_unknown(tenant, user):
    known = password.submit(tenant, signin(user), {"password": "nope"}, None)
    unknown = password.submit(tenant, {"email": "ghost@example.com"}, {"password": "nope"}, None)
    assert isinstance(known, Challenge) and isinstance(unknown, Challenge)
    assert str(known.message) == str(unknown.message)


def test_password_lock_out_after_five_failures(tenant, user):
    for _ in range(5):
        password.submit(tenant, signin(user), {"password": "nope"}, None)
    locked = password.submit(tenant, signin(user), {"password": PASSWORD}, None)
    assert isinstance(locked, Challenge) and "Too many attempts" in str(locked.message)


def test_disabled_account_is_told_only_after_the_password(tenant, user):
    user.state = "disabled"
    db.session.commit()
    wrong = password.submit(tenant, signin(user), {"password": "nope"}, None)
    assert isinstance(wrong, Challenge)
    right = password.submit(tenant, signin(user), {"password": PASSWORD}, None)
    assert isinstance(right, Failure) and right.code == "account_disabled"


def test_password_link_switches_to_recovery(tenant, user):
    outcome = password.submit(tenant, signin(user), {"action": "recover"}, None)
    assert outcome == Success({"flow": "recover"})


def test_second_factor_accepts_the_current_code_once(tenant, user):
    data = signin(user, password_ok=True, user_id=user.id, amr=["pwd"])
    code = pyotp.TOTP(user.plain_secret).now()
    outcome = second_factor.submit(tenant, data, {"code": code}, user)
    assert isinstance(outcome, Success) and set(outcome.facts["amr"]) == {"pwd", "otp", "mfa"}
    again = second_factor.submit(tenant, data, {"code": code}, user)
    assert isinstance(again, Challenge) and "code" in again.errors


def test_second_factor_accepts_a_recovery_code(tenant, user):
    codes = recovery_codes.generate(tenant, user)
    data = signin(user, password_ok=True, user_id=user.id, use_recovery=True)
    outcome = second_factor.submit(tenant, data, {"code": codes[3]}, user)
    assert outcome.facts["recovery_used"] is True and outcome.facts["totp_ok"] is True


def test_verify_code_proves_the_address(tenant, user):
    issued = email_codes.issue(tenant, user.email, "recover")
    data = {"email": user.email, "flow": "recover", "code_sent": True}
    assert isinstance(verify_code.submit(tenant, data, {"code": "999999"}, None), Challenge)
    outcome = verify_code.submit(tenant, data, {"code": issued.code}, None)
    assert outcome.facts["email_verified"] and outcome.facts["user_id"] == user.id


def test_set_password_enforces_the_policy_and_activates(tenant, user):
    user.state = "invited"
    db.session.commit()
    data = {"email": user.email, "flow": "recover", "user_id": user.id, "verified_ack": True}
    mismatch = set_password.submit(
        tenant, data, {"new_password": "Brand-New-Pass-1", "confirm_password": "other"}, user
    )
    assert isinstance(mismatch, Challenge) and "new_password" in mismatch.errors
    ok = set_password.submit(
        tenant,
        data,
        {"new_password": "Brand-New-Pass-1", "confirm_password": "Brand-New-Pass-1"},
        user,
    )
    assert isinstance(ok, Success)
    db.session.refresh(user)
    assert user.state == "active" and user.password_changed_at <= time.time()


def test_totp_confirm_stores_the_secret_only_when_a_code_matches(tenant, user):
    user.totp_secret = None
    db.session.commit()
    secret = pyotp.random_base32()
    data = {"enrolling": True, "enrol_seen": True, "pending_totp": crypto.encrypt(secret)}
    assert isinstance(totp_confirm.submit(tenant, data, {"code": "123456"}, user), Challenge)
    assert user.totp_secret is None
    outcome = totp_confirm.submit(tenant, data, {"code": pyotp.TOTP(secret).now()}, user)
    assert outcome.facts["enrolled"] and outcome.facts["recovery_pending"]
    assert user.has_totp


def test_plan_for_a_new_user_in_recovery(tenant, user):
    user.totp_secret = None
    data = {"email": user.email, "flow": "recover"}
    names = []
    facts = [
        {"code_sent": True},
        {"email_verified": True, "user_id": user.id},
        {"verified_ack": True},
        {"password_set": True},
        {"enrol_seen": True},
    ]
    for fact in facts:
        names.append(plan.current_step(data, user).NAME)
        data.update(fact)
    data["enrolling"] = True
    data["enrol_seen"] = False
    names.append(plan.current_step(data, user).NAME)
    assert names == [
        "send_code",
        "verify_code",
        "code_verified",
        "set_password",
        "totp_enrol",
        "totp_enrol",
    ]


def test_plan_is_not_complete_without_the_second_factor(tenant, user):
    data = signin(user, password_ok=True, user_id=user.id)
    assert plan.current_step(data, user).NAME == "second_factor"
    assert not plan.complete(data, user)
    data["totp_ok"] = True
    assert plan.current_step(data, user) is None and plan.complete(data, user)
