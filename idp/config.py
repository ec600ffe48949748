"""The one configuration source: documented defaults, ``IDP_*`` overrides, checked at start-up.

Every setting below is also the reference documentation for it (the shape of
node-oidc-provider's defaults file). ``load_config`` reads the environment once,
in ``create_app``; nothing reads ``os.environ`` anywhere else.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def parse_flag(raw):
    """An environment flag: 1/true/yes/on (any case) is true, anything else false."""
    return str(raw).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Setting:
    """One documented setting: its environment name, default and meaning."""

    env: str
    default: object
    doc: str
    cast: Callable[[str], object] = str
    # An empty variable normally means "use the default"; for settings where empty
    # means "off" (an optional URL) it has to be taken literally.
    blank_means_off: bool = False


SETTINGS = {
    "ENV": Setting(
        "IDP_ENV", "production", "development or production; production refuses unsafe values."
    ),
    "PUBLIC_URL": Setting(
        "IDP_PUBLIC_URL", "http://127.0.0.1:5000", "Base of every issuer: {PUBLIC_URL}/{tenant}."
    ),
    "INSTANCE_DIR": Setting(
        "IDP_INSTANCE_DIR",
        "instance",
        "Local state: the default SQLite file and the demo client's credentials.",
    ),
    "DATABASE_URL": Setting(
        "IDP_DATABASE_URL", "", "SQLAlchemy URL; SQLite under INSTANCE_DIR when empty."
    ),
    "SECRET_KEY": Setting(
        "IDP_SECRET_KEY", "", "Signs cookies and keys hashes; required in production."
    ),
    "ENCRYPTION_KEYS": Setting(
        "IDP_ENCRYPTION_KEYS",
        "",
        "Keys encrypting secrets at rest (TOTP): 'version:base64key,...' with 32-byte keys; "
        "the first encrypts, all decrypt. Version 1 is derived from SECRET_KEY unless listed, "
        "and is the only key when empty: set this before ever rotating SECRET_KEY.",
    ),
    "KEYS_DIR": Setting(
        "IDP_KEYS_DIR", "keys", "Folder holding the signing keys and keyring.json."
    ),
    "REDIS_URL": Setting(
        "IDP_REDIS_URL", "", "Redis for rate-limit counters shared by every node."
    ),
    "SMTP_URL": Setting(
        "IDP_SMTP_URL", "", "smtp:// or smtps:// URL; console/outbox mail when empty."
    ),
    "MAIL_FROM": Setting("IDP_MAIL_FROM", "idp@localhost", "Sender address of every mail."),
    "SMTP_CA_FILE": Setting(
        "IDP_SMTP_CA_FILE",
        "",
        "PEM file of the CAs the SMTP server's certificate must chain to; system store when empty.",
    ),
    "SMTP_TIMEOUT": Setting(
        "IDP_SMTP_TIMEOUT", 10, "Seconds to wait on each SMTP connect, command or reply.", int
    ),
    "OUTBOX_DIR": Setting(
        "IDP_OUTBOX_DIR",
        "",
        "Where the console mail backend writes .eml files; {INSTANCE_DIR}/outbox when empty.",
    ),
    "EMAIL_CODE_TTL": Setting(
        "IDP_EMAIL_CODE_TTL", 300, "Lifetime of an emailed one-time code, seconds.", int
    ),
    "EMAIL_CODE_COOLDOWN": Setting(
        "IDP_EMAIL_CODE_COOLDOWN", 30, "Seconds before another code may be sent to an address.", int
    ),
    "EMAIL_CODE_HOURLY_LIMIT": Setting(
        "IDP_EMAIL_CODE_HOURLY_LIMIT", 5, "Codes mailed per address and purpose per hour.", int
    ),
    "DEMO_RP": Setting(
        "IDP_DEMO_RP", "", "Serve the demo relying party at /demo (on in development)."
    ),
    "AUTH_CODE_TTL": Setting("IDP_AUTH_CODE_TTL", 60, "Authorization code lifetime, seconds.", int),
    "ACCESS_TOKEN_TTL": Setting(
        "IDP_ACCESS_TOKEN_TTL", 600, "Access token lifetime, seconds.", int
    ),
    "ID_TOKEN_TTL": Setting("IDP_ID_TOKEN_TTL", 600, "ID token lifetime, seconds.", int),
    "REFRESH_IDLE_TTL": Setting(
        "IDP_REFRESH_IDLE_TTL",
        14 * 86400,
        "A refresh token unused this long expires, seconds.",
        int,
    ),
    "REFRESH_ABSOLUTE_TTL": Setting(
        "IDP_REFRESH_ABSOLUTE_TTL",
        30 * 86400,
        "A refresh family ends this long after sign-in.",
        int,
    ),
    "REFRESH_REUSE_LEEWAY": Setting(
        "IDP_REFRESH_REUSE_LEEWAY",
        2,
        "Seconds after a rotation in which the old refresh token is refused without revoking "
        "its family (concurrent refreshes of one client); 0 revokes on any reuse.",
        int,
    ),
    "SESSION_IDLE_TTL": Setting("IDP_SESSION_IDLE_TTL", 8 * 3600, "SSO session idle timeout.", int),
    "SESSION_ABSOLUTE_TTL": Setting(
        "IDP_SESSION_ABSOLUTE_TTL", 24 * 3600, "SSO session absolute timeout.", int
    ),
    "LOGIN_TX_TTL": Setting("IDP_LOGIN_TX_TTL", 900, "Login transaction lifetime, seconds.", int),
    "TENANT_CACHE_TTL": Setting(
        "IDP_TENANT_CACHE_TTL",
        5.0,
        "Seconds a process reuses a tenant it loaded (saves a query on every request); a "
        "change to a tenant reaches running nodes within this delay. 0 reads it every time.",
        float,
    ),
    "CLIENT_CACHE": Setting(
        "IDP_CLIENT_CACHE",
        True,
        "Keep clients per process, forgotten when PostgreSQL notifies a change "
        "(idp.services.client_cache); 0 behind a PgBouncer in transaction mode.",
        parse_flag,
    ),
    "TOKEN_CACHE": Setting(
        "IDP_TOKEN_CACHE",
        True,
        "Keep the access tokens userinfo and introspection looked up, per process, forgotten "
        "when PostgreSQL notifies a revocation or a change to the user "
        "(idp.services.token_cache); 0 behind a PgBouncer in transaction mode.",
        parse_flag,
    ),
    "TRUSTED_PROXIES": Setting(
        "IDP_TRUSTED_PROXIES", 0, "How many reverse proxies put X-Forwarded-For in front.", int
    ),
    "BREACH_API_URL": Setting(
        "IDP_BREACH_API_URL",
        "https://api.pwnedpasswords.com/range/",
        "k-anonymity range API for breached passwords (the first 5 hex digits of the SHA-1 "
        "are appended); empty turns the online check off, the shipped common list still applies.",
        blank_means_off=True,
    ),
    "BREACH_API_TIMEOUT": Setting(
        "IDP_BREACH_API_TIMEOUT", 2.0, "Seconds to wait for the breach API.", float
    ),
    "BREACH_FAIL_CLOSED": Setting(
        "IDP_BREACH_FAIL_CLOSED",
        False,
        "Refuse a new password when the breach API cannot be reached (default: accept and warn).",
        parse_flag,
    ),
}


class ConfigError(RuntimeError):
    """Raised at start-up when a setting is missing or unsafe."""


def load_config(overrides=None, environ=None):
    """Return the Flask config mapping: defaults, then ``IDP_*`` variables, then ``overrides``."""
    environ = os.environ if environ is None else environ
    config = {}
    for name, setting in SETTINGS.items():
        raw = environ.get(setting.env)
        if raw == "" and setting.blank_means_off:
            config[name] = ""
        else:
            config[name] = setting.cast(raw) if raw not in (None, "") else setting.default
    config.update(overrides or {})
    _derive(config)
    validate_config(config)
    return config


def _derive(config):
    """Fill values that depend on others (database path, demo switch, Flask's own keys)."""
    development = config["ENV"] == "development"
    if not config["DATABASE_URL"]:
        os.makedirs(config["INSTANCE_DIR"], exist_ok=True)
        path = os.path.join(config["INSTANCE_DIR"], "idp.db")
        config["DATABASE_URL"] = "sqlite:///" + os.path.abspath(path)
    if not config["SECRET_KEY"] and development:
        config["SECRET_KEY"] = DEV_SECRET_KEY
    if config["DEMO_RP"] in ("", None):
        config["DEMO_RP"] = development
    elif isinstance(config["DEMO_RP"], str):
        config["DEMO_RP"] = config["DEMO_RP"].lower() in ("1", "true", "yes", "on")
    config["PUBLIC_URL"] = config["PUBLIC_URL"].rstrip("/")
    config["SQLALCHEMY_DATABASE_URI"] = config["DATABASE_URL"]
    config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(config["DATABASE_URL"])
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config["SESSION_COOKIE_SECURE"] = config["PUBLIC_URL"].startswith("https://")
    config["WTF_CSRF_TIME_LIMIT"] = config["LOGIN_TX_TTL"]
    config["RATELIMIT_STORAGE_URI"] = config["REDIS_URL"] or "memory://"
    config["RATELIMIT_HEADERS_ENABLED"] = True


def _engine_options(url):
    """SQLite waits for a busy writer instead of failing.

    PostgreSQL: no pre-ping (it would cost a round trip on every request). A connection
    that died with the server fails its first statement; SQLAlchemy then drops the whole
    pool, that one request answers 503, and the next ones reconnect.
    """
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    return {"pool_size": 10, "max_overflow": 10, "pool_recycle": 1800}


def validate_config(config):
    """Refuse to start with settings that would be unsafe in production."""
    if config["ENV"] not in ("development", "production", "testing"):
        raise ConfigError("IDP_ENV must be development, production or testing")
    if not config["SECRET_KEY"]:
        raise ConfigError("IDP_SECRET_KEY is required outside development")
    if config.get("ENCRYPTION_KEYS"):
        from idp.services.crypto import parse_encryption_keys

        parse_encryption_keys(config["ENCRYPTION_KEYS"])  # raises ConfigError, never echoes keys
    if config["SMTP_URL"] and urlsplit(config["SMTP_URL"]).scheme not in ("smtp", "smtps"):
        raise ConfigError("IDP_SMTP_URL must be an smtp:// or smtps:// URL")
    parts = urlsplit(config["PUBLIC_URL"])
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("IDP_PUBLIC_URL must be an absolute http(s) URL")
    if config["ENV"] == "production":
        if config["SECRET_KEY"] == DEV_SECRET_KEY or len(config["SECRET_KEY"]) < 32:
            raise ConfigError("IDP_SECRET_KEY must be a random value of at least 32 characters")
        if parts.scheme != "https" and parts.hostname not in LOOPBACK_HOSTS:
            raise ConfigError("IDP_PUBLIC_URL must use https outside localhost")
    _validate_breach_api(config)


def _validate_breach_api(config):
    """The breach API learns a hash prefix of every new password: production wants https."""
    if config["BREACH_API_TIMEOUT"] <= 0:
        raise ConfigError("IDP_BREACH_API_TIMEOUT must be a positive number of seconds")
    url = config["BREACH_API_URL"]
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("IDP_BREACH_API_URL must be an absolute http(s) URL or empty")
    production = config["ENV"] == "production"
    if production and parts.scheme != "https" and parts.hostname not in LOOPBACK_HOSTS:
        raise ConfigError("IDP_BREACH_API_URL must use https outside localhost")
