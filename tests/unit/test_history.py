"""History on a real SQLite file: events, uptime windows, retention, file mode, errors, and `omnitron history`."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from omnitron.cli import main
from omnitron.home.history import DAEMON_APP, History, HistoryError

HOUR = 3600.0
T0 = 1_800_000_000.0  # a fixed wall-clock epoch for synthetic timelines


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "history.db"


@pytest.fixture
def history(db: Path) -> Iterator[History]:
    h = History(db)
    yield h
    h.close()


def test_record_and_list_events_oldest_first(history: History) -> None:
    history.record("daemon_start", DAEMON_APP, 0, pid=41, at=T0)
    history.record("start", "api", 0, pid=57, at=T0 + 1)
    history.record("exit", "api", 0, pid=57, exit_code=1, at=T0 + 2)
    history.record("restart", "api", 0, reason="crash", at=T0 + 2.1)
    history.record("unhealthy", "web", 1, healthy=False, reason="HTTP 500", at=T0 + 3)
    history.record("exit", "web", 1, signal=9, at=T0 + 4)
    events = history.events()
    assert [e.kind for e in events] == ["daemon_start", "start", "exit", "restart", "unhealthy", "exit"]
    assert events[2].exit_code == 1 and events[2].pid == 57
    assert events[4].healthy is False and events[4].reason == "HTTP 500"
    assert events[5].signal == 9 and events[5].exit_code is None
    assert [e.kind for e in history.events("api")] == ["start", "exit", "restart"]
    assert [e.kind for e in history.events(limit=2)] == ["unhealthy", "exit"]
    assert history.apps() == ["api", "web"]


def test_an_app_named_like_the_daemon_gets_only_its_own_rows(history: History) -> None:
    history.record("daemon_start", DAEMON_APP, 0, at=T0)
    history.record("start", DAEMON_APP, 0, pid=57, at=T0 + 1)
    history.record("daemon_stop", DAEMON_APP, 0, at=T0 + 2)
    assert [e.kind for e in history.events(DAEMON_APP)] == ["start"]
    assert history.apps() == [DAEMON_APP]


def test_default_timestamp_is_wall_clock(history: History) -> None:
    before = time.time()
    history.record("start", "api", 0)
    (event,) = history.events()
    assert before <= event.at <= time.time()


def test_events_survive_close_and_reopen(db: Path) -> None:
    first = History(db)
    first.record("start", "api", 0, pid=10, at=T0)
    first.record("fatal", "api", 0, reason="too many restarts", at=T0 + 5)
    first.close()
    second = History(db)
    second.record("start", "api", 0, pid=11, at=T0 + 10)
    assert [(e.kind, e.pid) for e in second.events("api")] == [("start", 10), ("fatal", None), ("start", 11)]
    second.close()


def test_file_and_wal_are_private(db: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        h = History(db)
        h.record("start", "api", 0)
    finally:
        os.umask(old_umask)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in db.parent.iterdir() if p.name.startswith("history.db")}
    h.close()
    assert modes["history.db"] == 0o600
    assert all(mode == 0o600 for mode in modes.values()), modes


def test_journal_is_wal(history: History, db: Path) -> None:
    import sqlite3

    history.record("start", "api", 0)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unknown_kind_is_a_bug(history: History) -> None:
    with pytest.raises(ValueError, match="unknown history event kind"):
        history.record("exploded", "api", 0)


def test_retention_prunes_old_events(db: Path) -> None:
    h = History(db, retention_s=HOUR)
    now = time.time()
    h.record("start", "api", 0, at=now - 2 * HOUR)
    h.record("exit", "api", 0, at=now - 10)
    h.prune()
    assert [e.kind for e in h.events()] == ["exit"]
    h.close()


def test_max_rows_keeps_the_newest(db: Path) -> None:
    h = History(db, max_rows=3)
    now = time.time()
    for i in range(5):
        h.record("start", "api", i, at=now + i)
    h.prune()
    assert [e.instance for e in h.events()] == [2, 3, 4]
    h.close()


def test_reopening_prunes(db: Path) -> None:
    h = History(db)
    h.record("start", "api", 0, at=time.time() - 2 * HOUR)
    h.close()
    h = History(db, retention_s=HOUR)
    assert h.events() == []
    h.close()


def test_record_after_close_is_a_quiet_no_op(history: History) -> None:
    history.close()
    with structlog.testing.capture_logs() as logs:
        history.record("start", "api", 0)  # closed: nothing happens, quietly
    assert logs == []
    assert not history.available


def test_a_corrupt_file_disables_history_with_a_warning(db: Path) -> None:
    db.write_bytes(b"this is not a database" * 100)
    with structlog.testing.capture_logs() as logs:
        h = History(db)
        h.record("start", "api", 0)
    assert not h.available
    assert [entry["event"] for entry in logs] == ["history_unavailable"]
    assert logs[0]["log_level"] == "warning"
    with pytest.raises(HistoryError, match="cannot read"):
        History(db, readonly=True)


def test_a_write_failure_on_disk_is_logged(db: Path) -> None:
    h = History(db)
    h.record("start", "api", 0)
    # Another connection holds the write lock past our busy timeout: a real "database is locked".
    import sqlite3

    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with structlog.testing.capture_logs() as logs:
            h.record("exit", "api", 0, exit_code=1)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert [entry["event"] for entry in logs] == ["history_write_failed"]
    assert [e.kind for e in h.events()] == ["start"]
    h.close()


def test_readonly_reader_sees_the_writer(db: Path) -> None:
    writer = History(db)
    writer.record("start", "api", 0, at=T0)
    reader = History(db, readonly=True)
    writer.record("exit", "api", 0, exit_code=0, at=T0 + 1)
    assert [e.kind for e in reader.events()] == ["start", "exit"]
    reader.close()
    writer.close()


def test_readonly_of_a_missing_file_is_an_error(db: Path) -> None:
    with pytest.raises(HistoryError):
        History(db, readonly=True)
    assert not db.exists()


# --- uptime -----------------------------------------------------------------------------------------------------


def test_no_data_is_none(history: History) -> None:
    assert history.uptime_ratio("api", HOUR, now=T0) is None


def test_up_half_the_window(history: History) -> None:
    history.record("start", "api", 0, at=T0 - 2 * HOUR)
    history.record("exit", "api", 0, exit_code=1, at=T0 - HOUR / 2)
    assert history.uptime_ratio("api", HOUR, now=T0) == pytest.approx(0.5)


def test_up_the_whole_window_since_before_it(history: History) -> None:
    history.record("start", "api", 0, at=T0 - 5 * HOUR)
    history.record("healthy", "api", 0, healthy=True, at=T0 - 5 * HOUR + 1)
    assert history.uptime_ratio("api", HOUR, now=T0) == pytest.approx(1.0)
    assert history.uptime_ratio("api", 24 * HOUR, now=T0) == pytest.approx(1.0)


def test_a_new_app_is_measured_from_its_first_event(history: History) -> None:
    history.record("start", "api", 0, at=T0 - 600)
    history.record("exit", "api", 0, exit_code=1, at=T0 - 300)
    history.record("start", "api", 0, at=T0 - 240)
    assert history.uptime_ratio("api", HOUR, now=T0) == pytest.approx(540 / 600)


def test_instances_are_averaged(history: History) -> None:
    history.record("start", "api", 0, at=T0 - 2 * HOUR)
    history.record("start", "api", 1, at=T0 - 2 * HOUR)
    history.record("exit", "api", 1, exit_code=137, at=T0 - HOUR / 2)
    assert history.uptime_ratio("api", HOUR, now=T0) == pytest.approx(0.75)


def test_a_crashed_instance_stays_down(history: History) -> None:
    history.record("start", "api", 0, at=T0 - 3 * HOUR)
    history.record("exit", "api", 0, exit_code=1, at=T0 - 2 * HOUR)
    history.record("fatal", "api", 0, reason="too many restarts", at=T0 - 2 * HOUR)
    assert history.uptime_ratio("api", HOUR, now=T0) == pytest.approx(0.0)


def test_operator_stop_is_neither_up_nor_down(history: History) -> None:
    history.record("start", "api", 0, at=T0 - 2 * HOUR)
    history.record("start", "api", 1, at=T0 - 2 * HOUR)
    # instance 1 scaled away 30 minutes into the window: counted only while it ran
    history.record("stop", "api", 1, reason="operator", at=T0 - HOUR / 2)
    history.record("exit", "api", 1, signal=15, at=T0 - HOUR / 2 + 1)
    assert history.uptime_ratio("api", HOUR, now=T0) == pytest.approx(1.0)


def test_an_instance_stopped_before_the_window_does_not_count(history: History) -> None:
    history.record("start", "api", 0, at=T0 - 3 * HOUR)
    history.record("start", "api", 1, at=T0 - 3 * HOUR)
    history.record("stop", "api", 1, at=T0 - 2 * HOUR)
    history.record("exit", "api", 1, at=T0 - 2 * HOUR)
    assert history.uptime_ratio("api", HOUR, now=T0) == pytest.approx(1.0)
    history.record("stop", "api", 0, at=T0 - 2 * HOUR)
    history.record("exit", "api", 0, at=T0 - 2 * HOUR)
    assert history.uptime_ratio("api", HOUR, now=T0) is None


def test_daemon_stop_and_start_close_open_intervals(history: History) -> None:
    history.record("daemon_start", DAEMON_APP, 0, at=T0 - 2 * HOUR)
    history.record("start", "api", 0, at=T0 - 2 * HOUR)
    # the daemon was SIGKILLed (no exit recorded) and came back 15 minutes later
    history.record("daemon_start", DAEMON_APP, 0, at=T0 - HOUR / 2)
    history.record("start", "api", 0, at=T0 - HOUR / 4)
    assert history.uptime_ratio("api", HOUR, now=T0) == pytest.approx(0.75)


def test_daemon_rows_count_whatever_app_name_they_carry(history: History) -> None:
    history.record("start", "api", 0, at=T0 - 2 * HOUR)
    history.record("daemon_stop", "omnitron", 0, at=T0 - HOUR / 2)
    history.record("daemon_start", "omnitron", 0, at=T0 - HOUR / 4)
    history.record("start", "api", 0, at=T0 - HOUR / 4)
    assert history.uptime_ratio("api", HOUR, now=T0) == pytest.approx(0.75)
    assert history.apps() == ["api"]
    assert [e.kind for e in history.events("omnitron")] == []


def test_uptime_across_close_and_reopen(db: Path) -> None:
    h = History(db)
    h.record("daemon_start", DAEMON_APP, 0, at=T0 - 2 * HOUR)
    h.record("start", "api", 0, at=T0 - 2 * HOUR)
    h.record("exit", "api", 0, signal=15, at=T0 - HOUR / 2)
    h.record("daemon_stop", DAEMON_APP, 0, at=T0 - HOUR / 2)
    h.close()
    h = History(db)
    h.record("daemon_start", DAEMON_APP, 0, at=T0 - HOUR / 4)
    h.record("start", "api", 0, at=T0 - HOUR / 4)
    assert h.uptime_ratio("api", HOUR, now=T0) == pytest.approx(0.75)
    h.close()


def test_each_instance_has_its_own_uptime_and_the_app_is_their_mean(db: Path) -> None:
    h = History(db)
    h.record("daemon_start", DAEMON_APP, 0, at=T0 - HOUR)
    h.record("start", "api", 0, at=T0 - HOUR)
    h.record("start", "api", 1, at=T0 - HOUR)
    h.record("exit", "api", 1, exit_code=1, at=T0 - HOUR / 4)
    assert h.instance_uptime_ratios("api", HOUR, now=T0) == {0: pytest.approx(1.0), 1: pytest.approx(0.75)}
    assert h.uptime_ratio("api", HOUR, now=T0) == pytest.approx(0.875)
    assert h.instance_uptime_ratios("api", HOUR, now=T0 - 2 * HOUR) == {}  # not observed yet
    h.close()


# --- omnitron history --------------------------------------------------------------------------------------------


def test_cli_without_history_is_friendly(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history"]) == 0
    assert "no history yet" in capsys.readouterr().out
    assert not (home / "history.db").exists()


def test_cli_json_without_history(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"events": [], "uptime": {}}


def seed(home: Path) -> None:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = time.time()
    h = History(home / "history.db")
    h.record("daemon_start", DAEMON_APP, 0, pid=41, at=now - 2 * HOUR)
    h.record("start", "api", 0, pid=57, at=now - 2 * HOUR)
    h.record("start", "worker", 0, pid=58, at=now - 2 * HOUR)
    h.record("exit", "worker", 0, pid=58, signal=9, at=now - HOUR / 2)
    h.record("restart", "worker", 0, reason="memory", at=now - HOUR / 2)
    h.close()


def test_cli_lists_events_and_uptime(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed(home)
    assert main(["history"]) == 0
    out = capsys.readouterr().out
    assert "api:0" in out and "worker:0" in out and "signal=SIGKILL" in out and "reason=memory" in out
    assert f"{DAEMON_APP}:0" not in out  # daemon rows show as "daemon", not as an app instance
    assert any(line.split()[1:3] == ["daemon", "daemon_start"] for line in out.splitlines() if line.strip())
    uptime_lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()[-2:]}
    assert uptime_lines["api"] == ["100.0%", "100.0%"]
    assert uptime_lines["worker"][0] == "50.0%"


def test_cli_json_for_one_app(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed(home)
    assert main(["history", "worker", "-n", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["kind"] for e in doc["events"]] == ["restart"]
    assert doc["events"][0]["reason"] == "memory"
    assert set(doc["uptime"]) == {"worker"}
    assert doc["uptime"]["worker"]["last_hour"] == pytest.approx(0.5, abs=0.01)


def test_cli_unknown_app_has_no_events(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed(home)
    assert main(["history", "nope"]) == 0
    assert "no events for nope" in capsys.readouterr().out


def test_cli_bad_count_is_usage_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "-n", "0"]) == 2
    assert "-n must be 1 or more" in capsys.readouterr().err
