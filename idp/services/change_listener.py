"""A thread per cache and process that hears from PostgreSQL when rows it keeps changed.

The caches that keep rows in process memory (``client_cache``, ``token_cache``) must stop
using a row as soon as any node, a cascade or an operator in psql changes it. A trigger on
the table sends ``NOTIFY`` when the changing transaction commits, and PostgreSQL delivers it
to every listening connection. Each cache has one ``Listener`` on a connection of its own:

- **Trusted only while connected.** ``cache.set_live(True)`` once the connection listens
  and the cache's triggers exist; ``set_live(False)`` on any failure. The cache forgets
  everything each time: what was notified while nobody listened is lost.
- **Nothing waiting unread** (``quiet``). A notification PostgreSQL has delivered but this
  process has not applied yet (it sits in the socket, or the listener thread is applying
  it, or waiting for the GIL) would let a cached row outlive its change by that long. A
  cache asks ``quiet()`` before it answers from memory: one non-blocking ``poll`` of the
  listener's socket and a flag, so that the window left is PostgreSQL's own delivery.
- **Heard from recently.** A heartbeat (``SELECT 1``) after every ``HEARTBEAT`` seconds
  without news, during which the listener is busy: a node cut off from PostgreSQL without
  a sign (a network partition, while other nodes still revoke) stops answering from
  memory within a heartbeat, long before keepalives and the TCP user timeout end the
  connection (~15 s). As a guard for a listener thread that could not run at all,
  ``quiet()`` is also false once ``TRUSTED_FOR`` seconds have passed since PostgreSQL
  was last heard from.
- **No trigger, no trust**: a schema that predates the migration (nodes started before
  ``idp init``) would never notify; the cache then keeps nothing, says so once, and the
  listener looks again every ``cache.RECHECK`` seconds.
"""

import os
import select
import threading
import time

from sqlalchemy import event

HEARTBEAT = 1.0  # seconds without news before the listener checks its connection
TRUSTED_FOR = 2.5  # seconds since PostgreSQL was last heard from, while quiet() can be true
RECONNECT_DELAY = 5.0  # seconds: the longest wait between attempts to connect


class Listener(threading.Thread):
    """``LISTEN`` on ``cache.CHANNELS`` on a connection of its own; reconnects until stopped.

    ``cache`` provides ``CHANNELS``, ``TRIGGERS`` (``(trigger, table)`` pairs that must
    exist), ``RECHECK``, ``notified(channel, payload)`` and ``set_live(flag)``.
    """

    def __init__(self, cache, engine, name, label, log):
        super().__init__(name=name, daemon=True)
        self.cache = cache
        self.engine = engine
        self.label = label  # what its log lines start with
        self.log = log
        self._stopped = threading.Event()
        self._warned_trigger = False
        self._fd = None  # the listening socket, while connected
        self._busy = False  # reading or applying notifications, or in the heartbeat
        self._heard = 0.0  # time.monotonic() of PostgreSQL's last answer or notification
        self.backend_pid = None  # its connection's server process, while connected
        self._pollers = threading.local()  # each thread's poll object on ``_fd``

    @property
    def application_name(self):
        """How its connection shows in ``pg_stat_activity``."""
        return self.name

    def stop(self):
        """Stop listening (the cache is no longer trusted)."""
        self._stopped.set()
        self.cache.set_live(False)

    def quiet(self):
        """Whether every notification delivered to this process so far has been applied."""
        fd = self._fd
        if fd is None:
            return False
        local = self._pollers
        if getattr(local, "fd", None) != fd:
            local.poller = select.poll()
            local.poller.register(fd, select.POLLIN)
            local.fd = fd
        if local.poller.poll(0):  # waiting to be read (or the connection broke)
            return False
        if time.monotonic() - self._heard > TRUSTED_FOR:
            return False  # the listener could not run: what it missed is unknown
        return not self._busy and self._fd == fd  # socket first, then the flag

    def run(self):
        """Listen; on any failure distrust the cache, wait a little, and connect again."""
        import psycopg

        delay, failing = 0.5, False
        while not self._stopped.is_set():
            try:
                with self._connect(psycopg) as connection:
                    for channel in self.cache.CHANNELS:
                        connection.execute(f"LISTEN {channel}")
                    missing = self._missing_trigger(connection)
                    if missing:
                        self._without_trigger(*missing)
                        continue
                    self.cache.set_live(True)
                    if failing:
                        self.log.warning("%s: listening again; what it keeps is used", self.label)
                    delay, failing = 0.5, False
                    self._listen(connection)
            except Exception as error:  # noqa: BLE001 (psycopg's, or a bug: listen again)
                self.cache.set_live(False)
                if not isinstance(error, psycopg.Error):
                    self.log.exception("%s: unexpected error; listening again", self.label)
                if self._stopped.is_set():
                    break  # the app shut down: its database may be gone
                if not failing:
                    self.log.warning(
                        "%s: lost %s (%s); rows are read from the database on every request "
                        "until it is back",
                        self.label, ", ".join(self.cache.CHANNELS), error.__class__.__name__,
                    )  # fmt: skip
                failing = True
            self._stopped.wait(delay)
            delay = min(delay * 2, RECONNECT_DELAY)
        self.cache.set_live(False)

    def _missing_trigger(self, connection):
        for trigger, table in self.cache.TRIGGERS:
            found = connection.execute(
                "SELECT 1 FROM pg_trigger WHERE tgname = %s AND tgrelid = %s::regclass",
                (trigger, table),
            ).fetchone()
            if not found:
                return trigger, table
        return None

    def _without_trigger(self, trigger, table):
        """Nothing would notify: keep nothing, say so once, and look again later."""
        if not self._warned_trigger:
            self.log.warning(
                "%s: no %s trigger on %s (run `idp init`); rows are read from the database "
                "on every request", self.label, trigger, table,
            )  # fmt: skip
            self._warned_trigger = True
        self._stopped.wait(self.cache.RECHECK)

    def _connect(self, psycopg):
        cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
        cparams.pop("context", None)  # SQLAlchemy's adapters: not needed for LISTEN
        # A peer gone without a word: keepalives find it while idle, the user timeout (ms)
        # while the heartbeat waits for an answer; either ends the connection in ~15 s.
        keepalive = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2}
        for name, value in {**keepalive, "keepalives_count": 3, "tcp_user_timeout": 10_000}.items():
            cparams.setdefault(name, value)
        cparams.setdefault("connect_timeout", 5)
        cparams["application_name"] = self.application_name
        return psycopg.connect(*cargs, autocommit=True, **cparams)

    def _listen(self, connection):
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN)
        self._fd = connection.fileno()
        self.backend_pid = connection.info.backend_pid
        self._heard = time.monotonic()  # it has just answered the trigger check
        try:
            while not self._stopped.is_set():
                ready = poller.poll(HEARTBEAT * 1000)
                self._busy = True  # before anything is read off the socket
                try:
                    if not ready:
                        connection.execute("SELECT 1")  # a connection that died quietly raises
                    # What arrived, or came in with the heartbeat's answer; timeout 0 reads once.
                    for note in connection.notifies(timeout=0):
                        self.cache.notified(note.channel, note.payload)
                    self._heard = time.monotonic()
                finally:
                    self._busy = False
        finally:
            self._fd = self.backend_pid = None


class ListenedCache:
    """What a cache kept up to date by a ``Listener`` has in common: one per app and process
    (``of``), started on first use; a kept value used only while ``live``, younger than
    ``MAX_AGE`` and the listener quiet (``lookup``).

    A subclass names ``EXTENSION`` (its key in ``app.extensions``), ``SETTING`` (the config
    flag that turns it on), ``MAX_AGE``, ``APPLICATION_NAME``, ``LABEL`` and ``log`` for its
    listener, the listener's ``CHANNELS``, ``TRIGGERS``, ``RECHECK`` and ``notified``; and,
    called under ``_lock``, ``_keep(key, value)`` (into ``_entries``) and ``_clear``.
    """

    def __init__(self, engine):
        self.pid = os.getpid()
        self.engine = engine
        self.live = False
        self.generation = 0  # moves on with every forgetting
        self._entries = {}  # key -> (read at, value)
        self._lock = threading.Lock()
        self.listener = Listener(self, engine, self.APPLICATION_NAME, self.LABEL, self.log)

    def lookup(self, key, read):
        """The kept value, or ``read()``'s (kept if found and nothing changed meanwhile:
        a notification during the read may be about what it read)."""
        kept = self._entries.get(key)
        if (
            kept is not None
            and self.live
            and time.monotonic() - kept[0] < self.MAX_AGE
            and self.listener.quiet()
        ):
            return kept[1]
        generation = self.generation
        value = read()
        if value is None or not self.live:
            return value
        with self._lock:
            if self.live and self.generation == generation:
                self._keep(key, value)
        return value

    @classmethod
    def of(cls, app):
        """``app``'s cache in this process, started on first use; None when its setting is
        off or the database is not PostgreSQL (nothing would notify)."""
        from idp.extensions import db

        cache = app.extensions.get(cls.EXTENSION)
        if cache is not None and cache.pid == os.getpid():
            return cache
        if not app.config[cls.SETTING] or db.engine.dialect.name != "postgresql":
            return None
        with _starting:
            cache = app.extensions.get(cls.EXTENSION)
            if cache is None or cache.pid != os.getpid():  # none yet, or inherited by a fork
                cache = cls(db.engine)
                app.extensions[cls.EXTENSION] = cache
                cache.start()
        return cache

    def start(self):
        """Listen from now on; stop when the engine is disposed (the app is shutting down)."""
        event.listen(self.engine, "engine_disposed", lambda _engine: self.listener.stop())
        self.listener.start()

    def set_live(self, live):
        """Trust what is kept from now on, or stop; either way nothing kept so far stays."""
        with self._lock:
            self.generation += 1
            self._clear()
            self.live = live


_starting = threading.Lock()
