"""The uptime history: every start, exit, restart, health change and fatal in SQLite ($OMNITRON_HOME/history.db).

One connection, WAL journal with `synchronous=NORMAL`: an event is one INSERT in its own transaction and
costs tens of microseconds, with no fsync (WAL checkpoints sync; a power cut may lose the last events but
never corrupts the file). Writes never raise into the daemon: a disk error is logged and the event dropped.
Only kinds, codes and the reasons the caller passes are stored: never env values or secrets.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import Any, Final

import structlog

from omnitron.errors import OmnitronError

log = structlog.get_logger()

# The kinds of contract section 10. Rows written by an older daemon may hold "health" (before it split into
# healthy/unhealthy): readers show whatever kind a row has.
KINDS: Final = frozenset({"start", "exit", "restart", "healthy", "unhealthy", "completed", "fatal", "stop", "scale",
                          "reload", "daemon_start", "daemon_stop"})
DAEMON_KINDS: Final = frozenset({"daemon_start", "daemon_stop", "reload"})
# The `app` of the daemon's own rows (daemon_start, daemon_stop). Readers recognise those rows by kind, so an
# app may be called "omnitron" too without its history mixing with the daemon's.
DAEMON_APP: Final = "omnitron"
PRUNE_EVERY: Final = 1000  # records between automatic prunes
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    app TEXT NOT NULL,
    instance INTEGER NOT NULL,
    pid INTEGER,
    exit_code INTEGER,
    signal INTEGER,
    reason TEXT,
    healthy INTEGER
);
CREATE INDEX IF NOT EXISTS events_app_instance_at ON events (app, instance, at);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
CREATE INDEX IF NOT EXISTS events_kind_at ON events (kind, at);
"""
_COLUMNS: Final = "id, at, kind, app, instance, pid, exit_code, signal, reason, healthy"
_NOT_DAEMONS: Final = "kind NOT IN ('daemon_start', 'daemon_stop', 'reload')"  # an app's own rows


class HistoryError(OmnitronError):
    """history.db cannot be read (the daemon never sees this: its writes only log)."""


@dataclass(frozen=True)
class HistoryEvent:
    id: int
    at: float  # wall-clock epoch seconds
    kind: str
    app: str
    instance: int
    pid: int | None
    exit_code: int | None
    signal: int | None
    reason: str | None
    healthy: bool | None

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def _event(row: tuple[Any, ...]) -> HistoryEvent:
    id_, at, kind, app, instance, pid, exit_code, signal, reason, healthy = row
    return HistoryEvent(
        id=int(id_),
        at=float(at),
        kind=str(kind),
        app=str(app),
        instance=int(instance),
        pid=pid,
        exit_code=exit_code,
        signal=signal,
        reason=reason,
        healthy=None if healthy is None else bool(healthy),
    )


class History:
    """Writer (the daemon) or, with `readonly=True`, reader (`omnitron history`) of one history.db."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        retention_s: float = 30 * 86400,
        max_rows: int = 1_000_000,
        readonly: bool = False,
        batched: bool = False,
    ) -> None:
        """`batched`: record() only queues the event and the owner calls flush() (the daemon does, a moment
        later), so a burst of events is one transaction instead of hundreds."""
        self.path = os.fspath(path)
        self._is_batched = batched
        self._pending: list[tuple[object, ...]] = []
        self.retention_s = retention_s
        self.max_rows = max_rows
        self._readonly = readonly
        self._since_prune = 0
        self._last_id = 0  # row ids are given here, at record(), so a queued event has its id (its `seq`) at once
        self._conn: sqlite3.Connection | None = None
        try:
            self._conn = self._open_readonly() if readonly else self._open()
        except (sqlite3.Error, OSError) as exc:
            if readonly:
                raise HistoryError(
                    f"cannot read {path}: {exc}", "check its permissions, or move it away to start a new history"
                ) from None
            log.warning("history_unavailable", path=str(path), error=str(exc), fix="move the file away and restart")
            return
        if not readonly:
            self.prune()

    def __repr__(self) -> str:
        mode = "closed" if self._conn is None else ("readonly" if self._readonly else "open")
        return f"<History {self.path} {mode}>"

    @property
    def available(self) -> bool:
        return self._conn is not None

    def _open(self) -> sqlite3.Connection:
        # Create the file ourselves so it gets 0600 whatever the umask; SQLite gives -wal/-shm the same mode.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=0.5, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            self._last_id = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _open_readonly(self) -> sqlite3.Connection:
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{self.path} does not exist")
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=2.0, check_same_thread=False)
        try:
            conn.execute("SELECT 1 FROM events LIMIT 1").fetchall()
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def record(
        self,
        kind: str,
        app: str,
        instance: int,
        *,
        pid: int | None = None,
        exit_code: int | None = None,
        signal: int | None = None,
        reason: str | None = None,
        healthy: bool | None = None,
        at: float | None = None,
    ) -> int:
        """Append one event and return its row id, which grows with every event (and survives restarts of the
        daemon); ValueError for an unknown kind (a bug), a logged warning for a disk error."""
        if kind not in KINDS:
            raise ValueError(f"unknown history event kind {kind!r}; expected one of {sorted(KINDS)}")
        self._last_id += 1
        if self._conn is None:
            return self._last_id
        row = (
            self._last_id,
            time.time() if at is None else at,
            kind,
            app,
            instance,
            pid,
            exit_code,
            signal,
            reason,
            None if healthy is None else int(healthy),
        )
        self._pending.append(row)
        if not self._is_batched:
            self.flush()
        return self._last_id

    @property
    def last_id(self) -> int:
        """The id of the last event recorded (0 before the first)."""
        return self._last_id

    def flush(self) -> None:
        """Write every queued event in one transaction; a disk error is logged and those events dropped."""
        if self._conn is None or not self._pending:
            self._pending.clear()
            return
        rows, self._pending = self._pending, []
        try:
            with self._conn:
                self._conn.execute("BEGIN")
                self._conn.executemany(
                    "INSERT INTO events (id, at, kind, app, instance, pid, exit_code, signal, reason, healthy) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.Error as exc:
            log.warning("history_write_failed", events=len(rows), error=str(exc))
            return
        self._since_prune += len(rows)
        if self._since_prune >= PRUNE_EVERY:
            self.prune()

    def prune(self) -> None:
        """Delete events older than `retention_s`, then the oldest beyond `max_rows`."""
        if self._conn is None or self._readonly:
            return
        self._since_prune = 0
        try:
            self._conn.execute("DELETE FROM events WHERE at < ?", (time.time() - self.retention_s,))
            self._conn.execute(
                "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?",
                (self.max_rows,),
            )
        except sqlite3.Error as exc:
            log.warning("history_prune_failed", error=str(exc))

    def close(self) -> None:
        self.flush()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except sqlite3.Error as exc:
                log.warning("history_close_failed", error=str(exc))

    def _query(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        self.flush()
        if self._conn is None:
            return []
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read {self.path}: {exc}", "move the file away to start a new history") from None

    def events(self, app: str | None = None, limit: int = 50) -> list[HistoryEvent]:
        """The last `limit` events of `app`, or of everything including the daemon's, oldest first."""
        where, params = (f"WHERE app = ? AND {_NOT_DAEMONS}", (app,)) if app else ("", ())
        rows = self._query(f"SELECT {_COLUMNS} FROM events {where} ORDER BY at DESC, id DESC LIMIT ?", (*params, limit))
        return [_event(row) for row in reversed(rows)]

    def tail(self, app: str | None = None, limit: int = 50, *, since: float | None = None) -> list[HistoryEvent]:
        """The last `limit` events in record order (row id), oldest first: `app`'s own (its scale events
        included), or every event; with `since`, only those recorded at or after that wall-clock time."""
        clauses: list[str] = []
        params: list[object] = []
        if app is not None:
            clauses.append(f"app = ? AND {_NOT_DAEMONS}")
            params.append(app)
        if since is not None:
            clauses.append("at >= ?")
            params.append(since)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(f"SELECT {_COLUMNS} FROM events {where} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [_event(row) for row in reversed(rows)]

    def apps(self) -> list[str]:
        """Every app name with at least one event of its own (daemon rows do not count), sorted."""
        rows = self._query(
            f"SELECT DISTINCT app FROM events WHERE {_NOT_DAEMONS} ORDER BY app", ()
        )
        return [str(row[0]) for row in rows]

    def uptime_ratio(self, app: str, window_s: float, now: float | None = None) -> float | None:
        """Mean over `app`'s instances of the fraction of the window each was up; None when there is no data.

        See `_instance_uptime` for what counts as up and which instances count.
        """
        ratios = list(self.instance_uptime_ratios(app, window_s, now).values())
        return sum(ratios) / len(ratios) if ratios else None

    def instance_uptime_ratios(self, app: str, window_s: float, now: float | None = None) -> dict[int, float]:
        """Per instance of `app` observed in the window, the fraction of it that the instance was up."""
        now = time.time() if now is None else now
        window_start = now - window_s
        first_seen: dict[int, float] = dict(
            self._query(
                "SELECT instance, MIN(at) FROM events WHERE app = ? AND at <= ? "
                f"AND {_NOT_DAEMONS} GROUP BY instance",
                (app, now),
            )
        )
        anchors: dict[int, float] = dict(
            self._query(
                "SELECT instance, MAX(at) FROM events WHERE app = ? AND kind = 'start' AND at < ? GROUP BY instance",
                (app, window_start),
            )
        )
        ratios: dict[int, float] = {}
        for instance, first_at in first_seen.items():
            anchor = anchors.get(instance)
            since = window_start if anchor is None else float(anchor)
            ratio = _instance_uptime(
                self._transitions(app, int(instance), since, now),
                observed_from=max(window_start, float(first_at)),
                now=now,
            )
            if ratio is not None:
                ratios[int(instance)] = ratio
        return ratios

    def _transitions(self, app: str, instance: int, since: float, now: float) -> list[tuple[float, int, str]]:
        """(at, id, kind) of the instance's start/exit/stop and the daemon's start/stop since `since`, in order."""
        rows = self._query(
            "SELECT at, id, kind FROM events WHERE app = ? AND instance = ? AND kind IN ('start', 'exit', 'stop') "
            "AND at >= ? AND at <= ? "
            "UNION ALL SELECT at, id, kind FROM events WHERE kind IN ('daemon_start', 'daemon_stop') "
            "AND at >= ? AND at <= ? ORDER BY 1, 2",
            (app, instance, since, now, since, now),
        )
        return [(float(at), int(id_), str(kind)) for at, id_, kind in rows]


def _instance_uptime(transitions: list[tuple[float, int, str]], *, observed_from: float, now: float) -> float | None:
    """Up time / observed time for one instance, or None when it was not observed in this window.

    Up runs from a `start` to the next `exit`, or to a daemon start or stop (a daemon that died without
    recording exits left nothing running). Observed time starts at the later of the window start and the
    instance's first event, so a new app is not penalised for the time before it existed, and leaves out
    the time after an operator `stop` until the next start: a stopped or scaled-away instance is neither up
    nor down. A crashed, fatal, or daemon-less instance is down.
    """

    def overlap(begin: float, end: float) -> float:
        return max(0.0, min(end, now) - max(begin, observed_from))

    up_since: float | None = None
    paused_since: float | None = None
    is_stop_requested = False
    up_s = paused_s = 0.0
    for at, _id, kind in transitions:
        if kind == "start":
            if paused_since is not None:
                paused_s += overlap(paused_since, at)
                paused_since = None
            is_stop_requested = False
            up_since = at if up_since is None else up_since
        elif kind == "stop":
            is_stop_requested = True
            if up_since is None and paused_since is None:
                paused_since = at
        elif up_since is not None:  # exit, daemon_start, daemon_stop
            up_s += overlap(up_since, at)
            up_since = None
            if is_stop_requested:
                paused_since = at
    if up_since is not None:
        up_s += overlap(up_since, now)
    if paused_since is not None:
        paused_s += overlap(paused_since, now)
    if not any(kind == "start" for _at, _id, kind in transitions):
        return None
    observed_s = overlap(observed_from, now) - paused_s
    if observed_s <= 0:
        return None
    return min(up_s / observed_s, 1.0)
