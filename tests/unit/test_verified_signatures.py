"""A key ring checks each token's signature once, and never lets that stand in for more."""

import base64
import json
import os
import time

from joserfc import jwt

from idp.services import keys


def _ring_and_token(tmp_path, **claims):
    keys_dir = str(tmp_path / "keys")
    keys.ensure_keys(keys_dir)
    ring = keys.load_keyring(keys_dir)
    key = ring.signing_key("RS256")
    claims = {"iss": "https://idp.test/t", "exp": int(time.time()) + 60, "jti": "a", **claims}
    token = jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "at+jwt"}, claims, key, ["RS256"])
    return keys_dir, ring, token


def test_a_signature_is_checked_once_per_ring(tmp_path, monkeypatch):
    _, ring, token = _ring_and_token(tmp_path)
    decoded = []
    original = keys.jwt.decode
    monkeypatch.setattr(keys.jwt, "decode", lambda *a, **k: decoded.append(1) or original(*a, **k))

    first, again = ring.verified(token), ring.verified(token)

    assert first == again
    assert first[0]["typ"] == "at+jwt" and first[1]["jti"] == "a"
    assert len(decoded) == 1


def test_a_changed_token_is_checked_and_refused(tmp_path):
    _, ring, token = _ring_and_token(tmp_path)
    assert ring.verified(token) is not None
    header, payload, signature = token.split(".")
    forged_claims = json.dumps({"iss": "https://idp.test/t", "exp": 2**31, "jti": "b"})
    forged_payload = base64.urlsafe_b64encode(forged_claims.encode()).rstrip(b"=").decode()

    assert ring.verified(f"{header}.{forged_payload}.{signature}") is None
    assert ring.verified(f"{header}.{payload}.{signature[:-4]}AAAA") is None
    assert ring.verified("not a token") is None


def test_a_key_taken_out_of_the_ring_stops_verifying_at_once(tmp_path):
    keys_dir, ring, token = _ring_and_token(tmp_path)
    assert ring.verified(token) is not None
    path = os.path.join(keys_dir, keys.RING_FILE)
    with open(path) as fh:
        entries = json.load(fh)["keys"]
    kid = ring.signing_key("RS256").kid
    keys._write_entries(keys_dir, [e for e in entries if e["kid"] != kid])
    os.utime(path, ns=(time.time_ns(), os.stat(path).st_mtime_ns + 1_000_000))

    assert keys.load_keyring(keys_dir).verified(token) is None


def test_expiry_is_still_checked_on_every_call(tmp_path, monkeypatch):
    from idp.services import tokens

    keys_dir, ring, token = _ring_and_token(tmp_path)
    monkeypatch.setattr(tokens, "keyring", lambda: keys.load_keyring(keys_dir))
    assert tokens.verify_jwt(token, "https://idp.test/t", typ="at+jwt")["jti"] == "a"

    monkeypatch.setattr(tokens.time, "time", lambda: time.time_ns() / 1e9 + 120)
    assert tokens.verify_jwt(token, "https://idp.test/t", typ="at+jwt") is None
    assert tokens.verify_jwt(token, "https://other.test/t", typ="at+jwt") is None
