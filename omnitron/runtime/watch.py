"""`up --watch`: restart an app, rolling, when a file its `watch` globs name changes under its `cwd`.

One watchfiles watcher (inotify, what uvicorn's `--reload` uses) over the cwds of every app that has globs;
changes are grouped (`watchfiles`' debounce), matched against each app's globs, and each matching app is
restarted through `Supervisor.restart(..., reason="watch")`, the one restart path (rolling: one instance at
a time, each ready before the next; surge for an app with `listen` is that path's business). Changes that
arrive while an app restarts make one more restart after it, never a queue of them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Final

import anyio
import anyio.abc
import structlog

from omnitron.errors import OmnitronError
from omnitron.runtime.states import AppState

if TYPE_CHECKING:
    from omnitron.runtime.supervisor import Supervisor

log = structlog.get_logger()

# Version control, caches, and what editors write beside the file they save: never a reason to restart.
IGNORED_DIRS: Final = frozenset({".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
                                 ".tox", ".venv", "node_modules", ".idea", ".hypothesis"})
_IGNORED_NAME: Final = re.compile(
    r"\.sw[a-p]x?$"  # vim swap files (.swp, .swo, .swpx)
    r"|^4913$"  # vim's probe file for whether the directory is writable
    r"|~$|^\.#|^#.*#$"  # backups (foo~), emacs lock and autosave files
    r"|\.py[cod]$|\.___jb_(old|tmp)___$|^\.DS_Store$|^flycheck_|\.kate-swp$"
)
# A save is often several events (a temp file, a rename, a chmod): changes closer than this are one.
GROUP_STEP_MS: Final = 300
GROUP_MAX_MS: Final = 1600


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A `watch` glob as a regex over a relative POSIX path: `*` and `?` stay within one segment, `**/`
    matches any number of directories (none included), a trailing `**` everything below."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:[^/]+/)*"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def is_ignored(relative: str) -> bool:
    parts = relative.split("/")
    return any(part in IGNORED_DIRS for part in parts[:-1]) or bool(_IGNORED_NAME.search(parts[-1]))


def matches(globs: Iterable[str], cwd: str, path: str) -> bool:
    """Whether `path` (absolute) is under `cwd`, not ignored, and named by one of the globs."""
    relative = os.path.relpath(path, cwd)
    if relative.startswith("..") or os.path.isabs(relative):
        return False
    relative = relative.replace(os.sep, "/")
    if is_ignored(relative):
        return False
    return any(glob_regex(glob.removeprefix("./")).match(relative) for glob in globs)


@dataclass(frozen=True)
class _Watched:
    name: str
    cwd: str
    globs: tuple[str, ...]


def _roots(watched: list[_Watched]) -> list[str]:
    """The directories to watch: each existing cwd, outer ones only (inotify on /app and /app/src would
    report each change twice)."""
    roots = sorted({w.cwd for w in watched if os.path.isdir(w.cwd)})
    return [r for r in roots if not any(r != o and r.startswith(o.rstrip("/") + "/") for o in roots)]


class FileWatcher:
    """Runs for the daemon's life when watching is on; follows reloads (apps added, globs changed)."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        self._dirty: dict[str, anyio.Event] = {}

    def _watched(self) -> list[_Watched]:
        return [_Watched(a.name, a.cwd, tuple(a.watch)) for a in self._supervisor.ecosystem.apps if a.watch]

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            while True:
                watched = self._watched()
                stop = anyio.Event()
                if watched:
                    tg.start_soon(self._watch, watched, stop, tg)
                while self._watched() == watched:  # a reload may change what to watch
                    await self._supervisor.wait_for_change()
                stop.set()

    async def _watch(self, watched: list[_Watched], stop: anyio.Event, tg: anyio.abc.TaskGroup) -> None:
        """Until `stop`: changes under the roots mark the apps they match (restarters run in `tg`, so a
        reload that changes what is watched does not cut a restart short)."""
        from watchfiles import awatch

        roots = _roots(watched)
        if not roots:
            return
        log.info("watch_started", apps=[w.name for w in watched], roots=roots)
        async for changes in awatch(*roots, watch_filter=None, debounce=GROUP_MAX_MS, step=GROUP_STEP_MS,
                                    stop_event=stop, recursive=True, ignore_permission_denied=True):
            paths = sorted({path for _change, path in changes})
            for w in watched:
                hits = [p for p in paths if matches(w.globs, w.cwd, p)]
                if hits:
                    self._mark(w.name, hits, tg)

    def _mark(self, name: str, hits: list[str], tg: anyio.abc.TaskGroup) -> None:
        log.info("watch_changed", app=name, files=hits[:5], count=len(hits))
        event = self._dirty.get(name)
        if event is None:
            event = self._dirty[name] = anyio.Event()
            tg.start_soon(self._restarter, name)
        event.set()

    async def _restarter(self, name: str) -> None:
        """Restart `name` each time it was marked; marks during a restart make one more, after it."""
        while True:
            await self._dirty[name].wait()
            self._dirty[name] = anyio.Event()
            try:
                instances = self._supervisor.select(name, None)
            except OmnitronError:
                continue  # removed by a reload since
            if all(i.state is AppState.STOPPED for i in instances):
                log.info("watch_skipped", app=name, reason="stopped: `omnitron start` it to run it again")
                continue
            try:
                await self._supervisor.restart(name, None, reason="watch")
            except OmnitronError as error:
                log.warning("watch_restart_failed", app=name, cause=error.cause)
