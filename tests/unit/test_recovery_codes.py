"""Recovery codes: ten distinct single-use codes, stored only as keyed hashes."""

import re
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import RecoveryCode
from idp.services import crypto
from idp.services import recovery_codes
from idp.services import tenants
from idp.services import users

DISPLAY = re.compile(rf"[{recovery_codes.ALPHABET}]{{5}}-[{recovery_codes.ALPHABET}]{{5}}")


def make_account():
    """A fresh tenant and active user (inside an app context)."""
    tenant = tenants.create_tenant(f"t-{uuid.uuid4().hex[:10]}", "Test Org")
    user = users.create_user(tenant, f"u-{uuid.uuid4().hex[:8]}@example.com", active=True)
    return SimpleNamespace(tenant=tenant, user=user)


@pytest.fixture
def account(app):
    """A user with a fresh set of codes; ``codes`` is what was shown to them."""
    with app.app_context():
        account = make_account()
        account.codes = recovery_codes.generate(account.tenant, account.user)
        yield account


def use(account, code):
    return recovery_codes.use(account.tenant, account.user, code)


def test_ten_distinct_codes_in_the_display_form(account):
    assert len(account.codes) == 10
    assert len(set(account.codes)) == 10
    for code in account.codes:
        assert DISPLAY.fullmatch(code), code
    assert recovery_codes.remaining(account.tenant, account.user) == 10


def test_the_alphabet_has_no_look_alikes():
    assert not set("01oli") & set(recovery_codes.ALPHABET)


def test_each_code_works_exactly_once(account):
    for left, code in zip(range(9, -1, -1), account.codes, strict=True):
        assert use(account, code)
        assert not use(account, code), "a spent code must be refused"
        assert recovery_codes.remaining(account.tenant, account.user) == left


@pytest.mark.parametrize(
    "variant",
    [
        lambda c: c.upper(),
        lambda c: c.replace("-", ""),
        lambda c: c.replace("-", " "),
        lambda c: f"  {c[:3]} {c[3:8].upper()}-{c[8:]}\t",
        lambda c: "-".join(c.replace("-", "")),
    ],
)
def test_case_spaces_and_dashes_do_not_matter(account, variant):
    assert use(account, variant(account.codes[0]))
    assert not use(account, account.codes[0])


@pytest.mark.parametrize(
    "code",
    ["", "   ", "abcde", "23456-7892", "23456-789abc", "x" * 5000, None, "0oli1-0oli1"],
)
def test_malformed_input_is_refused(account, code):
    assert not use(account, code)
    assert recovery_codes.remaining(account.tenant, account.user) == 10


def test_regenerating_invalidates_the_old_set(account):
    assert use(account, account.codes[0])
    fresh = recovery_codes.generate(account.tenant, account.user)
    assert not set(fresh) & set(account.codes)
    assert recovery_codes.remaining(account.tenant, account.user) == 10
    for code in account.codes[1:]:
        assert not use(account, code)
    assert use(account, fresh[0])


def test_only_keyed_hashes_are_stored(account):
    stored = db.session.execute(
        select(RecoveryCode.code_hash).where(RecoveryCode.user_id == account.user.id)
    ).scalars()
    stored = set(stored)
    normalized = [code.replace("-", "") for code in account.codes]
    assert stored == {crypto.keyed_hash("recovery", code) for code in normalized}
    for code in account.codes + normalized:
        assert all(code not in value for value in stored)


def test_codes_belong_to_one_user_of_one_tenant(account):
    other = make_account()
    assert not recovery_codes.use(other.tenant, other.user, account.codes[0])
    assert not recovery_codes.use(other.tenant, account.user, account.codes[0])
    with pytest.raises(ValueError):
        recovery_codes.generate(other.tenant, account.user)
    assert use(account, account.codes[0])


def test_clear_removes_every_code(account):
    recovery_codes.clear(account.tenant, account.user)
    assert recovery_codes.remaining(account.tenant, account.user) == 0
    assert not use(account, account.codes[0])
