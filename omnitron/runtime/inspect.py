"""`omnitron inspect APP[:N]`: one instance in depth, as plain JSON. Env values are never part of it: the
environment is listed by name and source only, and any env value that appears in the command is masked."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import anyio

from omnitron.errors import OmnitronError
from omnitron.runtime.appenv import DAEMON_ONLY_VARS, read_env_file

if TYPE_CHECKING:
    from omnitron.config.model import AppConfig, HealthConfig
    from omnitron.home.paths import Home
    from omnitron.runtime.events import EventRecorder
    from omnitron.runtime.instance import Instance
    from omnitron.runtime.snapshot import InstanceSnapshot
    from omnitron.runtime.supervisor import Supervisor

HISTORY_WINDOW_S: Final = 3600.0
OUTPUT_LINES: Final = 20
MASK: Final = "***"
_MIN_MASKED_LEN: Final = 4  # shorter values ("1", "true", a port) would mask half of every command
# omnitron's own values: never secret, and masking "3001" or "0" would only garble the command
_OMNITRON_VARS: Final = frozenset({"OMNITRON_APP_NAME", "OMNITRON_INSTANCE", "PORT", "LISTEN_FDS", "LISTEN_PID",
                                   "LISTEN_FDNAMES", "LISTEN_FD"})


def env_sources(app: AppConfig, base_env: Mapping[str, str], spawned: Mapping[str, str] | None) -> list[dict[str, str]]:
    """Each variable the instance gets (`spawned`: its current process's env, when it has one), with where it
    came from; the later source wins, as at spawn: daemon env < env_file < env < secret < omnitron. Names
    only: never a value."""
    source: dict[str, str] = {name: "daemon env" for name in base_env if name not in DAEMON_ONLY_VARS}
    if app.env_file is not None:
        try:
            source.update(dict.fromkeys(read_env_file(app.env_file), "env_file"))
        except OmnitronError:
            pass  # the spawn reports it; inspect shows what it can
    source.update(dict.fromkeys(app.env, "env"))
    source.update(dict.fromkeys(app.secrets, "secret"))
    source.update(dict.fromkeys(("OMNITRON_APP_NAME", "OMNITRON_INSTANCE"), "omnitron"))
    if app.port is not None:
        source["PORT"] = "omnitron"
    if spawned is not None:
        source = {name: source.get(name, "omnitron") for name in spawned}  # LISTEN_* and the like
    return [{"name": name, "source": where} for name, where in sorted(source.items())]


def masked_command(argv: tuple[str, ...] | list[str], env: Mapping[str, str]) -> list[str]:
    """`argv` with every env value (but omnitron's own, such as PORT) that appears in it replaced by ***."""
    values = sorted({v for k, v in env.items() if k not in _OMNITRON_VARS and len(v) >= _MIN_MASKED_LEN},
                    key=len, reverse=True)
    out = []
    for arg in argv:
        for value in values:
            if value in arg:
                arg = arg.replace(value, MASK)
        out.append(arg)
    return out


def _probe(health: HealthConfig | None, error: str | None, env: Mapping[str, str]) -> dict[str, Any] | None:
    if health is None:
        return None
    kind = "http" if health.http is not None else "tcp" if health.tcp is not None else "exec"
    target = health.http if health.http is not None else str(health.tcp) if health.tcp is not None else None
    shown = masked_command(health.exec, env) if health.exec is not None else masked_command([str(target)], env)[0]
    return {"kind": kind, "target": shown, "interval_s": health.interval, "last_error": error}


async def inspect_instance(supervisor: Supervisor, events: EventRecorder, home: Home, name: str,
                           index: int | None, snapshot: InstanceSnapshot | None) -> dict[str, Any]:
    """The document `omnitron inspect --json` prints; instance 0 when `index` is None."""
    from omnitron.output.recent import recent_lines

    group = supervisor.select(name, index)
    if not group:
        raise OmnitronError(f"{name} has no instances", f"scale it up with `omnitron scale {name} N`")
    instance: Instance = group[0]
    app = instance.app
    spec = instance.spec
    env = spec.env if spec is not None else {}
    since = time.time() - HISTORY_WINDOW_S
    rows = [e for e in events.history.tail(name, 1000, since=since)
            if e.instance == instance.index or e.kind == "scale"]
    output = await anyio.to_thread.run_sync(recent_lines, home.instance_log(name, instance.index), OUTPUT_LINES)
    status = snapshot.status_json() if snapshot is not None else {}
    return {
        "app": name,
        "instance": instance.index,
        "instances": len(supervisor.instances.get(name, [])),
        "state": str(instance.state),
        "reason": instance.reason,
        "pid": instance.pid,
        "restarts": instance.restarts,
        "restarts_by_reason": dict(instance.restart_reasons),
        "command": masked_command(spec.argv if spec is not None else app.argv(), env),
        "cwd": spec.cwd if spec is not None else app.cwd,
        "env": env_sources(app, os.environ, env if spec is not None else None),
        "last_exit": instance.last_exit.as_json() if instance.last_exit else None,
        "healthy": instance.healthy if app.health is not None else None,
        "readiness": _probe(app.health, instance.last_probe_error, env),
        "liveness": _probe(app.liveness, instance.last_liveness_error, env),
        "cpu_percent": status.get("cpu_percent"),
        "memory_rss": status.get("memory_rss"),
        "scaling": status.get("scaling"),
        "history": [{"seq": e.id, "ts": e.at, "kind": e.kind, "pid": e.pid, "exit_code": e.exit_code,
                     "signal": e.signal, "reason": e.reason} for e in rows if e.kind != "scale"],
        "scaling_decisions": [{"seq": e.id, "ts": e.at, "reason": e.reason} for e in rows if e.kind == "scale"],
        "output": output,
    }
