"""Throttling of every guessable secret, per account, with a backing-off ladder of windows.

Failures are counted in moving windows (memory, or Redis shared by every node).
Passing a rung makes the user wait until that window moves on; success clears the
count. Nothing locks for good: the longest rung is a day,
and NIST SP 800-63B's ceiling of 100 consecutive failures is the daily rung. The
email-code recovery has its own limits, so a locked password never blocks it.

Checks run in a fixed order (warehouse): throttle → verify → record.
"""

import logging
import time

from flask import current_app
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger("idp.throttle")

LADDERS = {
    "password": ("5/minute", "20/hour", "100/day"),
    "totp": ("5/minute", "20/hour", "100/day"),
    "recovery": ("5/minute", "10/hour", "30/day"),
}
# When the counter store is unreachable, guessable steps fail closed for this long.
FAIL_CLOSED_SECONDS = 60


def init_app(app):
    """Counters live where Flask-Limiter's do (``RATELIMIT_STORAGE_URI``: memory or Redis),
    in a store of their own: they stay on even where per-IP limits are switched off."""
    storage = storage_from_string(app.config["RATELIMIT_STORAGE_URI"])
    app.extensions["idp.throttle"] = MovingWindowRateLimiter(storage)


def _strategy():
    return current_app.extensions["idp.throttle"]


def _items(kind):
    return [parse(rung) for rung in LADDERS[kind]]


def retry_after(kind, tenant, subject):
    """Seconds to wait before the next try, or None when a try is allowed now."""
    try:
        strategy = _strategy()
        waits = []
        for item in _items(kind):
            if not strategy.test(item, kind, str(tenant.id), subject):
                stats = strategy.get_window_stats(item, kind, str(tenant.id), subject)
                waits.append(max(1, int(stats.reset_time - time.time())))
        return max(waits) if waits else None
    except Exception as exc:  # the store is down: refuse, never guess unthrottled
        log.error("throttle store unavailable (%s); %s attempts fail closed", _name(exc), kind)
        return FAIL_CLOSED_SECONDS


def record_failure(kind, tenant, subject):
    """Count one failed try against every rung; the try that fills a rung is a lock-out."""
    try:
        strategy = _strategy()
        filled = [
            item
            for item in _items(kind)
            if strategy.hit(item, kind, str(tenant.id), subject)
            and not strategy.test(item, kind, str(tenant.id), subject)
        ]
    except Exception as exc:
        log.error("throttle store unavailable (%s); failure of %s not counted", _name(exc), kind)
        return
    if filled:
        from idp.services import audit

        audit.record(tenant, "lockout", kind=kind, subject=subject, rung=str(filled[-1]))


def reset(kind, tenant, subject):
    """A success clears the count (the limit is on consecutive failures)."""
    try:
        strategy = _strategy()
        for item in _items(kind):
            strategy.clear(item, kind, str(tenant.id), subject)
    except Exception as exc:
        log.error("throttle store unavailable (%s); %s count not cleared", _name(exc), kind)


def _name(exc):
    """The error's full class name, which names the store (``redis.exceptions.…``) and never
    carries its URL or password."""
    return f"{type(exc).__module__}.{type(exc).__qualname__}"
