"""Secrets at rest: encryption with versioned server keys, and keyed hashes.

TOTP secrets must be readable again, so they are encrypted (Fernet: AES-128-CBC with
HMAC-SHA256) and stored as ``v<version>:<token>``. The version names the key, so keys
can be rotated the way warehouse does it: a new key encrypts, the old ones keep
decrypting until every row has been rewritten.

Email codes and recovery codes only ever need comparing, so they are stored as an
HMAC under a key derived from ``SECRET_KEY``: a database leak alone does not let
anyone test guesses offline, and a 6-digit code would otherwise fall in a millisecond.
"""

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from idp.config import ConfigError

# The key derived from SECRET_KEY is version 1, whether or not ENCRYPTION_KEYS is set.
DERIVED_VERSION = 1
_CIPHERTEXT = re.compile(r"v([0-9]{1,9}):(.+)", re.DOTALL)


class DecryptionError(Exception):
    """The ciphertext was altered or truncated, or no key of its version is configured."""


def encrypt(plaintext: str) -> str:
    """``plaintext`` encrypted with the current key, as ``v<version>:<token>``."""
    version, keys = _current_keyring()
    token = keys[version].encrypt(plaintext.encode("utf-8")).decode("ascii")
    return f"v{version}:{token}"


def decrypt(ciphertext: str) -> str:
    """The plaintext of ``ciphertext``; raises DecryptionError rather than returning junk."""
    match = _CIPHERTEXT.fullmatch(ciphertext or "")
    if match is None:
        raise DecryptionError("not a versioned ciphertext")
    version = int(match.group(1))
    fernet = _current_keyring()[1].get(version)
    if fernet is None:
        raise DecryptionError(f"no encryption key of version {version} is configured")
    try:
        return fernet.decrypt(match.group(2)).decode("utf-8")
    except (InvalidToken, ValueError, TypeError):
        # Fernet checks the HMAC before decrypting: any change to the token lands here.
        raise DecryptionError("ciphertext is corrupt or was made with another key") from None


def keyed_hash(purpose: str, value: str) -> str:
    """HMAC-SHA256 (hex) of ``value`` under a key derived from SECRET_KEY for ``purpose``.

    One key per purpose, so a hash stored for one use can never be replayed as another.
    """
    key = _derive(current_app.config["SECRET_KEY"], f"idp/keyed-hash/{purpose}")
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def generate_key() -> str:
    """A fresh random key in the form ENCRYPTION_KEYS expects after ``<version>:``."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def parse_encryption_keys(value: str) -> list[tuple[int, bytes]]:
    """``"2:key,1:key"`` as ``[(2, raw), (1, raw)]``; raises ConfigError on any flaw.

    The message never repeats a key, since start-up errors end up in logs.
    """
    entries = []
    for position, item in enumerate(part.strip() for part in value.split(",")):
        if not item:
            continue
        version_text, sep, key_text = item.partition(":")
        version_text = version_text.strip()
        if not sep or not re.fullmatch(r"[0-9]{1,9}", version_text) or int(version_text) < 1:
            raise ConfigError(f"IDP_ENCRYPTION_KEYS entry {position + 1} is not <version>:<key>")
        raw = _decode_key(key_text.strip())
        if raw is None:
            raise ConfigError(f"IDP_ENCRYPTION_KEYS version {version_text} is not 32 base64 bytes")
        if any(int(version_text) == seen for seen, _ in entries):
            raise ConfigError(f"IDP_ENCRYPTION_KEYS names version {version_text} twice")
        entries.append((int(version_text), raw))
    return entries


def _decode_key(text):
    """32 raw bytes from standard or URL-safe base64 (padding optional), else None."""
    text = text.translate(str.maketrans("-_", "+/"))
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def _current_keyring():
    """The keyring for the running app's configuration."""
    config = current_app.config
    return _keyring(config["SECRET_KEY"], config.get("ENCRYPTION_KEYS") or "")


@lru_cache(maxsize=8)
def _keyring(secret_key, encryption_keys):
    """``(encrypting version, {version: Fernet})``; cached, as HKDF runs once per config.

    The SECRET_KEY-derived key stays available as version 1 unless ENCRYPTION_KEYS
    names a version 1 itself, so moving to explicit keys needs no re-encryption first.
    """
    entries = parse_encryption_keys(encryption_keys)
    keys = {version: Fernet(base64.urlsafe_b64encode(raw)) for version, raw in entries}
    if DERIVED_VERSION not in keys:
        derived = _derive(secret_key, f"idp/encryption/v{DERIVED_VERSION}")
        keys[DERIVED_VERSION] = Fernet(base64.urlsafe_b64encode(derived))
    current = entries[0][0] if entries else DERIVED_VERSION
    return current, keys


@lru_cache(maxsize=32)
def _derive(secret_key, info):
    """32 bytes for one use of SECRET_KEY (RFC 5869 HKDF-SHA256, ``info`` separating uses)."""
    if not secret_key:
        raise ConfigError("SECRET_KEY is required to derive keys")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info.encode("utf-8"))
    return hkdf.derive(secret_key.encode("utf-8"))
