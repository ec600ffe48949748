"""Per-tenant password policy: an ordered list of named rules, checked here and shown live.

``tenant.settings["password_policy"]`` picks one of three presets:

* ``nist`` (default): NIST SP 800-63B rev. 4 §3.1.1.2, length, a blocklist and breached
  passwords, no composition rules;
* ``b2c``: the Fluxys guide, step 8, which is Azure AD B2C's "strong" complexity;
* ``flexopus``: the Flexopus "Password requirements" list.

A rule's id is its reason code (logged and tested). Its ``pattern``, a JavaScript
regular expression (``u`` flag), lets static/password_rules.js tick the rule while the
user types; the server runs the rule's own ``test`` instead, and the unit tests run both
on the same examples to keep them in step. Rules without a pattern (blocklist, breaches)
can only be checked here.
"""

import hashlib
import hmac
import itertools
import logging
import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from functools import cache
from importlib import resources

import requests
from flask import current_app
from flask import has_app_context

from idp.i18n import lazy_gettext as _l

log = logging.getLogger("idp.password_policy")

DEFAULT_POLICY = "nist"
# Not a regex: tells password_rules.js to compare the two fields.
SAME_AS_CONFIRMATION = "=confirmation"
MIN_LENGTH_CHARS = 8
NIST_MAX_LENGTH = 128

# Azure AD B2C's documented symbols (the ``Symbol`` predicate of its password-complexity
# policy, and Entra ID's "characters allowed" list). The Fluxys guide prints the same list,
# but its PDF shows a box where ``!`` stands and lost the backslash; we follow Microsoft.
B2C_SYMBOLS = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();"

# Lazy: each page and message is translated into the language of the request that shows it.
TEXT_LENGTH_8_16 = _l("Between 8 and 16 characters.")
TEXT_CLASSES = _l("At least 3 of: a lowercase letter, an uppercase letter, a number, a symbol.")
TEXT_ALLOWED = _l("Only A–Z, a–z, 0–9 and the symbols %(symbols)s.", symbols=" ".join(B2C_SYMBOLS))
TEXT_NO_SPACES = _l("No spaces.")
TEXT_NO_UNICODE = _l("No accented letters or other Unicode characters.")
TEXT_NO_DOT_AT = _l("No “.” immediately before an “@”.")
TEXT_MIN_LENGTH = _l("At least 8 characters.")
TEXT_MAX_LENGTH = _l("At most 128 characters.")
TEXT_LOWERCASE = _l("At least 1 lowercase letter.")
TEXT_UPPERCASE = _l("At least 1 uppercase letter.")
TEXT_DIGIT = _l("At least 1 number.")
TEXT_CONFIRMATION = _l("The two passwords should match.")
TEXT_BLOCKLIST = _l("Not a common password, your email address or the organisation's name.")
TEXT_NOT_BREACHED = _l("Password is not compromised.")

MESSAGE_LENGTH_8_16 = _l("The password must be between 8 and 16 characters long.")
MESSAGE_CLASSES = _l(
    "The password must contain at least 3 of the following: lowercase letters, uppercase "
    "letters, numbers and symbols."
)
MESSAGE_ALLOWED = _l("The password contains a character that is not allowed.")
MESSAGE_NO_SPACES = _l("The password must not contain spaces.")
MESSAGE_NO_UNICODE = _l(
    "The password must not contain accented letters or other Unicode characters."
)
MESSAGE_NO_DOT_AT = _l("The password must not have a “.” immediately before an “@”.")
MESSAGE_MIN_LENGTH = _l("The password must be at least 8 characters long.")
MESSAGE_MAX_LENGTH = _l("The password must be at most 128 characters long.")
MESSAGE_LOWERCASE = _l("The password must contain at least one lowercase letter.")
MESSAGE_UPPERCASE = _l("The password must contain at least one uppercase letter.")
MESSAGE_DIGIT = _l("The password must contain at least one number.")
MESSAGE_CONFIRMATION = _l("The two passwords do not match.")
MESSAGE_BLOCKLIST = _l(
    "This password is too easy to guess: it is a common password or contains your email "
    "address or the organisation's name."
)
MESSAGE_BREACHED = _l("This password has appeared in a data breach. Choose another one.")
MESSAGE_BREACH_UNAVAILABLE = _l(
    "We could not check this password against known data breaches. Please try again later."
)


@dataclass(frozen=True)
class Rule:
    """One named requirement: display text, optional browser pattern, failure message, check."""

    id: str
    text: str
    pattern: str | None = None
    message: str = ""
    test: Callable | None = field(default=None, repr=False, compare=False)
    online: bool = False  # asks the breach API: only once every other rule has passed


@dataclass(frozen=True)
class Policy:
    """A preset: its rules in display order; ``normalize`` checks the NFKC form, not the input."""

    name: str
    rules: tuple
    normalize: bool = False


@dataclass(frozen=True)
class Result:
    """The outcome of ``check``: failed rule ids, their messages, and the value to hash."""

    failed: list
    messages: list
    normalized: str

    @property
    def ok(self):
        """True when every rule passed."""
        return not self.failed


@dataclass(frozen=True)
class Context:
    """What a rule may look at besides the password."""

    normalized: str
    confirmation: str
    email: str | None
    tenant: object
    config: object


def normalize_password(password):
    """SP 800-63B §3.1.1.2: NFKC before hashing, so every way of typing "é" is one password.

    Applied under every preset (the sign-in step must do the same before verifying), so a
    tenant that switches presets does not lock anyone out.
    """
    return unicodedata.normalize("NFKC", password)


@cache
def common_passwords():
    """The shipped list of common passwords (lowercase), read once per process."""
    text = resources.files("idp").joinpath("data/common_passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line)


def is_breached(password, config):
    """True if the password is common or breached, False if not, None if the API could not say.

    The shipped list is asked first; then, when ``BREACH_API_URL`` is set, the k-anonymity
    range API: only the first 5 hex digits of the SHA-1 leave the server, and ``Add-Padding``
    hides the real size of the answer. ``BREACH_FAIL_CLOSED`` is the caller's to apply.
    """
    if password.casefold() in common_passwords():
        return True
    url = config.get("BREACH_API_URL") or ""
    if not url:
        return False
    digest = hashlib.sha1(password.encode("utf-8"), usedforsecurity=False).hexdigest().upper()
    timeout = float(config.get("BREACH_API_TIMEOUT", 2.0))
    try:
        response = requests.get(
            url + digest[:5], headers={"Add-Padding": "true"}, timeout=(timeout, timeout)
        )
        response.raise_for_status()
    except requests.RequestException as exc:
        log.warning("breach API unavailable (%s): %s", url, type(exc).__name__)
        return None
    return _breach_count(response.text, digest[5:]) > 0


def _breach_count(body, suffix):
    """The count on the ``SUFFIX:COUNT`` line for ``suffix``; padding lines carry 0.

    Hex case may differ; the comparison is constant-time because it costs nothing more.
    """
    for line in body.splitlines():
        candidate, _, count = line.partition(":")
        if hmac.compare_digest(candidate.strip().upper().encode(), suffix.encode()):
            count = count.strip()
            return int(count) if count.isdigit() else 0
    return 0


def _char_class(chars):
    """A ``[...]`` class valid in both engines (JavaScript's ``u`` mode is the strict one)."""
    return "[" + "".join("\\" + c if c in "\\]^[-" else c for c in chars) + "]"


# ASCII-only classes mean the same in both engines, so the server runs them as they are.
_CLASS_PATTERNS = ("[a-z]", "[A-Z]", "[0-9]", _char_class(B2C_SYMBOLS))
_ASCII_SPACE = " \t\n\v\f\r"
_B2C_ALLOWED = frozenset(string.ascii_letters + string.digits + B2C_SYMBOLS)


def _three_of_four_pattern():
    """Azure's "3 of 4" as lookaheads: one alternative per choice of three classes."""
    choices = itertools.combinations(_CLASS_PATTERNS, 3)
    return "^(?:" + "|".join("".join(f"(?=[\\s\\S]*{c})" for c in t) for t in choices) + ")"


def _three_of_four(value, ctx):
    return sum(bool(re.search(pattern, value)) for pattern in _CLASS_PATTERNS) >= 3


def _allowed_characters(value, ctx):
    # Spaces and non-ASCII have rules of their own; this one names only the other outsiders.
    return all(c in _B2C_ALLOWED or c in _ASCII_SPACE or not c.isascii() for c in value)


def _has_category(category):
    return lambda value, ctx: any(unicodedata.category(c) == category for c in value)


def _same_as_confirmation(value, ctx):
    return ctx.normalized == normalize_password(ctx.confirmation or "")


def _not_blocklisted(value, ctx):
    """SP 800-63B: not a common password, nor the user's email or the service's name."""
    folded = value.casefold()
    if folded in common_passwords():
        return False
    for word in _context_words(ctx.email, ctx.tenant):
        if folded == word or (len(word) >= 4 and word in folded):
            return False
    return True


def _context_words(email, tenant):
    """The user's email and its local part, the tenant's name (with and without spaces), slug."""
    words = set()
    if email:
        email = normalize_password(email).casefold()
        words.update({email, email.partition("@")[0]})
    for value in (getattr(tenant, "name", None), getattr(tenant, "slug", None)):
        if value:
            value = normalize_password(value).casefold()
            words.update({value, "".join(value.split())})
    return {word for word in words if word}


def _not_breached(value, ctx):
    breached = is_breached(value, ctx.config)
    return None if breached is None else not breached


# fmt: off
CONFIRMATION = Rule("confirmation", TEXT_CONFIRMATION, SAME_AS_CONFIRMATION,
                    MESSAGE_CONFIRMATION, _same_as_confirmation)
NOT_BREACHED = Rule("not_breached", TEXT_NOT_BREACHED, None, MESSAGE_BREACHED, _not_breached,
                    online=True)
MIN_LENGTH = Rule("min_length", TEXT_MIN_LENGTH, r"^[\s\S]{8,}", MESSAGE_MIN_LENGTH,
                  lambda value, ctx: len(value) >= MIN_LENGTH_CHARS)

B2C = Policy("b2c", (
    Rule("length", TEXT_LENGTH_8_16, r"^[\s\S]{8,16}$", MESSAGE_LENGTH_8_16,
         lambda value, ctx: 8 <= len(value) <= 16),
    Rule("character_classes", TEXT_CLASSES, _three_of_four_pattern(), MESSAGE_CLASSES,
         _three_of_four),
    Rule("allowed_characters", TEXT_ALLOWED,
         "^(?:[A-Za-z0-9]|" + _char_class(B2C_SYMBOLS) + r"|[\t\n\v\f\r ]|[^\x00-\x7f])*$",
         MESSAGE_ALLOWED, _allowed_characters),
    Rule("no_spaces", TEXT_NO_SPACES, r"^\S*$", MESSAGE_NO_SPACES,
         lambda value, ctx: not any(c.isspace() for c in value)),
    Rule("no_unicode", TEXT_NO_UNICODE, r"^[\x00-\x7f]*$", MESSAGE_NO_UNICODE,
         lambda value, ctx: value.isascii()),
    Rule("no_dot_before_at", TEXT_NO_DOT_AT, r"^(?![\s\S]*\.@)", MESSAGE_NO_DOT_AT,
         lambda value, ctx: ".@" not in value),
    CONFIRMATION,
))

# Flexopus's rules read "letter" and "number" broadly, so "ä" counts as lowercase.
FLEXOPUS = Policy("flexopus", (
    MIN_LENGTH,
    Rule("lowercase", TEXT_LOWERCASE, r"\p{Ll}", MESSAGE_LOWERCASE, _has_category("Ll")),
    Rule("uppercase", TEXT_UPPERCASE, r"\p{Lu}", MESSAGE_UPPERCASE, _has_category("Lu")),
    Rule("digit", TEXT_DIGIT, r"\p{Nd}", MESSAGE_DIGIT, _has_category("Nd")),
    CONFIRMATION,
    NOT_BREACHED,
))

# Rev. 4 asks 15 characters of a password used alone and 8 of one used with a second
# factor; every sign-in here ends with an authenticator, so 8. It also says accept at
# least 64: we take 128 (argon2 input stays far below passwords.MAX_PASSWORD_BYTES).
NIST = Policy("nist", (
    MIN_LENGTH,
    Rule("max_length", TEXT_MAX_LENGTH, r"^[\s\S]{0,128}$", MESSAGE_MAX_LENGTH,
         lambda value, ctx: len(value) <= NIST_MAX_LENGTH),
    CONFIRMATION,
    Rule("blocklist", TEXT_BLOCKLIST, None, MESSAGE_BLOCKLIST, _not_blocklisted),
    NOT_BREACHED,
), normalize=True)
# fmt: on

PRESETS = {policy.name: policy for policy in (NIST, B2C, FLEXOPUS)}


def policy_for(tenant):
    """The tenant's preset; an unknown name falls back to NIST rather than locking users out."""
    name = (getattr(tenant, "settings", None) or {}).get("password_policy", DEFAULT_POLICY)
    policy = PRESETS.get(name)
    if policy is None:
        log.warning("unknown password_policy %r for tenant %s", name, getattr(tenant, "slug", "?"))
        policy = PRESETS[DEFAULT_POLICY]
    return policy


def check(policy, password, confirmation, email=None, tenant=None, config=None):
    """Run the policy's rules in order; the breach API is asked only if all others passed.

    ``config`` defaults to the app's (``BREACH_*`` settings); outside an app the online
    check is off. ``Result.normalized`` is what to hash.
    """
    config = _current_config() if config is None else config
    normalized = normalize_password(password)
    value = normalized if policy.normalize else password
    ctx = Context(normalized, confirmation, email, tenant, config)
    failed, messages = [], []
    for rule in policy.rules:
        if rule.online and failed:
            continue
        # The breach check always gets the normalized form: it is what will be stored.
        verdict = rule.test(normalized if rule.online else value, ctx)
        if verdict is None:
            if not config.get("BREACH_FAIL_CLOSED", False):
                continue
            failed.append(rule.id)
            messages.append(MESSAGE_BREACH_UNAVAILABLE)
        elif not verdict:
            failed.append(rule.id)
            messages.append(rule.message)
    return Result(failed, messages, normalized)


def _current_config():
    """The running app's config; an empty one (online check off) outside an app."""
    return current_app.config if has_app_context() else {}
