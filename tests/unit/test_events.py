"""The event stream: seq numbering (history.db row ids), levels, live fan-out and the stored/live seam."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from structlog.testing import capture_logs

from omnitron.home.history import History
from omnitron.runtime.events import Event, EventHub, EventRecorder, daemon_event, level_of

pytestmark = pytest.mark.anyio


def recorder(tmp_path: Path, hub: EventHub | None = None) -> EventRecorder:
    return EventRecorder(History(tmp_path / "history.db", batched=True), hub)


def test_seq_is_the_history_row_id_and_keeps_growing_across_daemons(tmp_path: Path) -> None:
    first = recorder(tmp_path)
    seen: list[Event] = []
    first.add_listener(seen.append)
    first.emit(daemon_event("daemon_start", pid=1))
    first.emit(Event("start", "api", 0, pid=5))
    first.close()
    second = recorder(tmp_path)
    second.add_listener(seen.append)
    second.emit(Event("exit", "api", 0, pid=5, exit_code=1))
    second.close()
    assert [e.seq for e in seen] == [1, 2, 3]
    with sqlite3.connect(tmp_path / "history.db") as db:
        rows = db.execute("SELECT id, kind FROM events ORDER BY id").fetchall()
    assert rows == [(1, "daemon_start"), (2, "start"), (3, "exit")]


@pytest.mark.parametrize(("event", "level"), [
    (Event("exit", "a", 0, exit_code=1), "warning"),
    (Event("exit", "a", 0, signal=9), "warning"),
    (Event("exit", "a", 0, exit_code=0), "info"),
    (Event("exit", "a", 0, signal=15, reason="operator"), "info"),
    (Event("restart", "a", 0, reason="crash"), "warning"),
    (Event("restart", "a", 0, reason="liveness"), "warning"),
    (Event("restart", "a", 0, reason="memory"), "warning"),
    (Event("restart", "a", 0, reason="operator"), "info"),
    (Event("restart", "a", 0, reason="reload"), "info"),
    (Event("fatal", "a", 0, reason="crash loop"), "error"),
    (Event("unhealthy", "a", 0, healthy=False), "warning"),
    (Event("healthy", "a", 0, healthy=True), "info"),
    (Event("start", "a", 0), "info"),
    (Event("stop", "a", 0), "info"),
    (Event("completed", "a", 0), "info"),
    (Event("scale", "a", 0, reason="1 -> 2 (operator)"), "info"),
])
def test_level_of_each_event(event: Event, level: str) -> None:
    assert level_of(event) == level


def test_the_log_line_has_the_events_level_and_seq(tmp_path: Path) -> None:
    events = recorder(tmp_path)
    with capture_logs() as logs:
        events.emit(Event("exit", "api", 0, pid=7, exit_code=3))
        events.emit(Event("fatal", "api", 0, reason="crash loop: exit code 3"))
    events.close()
    assert [(e["event"], e["log_level"], e["seq"]) for e in logs] == [
        ("instance_exited", "warning", 1), ("instance_fatal", "error", 2)]


async def test_subscribers_get_what_they_asked_for(tmp_path: Path) -> None:
    events = recorder(tmp_path)
    with events.hub.subscribe() as everything, events.hub.subscribe("api") as api:
        events.emit(Event("start", "api", 0))
        events.emit(Event("start", "web", 0))
        events.emit(daemon_event("reload", reason="changed api"))
        events.emit(Event("exit", "api", 0, exit_code=1))
        events.hub.close()
        assert [(e.kind, e.app) async for e in everything] == [
            ("start", "api"), ("start", "web"), ("reload", "omnitron"), ("exit", "api")]
        assert [(e.kind, e.seq) async for e in api] == [("start", 1), ("exit", 4)]
    events.close()


async def test_a_slow_subscriber_is_dropped_and_never_blocks_emit(tmp_path: Path) -> None:
    events = recorder(tmp_path, EventHub(buffer=3))
    with events.hub.subscribe() as slow, events.hub.subscribe() as fast:
        got: list[int] = []
        for n in range(10):
            events.emit(Event("start", "api", n))  # returns at once: nobody reads `slow`
            got += [(await fast.__anext__()).instance]
        assert got == list(range(10)), "a reader that keeps up gets every event"
        assert slow.is_dropped and events.hub.dropped == 1
        assert [e.instance async for e in slow] == [0, 1, 2], "it keeps what it had, then its stream ends"
    events.close()


async def test_follow_has_no_gap_or_repeat_at_the_seam(tmp_path: Path) -> None:
    events = recorder(tmp_path)
    for n in range(5):
        events.emit(Event("start", "api", n))
    got: list[int] = []

    async def follow() -> None:
        async for event in events.follow(None, 3):
            got.append(event.seq)

    async def emit_more() -> None:
        for n in range(5, 10):
            events.emit(Event("start", "api", n))
            await anyio.lowlevel.checkpoint()  # interleave with the follower, at and after its tail read
        events.hub.close()

    async with anyio.create_task_group() as tg:
        tg.start_soon(follow)
        tg.start_soon(emit_more)
    assert got == list(range(3, 11)), "the last 3 stored, then each later one once"
    events.close()


async def test_follow_with_no_tail_starts_at_the_next_event(tmp_path: Path) -> None:
    events = recorder(tmp_path)
    events.emit(Event("start", "api", 0))
    got: list[tuple[str, int]] = []

    async def follow() -> None:
        async for event in events.follow("api", 0):
            got.append((event.kind, event.seq))

    async with anyio.create_task_group() as tg:
        tg.start_soon(follow)
        await anyio.wait_all_tasks_blocked()  # subscribed, read an empty tail, waiting for live events
        events.emit(Event("exit", "web", 0, exit_code=1))
        events.emit(Event("exit", "api", 0, exit_code=1))
        events.hub.close()
    assert got == [("exit", 3)]
    events.close()


async def test_a_subscriber_after_the_hub_closed_gets_only_the_stored_tail(tmp_path: Path) -> None:
    events = recorder(tmp_path)
    events.emit(daemon_event("daemon_stop"))
    events.hub.close()
    assert [e.kind async for e in events.follow(None, 10)] == ["daemon_stop"], "it ends instead of waiting forever"
    events.close()
