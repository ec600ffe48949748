"""Signing keys: PEM files in ``keys/`` with a ``keyring.json`` of their states.

States: ``next`` (published in the JWKS before it signs, so relying parties that
cache the JWKS already know it), ``active`` (signs), ``retired`` (still published
until every token it signed has expired). ``kid`` is the RFC 7638 thumbprint.
Each process loads the ring once and re-reads it when ``keyring.json`` changes.
"""

import hashlib
import json
import os
import threading
import time

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from joserfc.jwk import KeySet
from joserfc.jwk import RSAKey

ALGORITHMS = {"RS256": ("RSA", 2048), "ES256": ("EC", "P-256")}
RING_FILE = "keyring.json"
VERIFIED_MAX = 4096  # signatures checked, per ring and process; then it starts afresh


class KeyRing:
    """An immutable snapshot of the key folder: signing keys per alg and the published JWKS
    (and a memo of the signatures it verified, ``verified``)."""

    def __init__(self, keys_dir, entries):
        self.keys_dir = keys_dir
        self.entries = entries
        self._keys = {e["kid"]: _read_key(keys_dir, e) for e in entries}
        published = [self._public_jwk(e) for e in entries]
        self.jwks = {"keys": published}
        self.jwks_bytes = json.dumps(self.jwks, separators=(",", ":")).encode()
        self.jwks_etag = hashlib.sha256(self.jwks_bytes).hexdigest()[:32]
        self.public_keyset = KeySet.import_key_set(self.jwks)
        self._verified = {}

    def verified(self, value):
        """``(header, claims)`` of a JWT one of these keys signed, or None; unchecked claims.

        A resource server presents the same access token to userinfo or introspection for
        its whole life, and the signature of a given string under a given set of keys does
        not change: each process checks it once per ring (joserfc's decoding and the RSA
        verification were 30 % of a userinfo request's profile), and then finds it by the
        token's SHA-256 (the token itself is not kept). Expiry, issuer, type and revocation
        are the caller's, on every request. A new ring (a rotation, a key removed) starts
        empty, so a key taken out of the set stops verifying at once. What fails is not
        kept: a forgery costs its sender a verification each time.
        """
        digest = hashlib.sha256(value.encode()).digest()
        found = self._verified.get(digest)
        if found is None:
            try:
                token = jwt.decode(value, self.public_keyset, algorithms=["RS256", "ES256"])
            except (JoseError, ValueError, TypeError):
                return None
            found = (token.header, token.claims)
            if len(self._verified) >= VERIFIED_MAX:
                self._verified.clear()
            self._verified[digest] = found
        return found

    def _public_jwk(self, entry):
        key = self._keys[entry["kid"]]
        return key.as_dict(private=False, kid=entry["kid"], alg=entry["alg"], use="sig")

    def signing_key(self, alg):
        """The active key for ``alg``; raises KeyError when none is active."""
        for entry in self.entries:
            if entry["alg"] == alg and entry["state"] == "active":
                return self._keys[entry["kid"]]
        raise KeyError(f"no active {alg} signing key; run `idp keys rotate` or `idp init`")

    def algorithms(self):
        """Algorithms that have an active key, for discovery metadata."""
        return sorted({e["alg"] for e in self.entries if e["state"] == "active"})


def _read_key(keys_dir, entry):
    with open(os.path.join(keys_dir, entry["file"]), "rb") as fh:
        pem = fh.read()
    cls = RSAKey if entry["alg"] == "RS256" else ECKey
    return cls.import_key(pem, parameters={"kid": entry["kid"], "alg": entry["alg"]})


_cache = {}
_lock = threading.Lock()


def load_keyring(keys_dir):
    """The current ring for ``keys_dir``, re-read only when ``keyring.json`` changed."""
    path = os.path.join(keys_dir, RING_FILE)
    try:
        stamp = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        raise KeyError(f"no {RING_FILE} in {keys_dir}; run `idp init`") from None
    cached = _cache.get(keys_dir)
    if cached and cached[0] == stamp:
        return cached[1]
    with _lock:
        with open(path) as fh:
            entries = json.load(fh)["keys"]
        ring = KeyRing(keys_dir, entries)
        _cache[keys_dir] = (stamp, ring)
        return ring


def _read_entries(keys_dir):
    try:
        with open(os.path.join(keys_dir, RING_FILE)) as fh:
            return json.load(fh)["keys"]
    except FileNotFoundError:
        return []


def _write_entries(keys_dir, entries):
    """Atomic replace, so a node reading concurrently sees the old or the new ring, never half."""
    tmp = os.path.join(keys_dir, RING_FILE + ".tmp")
    with open(tmp, "w") as fh:
        json.dump({"keys": entries}, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, os.path.join(keys_dir, RING_FILE))


def _new_key(keys_dir, alg, state):
    kty, size = ALGORITHMS[alg]
    key = RSAKey.generate_key(size) if kty == "RSA" else ECKey.generate_key(size)
    kid = key.thumbprint()
    filename = f"{alg.lower()}-{kid}.pem"
    path = os.path.join(keys_dir, filename)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.as_pem(private=True))
    return {
        "kid": kid,
        "alg": alg,
        "file": filename,
        "state": state,
        "created_at": int(time.time()),
    }


def ensure_keys(keys_dir):
    """Create an active and a next key per algorithm where missing. Returns True if it wrote."""
    os.makedirs(keys_dir, mode=0o700, exist_ok=True)
    entries = _read_entries(keys_dir)
    changed = False
    for alg in ALGORITHMS:
        states = {e["state"] for e in entries if e["alg"] == alg}
        for state in ("active", "next"):
            if state not in states:
                entries.append(_new_key(keys_dir, alg, state))
                changed = True
    if changed:
        _write_entries(keys_dir, entries)
    return changed


def rotate_keys(keys_dir, retain_seconds):
    """Promote ``next`` to ``active``, retire ``active``, create a new ``next``; prune old keys.

    ``retain_seconds`` is the longest lifetime of anything signed: a retired key stays
    published that long after it stopped signing.
    """
    ensure_keys(keys_dir)
    entries = _read_entries(keys_dir)
    now = int(time.time())
    for alg in ALGORITHMS:
        for entry in entries:
            if entry["alg"] != alg:
                continue
            if entry["state"] == "active":
                entry.update(state="retired", retired_at=now)
            elif entry["state"] == "next":
                entry.update(state="active", activated_at=now)
        entries.append(_new_key(keys_dir, alg, "next"))
    expired = [
        e for e in entries if e["state"] == "retired" and e["retired_at"] + retain_seconds < now
    ]
    kept = [e for e in entries if e not in expired]
    # The new ring first, then the old files: a node re-reading the ring in between must
    # never find it naming a PEM file that is already gone.
    _write_entries(keys_dir, kept)
    for entry in expired:
        os.remove(os.path.join(keys_dir, entry["file"]))
    return kept


def list_keys(keys_dir):
    """The keyring entries, for ``idp keys list``."""
    return _read_entries(keys_dir)
