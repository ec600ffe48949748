"""Secrets at rest: versioned encryption, key rotation, tamper detection, keyed hashes."""

import base64
import hashlib

import pytest
from cryptography.fernet import Fernet

from idp.config import ConfigError
from idp.config import load_config
from idp.services import crypto


@pytest.fixture
def ctx(app):
    """An app context whose config changes are undone after the test."""
    with app.app_context():
        yield app


def test_round_trip_with_the_derived_key(ctx):
    ciphertext = crypto.encrypt("JBSWY3DPEHPK3PXP")
    assert ciphertext.startswith("v1:")
    assert "JBSWY3DPEHPK3PXP" not in ciphertext
    assert crypto.decrypt(ciphertext) == "JBSWY3DPEHPK3PXP"


def test_each_encryption_is_fresh(ctx):
    assert crypto.encrypt("same") != crypto.encrypt("same")


def test_non_ascii_round_trips(ctx):
    assert crypto.decrypt(crypto.encrypt("clé ✓")) == "clé ✓"


def test_tampered_token_is_refused(ctx):
    ciphertext = crypto.encrypt("JBSWY3DPEHPK3PXP")
    middle = len(ciphertext) // 2
    flipped = "A" if ciphertext[middle] != "A" else "B"
    tampered = ciphertext[:middle] + flipped + ciphertext[middle + 1 :]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(tampered)


@pytest.mark.parametrize(
    "ciphertext",
    ["", "JBSWY3DPEHPK3PXP", "v1:", "v1:not-a-token", "vx:abc", "1:abc", "v1:é", "v٣:abc"],
)
def test_malformed_ciphertext_is_refused(ctx, ciphertext):
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(ciphertext)


def test_unknown_version_is_refused(ctx):
    token = crypto.encrypt("secret").partition(":")[2]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(f"v9:{token}")


def test_another_secret_key_cannot_decrypt(ctx, monkeypatch):
    ciphertext = crypto.encrypt("secret")
    monkeypatch.setitem(ctx.config, "SECRET_KEY", "another-secret-key-of-enough-length-0123")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(ciphertext)


def test_key_rotation(ctx, monkeypatch):
    """A new key encrypts; older versions keep decrypting until they are dropped."""
    key2, key3 = crypto.generate_key(), crypto.generate_key()
    derived = crypto.encrypt("one")

    monkeypatch.setitem(ctx.config, "ENCRYPTION_KEYS", f"2:{key2}")
    second = crypto.encrypt("two")
    assert second.startswith("v2:")
    assert crypto.decrypt(derived) == "one"  # the SECRET_KEY-derived v1 still decrypts

    monkeypatch.setitem(ctx.config, "ENCRYPTION_KEYS", f"3:{key3}, 2:{key2}")
    third = crypto.encrypt("three")
    assert third.startswith("v3:")
    assert crypto.decrypt(second) == "two"
    assert crypto.decrypt(derived) == "one"

    monkeypatch.setitem(ctx.config, "ENCRYPTION_KEYS", f"3:{key3}")
    assert crypto.decrypt(third) == "three"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(second)


def test_an_explicit_version_1_replaces_the_derived_key(ctx, monkeypatch):
    derived = crypto.encrypt("one")
    monkeypatch.setitem(ctx.config, "ENCRYPTION_KEYS", f"1:{crypto.generate_key()}")
    assert crypto.encrypt("x").startswith("v1:")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(derived)


def test_keys_in_standard_base64_are_accepted(ctx, monkeypatch):
    raw = bytes(range(250, 256)) * 5 + b"\xfb\xff"  # encodes with '+' and '/'
    standard = base64.b64encode(raw).decode()
    assert "+" in standard or "/" in standard
    monkeypatch.setitem(ctx.config, "ENCRYPTION_KEYS", f"4:{standard}")
    ciphertext = crypto.encrypt("x")
    assert ciphertext.startswith("v4:")
    fernet = Fernet(base64.urlsafe_b64encode(raw))
    assert fernet.decrypt(ciphertext[3:]) == b"x"


@pytest.mark.parametrize(
    "value",
    ["2", "x:" + "A" * 44, "0:" + "A" * 44, "2:short", "2:" + "A" * 40, "2:{k},2:{k}"],
)
def test_bad_encryption_keys_are_refused(ctx, monkeypatch, value):
    key = crypto.generate_key()
    monkeypatch.setitem(ctx.config, "ENCRYPTION_KEYS", value.format(k=key))
    with pytest.raises(ConfigError) as error:
        crypto.encrypt("x")
    assert key not in str(error.value) and "short" not in str(error.value)


def test_encryption_keys_is_a_documented_setting(tmp_path):
    keys = f"2:{crypto.generate_key()}"
    config = load_config(
        {"DATABASE_URL": "sqlite://", "INSTANCE_DIR": str(tmp_path)},
        environ={"IDP_ENV": "development", "IDP_ENCRYPTION_KEYS": keys},
    )
    assert config["ENCRYPTION_KEYS"] == keys


def test_malformed_encryption_keys_stop_the_start(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(
            {"DATABASE_URL": "sqlite://", "INSTANCE_DIR": str(tmp_path)},
            environ={"IDP_ENV": "development", "IDP_ENCRYPTION_KEYS": "2:abc"},
        )
    assert "abc" not in str(caught.value), "a key must never be echoed"


def test_keyed_hash(ctx, monkeypatch):
    digest = crypto.keyed_hash("recovery", "abcde23456")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest == crypto.keyed_hash("recovery", "abcde23456")
    assert digest != hashlib.sha256(b"abcde23456").hexdigest()
    assert digest != crypto.keyed_hash("email_code", "abcde23456")
    assert digest != crypto.keyed_hash("recovery", "abcde23457")
    monkeypatch.setitem(ctx.config, "SECRET_KEY", "another-secret-key-of-enough-length-0123")
    assert digest != crypto.keyed_hash("recovery", "abcde23456")
