"""Warnings about a valid config that will not run as meant: a program not found, `${PORT}` with no port.

Warnings, not errors (`check` and `up` still exit 0): the program may be installed by the time the app
starts (a release step, a volume), and `PORT` may come from the platform's environment at run time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from omnitron.config.interpolate import bare_references
from omnitron.config.model import AppConfig
from omnitron.config.program import check_program


def config_warnings(apps: Sequence[AppConfig], environ: Mapping[str, str]) -> list[str]:
    """One line per problem, each naming the app and the fix; for `check` and `up`."""
    lines: list[str] = []
    for index, app in enumerate(apps):
        where = f"warning: apps[{index}] ({app.name})"
        program = _program_warning(app, environ)
        if program is not None:
            lines.append(f"{where}: command {program}; install it or fix `command` (it is looked up again at "
                         "each start)")
        if _uses_port_without_one(app, environ):
            lines.append(f"{where}: uses ${{PORT}} but sets no `port` (nor `listen`) and PORT is not in the "
                         "environment, so it becomes empty; set `port = 3000` or write ${PORT:-3000}")
        if not app.listen and any("LISTEN_FD" in bare_references(arg) for arg in app.command or []):
            lines.append(f"{where}: uses ${{LISTEN_FD}} but has no `listen`, so it becomes empty; add "
                         '`listen = "0.0.0.0:3000"` (docs/sockets.md)')
    return lines


def log_config_warnings(path: str, apps: Sequence[AppConfig], environ: Mapping[str, str]) -> None:
    """The same lines as structured `config_warning` log lines: the daemon's, at start and at each reload."""
    import structlog

    log = structlog.get_logger()
    for line in config_warnings(apps, environ):
        log.warning("config_warning", config=path, warning=line.removeprefix("warning: "))


def _program_warning(app: AppConfig, environ: Mapping[str, str]) -> str | None:
    if app.command is None or not app.command:
        return None  # `bootstrap` runs the daemon's own Python
    program = app.command[0]
    if "$" in program:
        return None  # resolved per instance: only the start can tell
    env = {**environ, **app.env}  # an app's own `env` may set PATH
    verdict = check_program(program, env=env, cwd=app.cwd)
    return None if verdict.is_ok else verdict.describe()


def _uses_port_without_one(app: AppConfig, environ: Mapping[str, str]) -> bool:
    if app.port is not None or app.listen or environ.get("PORT"):
        return False
    texts = list(app.command or [])
    for probe in (app.health, app.liveness):
        if probe is not None:
            texts += [probe.http or "", probe.tcp if isinstance(probe.tcp, str) else "", *(probe.exec or [])]
    return any("PORT" in bare_references(text) for text in texts)
