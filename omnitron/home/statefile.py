"""state.json, its one owner: the typed document (the daemon, its health port, every instance's PID and start
time), written atomically from the daemon's snapshot, read by recovery and by the CLI's `probe`.

Stdlib only and no dataclasses or pathlib, so the CLI can read it on its fast path.
"""

from __future__ import annotations

import json
import os

from omnitron.home.atomic import write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeGuard

    from omnitron.runtime.snapshot import DaemonSnapshot


class InstanceRecord:
    """One instance as recorded: a live PID counts as ours only with the same process start time."""

    __slots__ = ("app", "instance", "pid", "start_time", "state", "restarts", "replacing")

    def __init__(self, app: str, instance: int, pid: int | None, start_time: float | None, state: str,
                 restarts: int, replacing: tuple[int, float] | None = None) -> None:
        self.app = app
        self.instance = instance
        self.pid = pid
        self.start_time = start_time
        self.state = state
        self.restarts = restarts
        # during a surge (`listen`): the old process (PID, start time), still serving, so recovery stops it too
        self.replacing = replacing

    def __repr__(self) -> str:
        return f"<InstanceRecord {self.app}:{self.instance} {self.state} pid={self.pid}>"

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"app": self.app, "instance": self.instance, "pid": self.pid,
                                    "start_time": self.start_time, "state": self.state, "restarts": self.restarts}
        if self.replacing is not None:
            document["replacing"] = {"pid": self.replacing[0], "start_time": self.replacing[1]}
        return document

    @classmethod
    def from_json(cls, entry: object) -> InstanceRecord | None:
        """None for an entry of the wrong shape (a hand-edited or foreign file must not block `up`)."""
        if not isinstance(entry, dict):
            return None
        pid, start_time, index = entry.get("pid"), entry.get("start_time"), entry.get("instance")
        if (pid is not None and not _is_int(pid)) or not (start_time is None or _is_number(start_time)):
            return None
        old = entry.get("replacing")
        replacing = (old["pid"], float(old["start_time"])) if isinstance(old, dict) and _is_int(old.get("pid")) \
            and _is_number(old.get("start_time")) else None
        return cls(str(entry.get("app", "")), index if _is_int(index) else 0, pid,
                   None if start_time is None else float(start_time), str(entry.get("state", "")),
                   entry["restarts"] if _is_int(entry.get("restarts")) else 0, replacing)


class StateDocument:
    __slots__ = ("pid", "start_time", "run_id", "version", "started_at", "config", "health_host", "health_port",
                 "shutting_down", "instances")

    def __init__(self, *, pid: int, version: str, started_at: str, config: str | None, health_host: str,
                 health_port: int | None, shutting_down: bool, instances: list[InstanceRecord],
                 start_time: float | None = None, run_id: str = "") -> None:
        self.pid = pid
        # The recording daemon's identity (PID + process start time) and its run marker (runtime/runmarker.py):
        # recovery stops nothing while that daemon lives, and only processes that carry the marker.
        self.start_time = start_time
        self.run_id = run_id
        self.version = version
        self.started_at = started_at
        self.config = config
        self.health_host = health_host
        self.health_port = health_port
        self.shutting_down = shutting_down
        self.instances = instances

    def __repr__(self) -> str:
        return f"<StateDocument pid={self.pid} instances={len(self.instances)}>"

    @classmethod
    def from_snapshot(cls, snapshot: DaemonSnapshot, health_host: str, *, start_time: float | None = None,
                      run_id: str = "") -> StateDocument:
        return cls(pid=snapshot.pid, start_time=start_time, run_id=run_id, version=snapshot.version,
                   started_at=snapshot.started_at,
                   config=snapshot.config, health_host=health_host, health_port=snapshot.health_port,
                   shutting_down=snapshot.shutting_down,
                   instances=[InstanceRecord(i.name, i.instance, i.pid, i.start_time, i.state, i.restarts,
                                             i.replacing)
                              for i in snapshot.instances])

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "start_time": self.start_time, "run_id": self.run_id,
                "health_port": self.health_port, "health_host": self.health_host,
                "version": self.version, "started_at": self.started_at, "config": self.config,
                "shutting_down": self.shutting_down, "apps": [i.to_json() for i in self.instances]}

    @classmethod
    def from_json(cls, document: object) -> StateDocument | None:
        if not isinstance(document, dict):
            return None
        pid, port, apps = document.get("pid"), document.get("health_port"), document.get("apps")
        start_time, run_id = document.get("start_time"), document.get("run_id")
        records = [r for r in map(InstanceRecord.from_json, apps if isinstance(apps, list) else []) if r]
        return cls(pid=pid if _is_int(pid) else 0,
                   start_time=float(start_time) if _is_number(start_time) else None,  # type: ignore[arg-type]
                   run_id=run_id if isinstance(run_id, str) else "", version=str(document.get("version", "")),
                   started_at=str(document.get("started_at", "")), config=_str_or_none(document.get("config")),
                   health_host=str(document.get("health_host") or "127.0.0.1"),
                   health_port=port if _is_int(port) else None,
                   shutting_down=document.get("shutting_down") is True, instances=records)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def write_state(path: str | os.PathLike[str], document: StateDocument) -> None:
    write_atomic(path, json.dumps(document.to_json(), indent=1).encode() + b"\n")


def read_state(path: str | os.PathLike[str]) -> StateDocument | None:
    """The last state written, or None when there is none or it cannot be parsed."""
    try:
        with open(path, "rb") as handle:
            raw = json.loads(handle.read())
    except (OSError, ValueError, RecursionError):
        return None
    return StateDocument.from_json(raw)


class StateWriter:
    """Keeps state.json current: every change marks it dirty; one writer (off the loop) catches up."""

    def __init__(self, path: str | os.PathLike[str], build: Callable[[], StateDocument]) -> None:
        import anyio

        self._path = path
        self._build = build
        self._dirty = anyio.Event()

    def __repr__(self) -> str:
        return f"<StateWriter {os.fspath(self._path)}>"

    def mark_dirty(self) -> None:
        self._dirty.set()

    async def run(self) -> None:
        import anyio

        while True:
            await self._dirty.wait()
            self._dirty = anyio.Event()
            document = self._build()  # on the loop: a consistent view of the instances
            try:
                await anyio.to_thread.run_sync(write_state, self._path, document)
            except OSError as error:
                _log_failure(error)

    def write_now(self) -> None:
        try:
            write_state(self._path, self._build())
        except OSError as error:
            _log_failure(error)


def _log_failure(error: OSError) -> None:
    import structlog

    structlog.get_logger().error("state_write_failed", error=str(error))
