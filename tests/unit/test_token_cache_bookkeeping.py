"""The token cache's own bookkeeping (``idp.services.token_cache.TokenCache``), without a
database: its listener is never started, and is taken as quiet."""

from types import SimpleNamespace

from idp.services import token_cache


def _row(user_id):
    return SimpleNamespace(user_id=user_id, tenant_id=1)


def test_a_full_cache_lets_the_oldest_go(monkeypatch):
    monkeypatch.setattr(token_cache, "MAX_ENTRIES", 2)
    cache = token_cache.TokenCache(engine=None)
    cache.live = True
    monkeypatch.setattr(cache.listener, "quiet", lambda: True)
    reads = []

    def read(jti, user_id):
        def run():
            reads.append(jti)
            return _row(user_id)

        return run

    for jti, user_id in (("a", 1), ("b", 1), ("c", 2)):
        cache.lookup(jti, read(jti, user_id))
    assert reads == ["a", "b", "c"]
    cache.lookup("b", read("b", 1))
    cache.lookup("c", read("c", 2))
    assert reads == ["a", "b", "c"]  # both kept
    cache.lookup("a", read("a", 1))
    assert reads == ["a", "b", "c", "a"]  # "a" had gone, first in
    cache.notified("idp_users", "1")  # user 1's tokens: "a" and "b" (if kept)
    cache.lookup("c", read("c", 2))
    cache.lookup("a", read("a", 1))
    assert reads == ["a", "b", "c", "a", "a"]
    assert cache._by_user == {1: {"a"}, 2: {"c"}}  # what went is gone from the index too


def _quiet_cache(monkeypatch, quiet=True):
    cache = token_cache.TokenCache(engine=None)
    cache.live = True
    monkeypatch.setattr(cache.listener, "quiet", lambda: quiet)
    return cache


def test_a_row_read_while_a_notification_arrived_is_not_kept(monkeypatch):
    """The row read may be the one the notification is about: the next lookup reads again."""
    cache = _quiet_cache(monkeypatch)
    reads = []

    def read_during_a_notification():
        reads.append(1)
        cache.notified("idp_tokens", "some other jti")  # which row: unknown to the reader
        return _row(1)

    cache.lookup("a", read_during_a_notification)
    cache.lookup("a", lambda: reads.append(2) or _row(1))
    cache.lookup("a", lambda: reads.append(3) or _row(1))
    assert reads == [1, 2]  # the second read was kept


def test_nothing_is_used_while_a_notification_waits_or_nobody_listens(monkeypatch):
    waiting = _quiet_cache(monkeypatch, quiet=False)
    reads = []
    for _ in range(2):
        waiting.lookup("a", lambda: reads.append("waiting") or _row(1))
    not_listening = _quiet_cache(monkeypatch)
    not_listening.set_live(False)
    for _ in range(2):
        not_listening.lookup("a", lambda: reads.append("down") or _row(1))
    assert reads == ["waiting", "waiting", "down", "down"]
    assert not_listening._entries == {}
