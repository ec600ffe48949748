"""Password hashing with argon2id (argon2-cffi), OWASP parameters, rehash on sign-in."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
MAX_PASSWORD_BYTES = 1024

# Verifying against this when the account does not exist keeps the timing of
# "unknown email" and "wrong password" alike.
_DUMMY_HASH = None


def hash_password(password):
    """The argon2id encoded hash of ``password``."""
    return HASHER.hash(password)


def verify_password(encoded, password):
    """True when ``password`` matches; burns the same time when ``encoded`` is None."""
    global _DUMMY_HASH
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        return False
    if encoded is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = HASHER.hash("dummy password for timing")
        encoded = _DUMMY_HASH
        password = password + "\0never"
    try:
        return HASHER.verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(encoded):
    """True when the stored hash was made with other parameters than today's."""
    return HASHER.check_needs_rehash(encoded)
