"""Load-time pass over validated models: `${VAR}` interpolation, and paths made absolute against the config folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from omnitron.config.addresses import parse_address
from omnitron.config.checks import Loc, Problem
from omnitron.config.hooks import HookConfig
from omnitron.config.interpolate import PER_INSTANCE, InterpolationError, interpolate
from omnitron.config.model import AppConfig, HealthConfig, InfraConfig


class _Resolver:
    """Collects problems while interpolating one model's strings, so every bad reference is reported."""

    def __init__(self, environ: Mapping[str, str], problems: list[Problem]) -> None:
        self.environ = environ
        self.problems = problems

    def text(self, value: str, loc: Loc, *, keep: frozenset[str] = frozenset()) -> str:
        try:
            return interpolate(value, self.environ, keep=keep)
        except InterpolationError as exc:
            self.problems.append(Problem(loc, str(exc)))
            return value

    def items(self, values: list[str], loc: Loc, *, keep: frozenset[str] = frozenset()) -> list[str]:
        return [self.text(v, (*loc, i), keep=keep) for i, v in enumerate(values)]


def resolve_app(
    index: int, app: AppConfig, base: Path, environ: Mapping[str, str], problems: list[Problem]
) -> AppConfig:
    """`app` with `${VAR}` references resolved (PORT and OMNITRON_INSTANCE kept for the runtime) and absolute paths."""
    at: Loc = ("apps", index)
    resolver = _Resolver(environ, problems)
    update: dict[str, object] = {
        "env": {key: resolver.text(value, (*at, "env", key)) for key, value in app.env.items()},
    }
    if app.command is not None:
        update["command"] = resolver.items(app.command, (*at, "command"), keep=PER_INSTANCE)
    if app.listen:
        update["listen"] = _resolve_listen(app.listen, (*at, "listen"), resolver)
    for key in ("health", "liveness"):
        probe = getattr(app, key)
        if probe is not None:
            update[key] = _resolve_health(probe, (*at, key), resolver)
    cwd = _absolute(resolver.text(app.cwd, (*at, "cwd")), base)
    if not os.path.isdir(cwd):
        problems.append(
            Problem((*at, "cwd"), f"{cwd} is not a directory; create it or fix the path (relative to the config file)")
        )
    update["cwd"] = cwd
    for key in ("bootstrap", "env_file"):
        value = getattr(app, key)
        if value is None:
            continue
        path = _absolute(value, base)
        if not os.path.isfile(path):
            problems.append(Problem((*at, key), f"{path} is not a file; fix the path (relative to the config file)"))
        update[key] = path
    return app.model_copy(update=update)


def _resolve_health(health: HealthConfig, at: Loc, resolver: _Resolver) -> HealthConfig:
    update: dict[str, object] = {}
    if health.http is not None:
        url = resolver.text(health.http, (*at, "http"), keep=PER_INSTANCE)
        _check_host(url_host(url), (*at, "http"), resolver.problems)
        update["http"] = url
    if isinstance(health.tcp, str):
        target = resolver.text(health.tcp, (*at, "tcp"), keep=PER_INSTANCE)
        _check_host(tcp_host(target), (*at, "tcp"), resolver.problems)
        update["tcp"] = target
    if health.exec is not None:
        update["exec"] = resolver.items(health.exec, (*at, "exec"), keep=PER_INSTANCE)
    return health.model_copy(update=update)


def url_host(url: str) -> str:
    """The host of an http probe's URL as the probe connects to it ("" when there is none)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:  # e.g. an unbalanced "[" in the netloc; the probe reports its own reason
        return ""


def tcp_host(target: str) -> str:
    """The host of a tcp probe's `"host:port"` ("" for a bare port)."""
    host, sep, _port = target.strip().rpartition(":")
    return host.strip("[]") if sep else ""


def host_problem(host: str) -> str | None:
    """Why `host` can never be resolved, or None: a NUL byte, or a non-ASCII name that IDNA 2008 refuses.

    The probes resolve names as anyio does (ASCII as is, anything else through the `idna` package), which
    raises UnicodeError, not OSError, for such a name: refused here, once, instead of at every probe.
    A host holding a per-instance `${...}` reference is checked by the probe once it is resolved.
    """
    if "\x00" in host:
        return "the host contains a NUL byte; remove it"
    if not host or "$" in host:
        return None
    try:
        host.encode("ascii")
        return None
    except UnicodeEncodeError:
        pass
    import idna

    try:
        idna.encode(host, uts46=True)
    except (idna.IDNAError, UnicodeError) as exc:
        return f"the host is not a valid internationalized domain name ({exc}); fix the host name"
    return None


def _check_host(host: str, loc: Loc, problems: list[Problem]) -> None:
    problem = host_problem(host)
    if problem is not None:
        problems.append(Problem(loc, problem))


def _resolve_listen(listen: list[str], at: Loc, resolver: _Resolver) -> list[str]:
    """Each address from the daemon's environment (`${PORT:-3001}`), checked and written in one form."""
    resolved = []
    for i, text in enumerate(listen):
        value = resolver.text(text, (*at, i))
        try:
            resolved.append(str(parse_address(value)))
        except ValueError as error:
            resolver.problems.append(Problem((*at, i), str(error)))
            resolved.append(value)
    return resolved


def resolve_infra(infra: InfraConfig, environ: Mapping[str, str], problems: list[Problem]) -> InfraConfig:
    """`[infra].migrate` commands with `${VAR}` references resolved."""
    resolver = _Resolver(environ, problems)
    migrate = [resolver.items(command, ("infra", "migrate", i)) for i, command in enumerate(infra.migrate)]
    return infra.model_copy(update={"migrate": migrate})


def _absolute(value: str, base: Path) -> str:
    return os.path.normpath(os.path.join(base, os.path.expanduser(value)))


def resolve_hooks(items: object, app_names: list[str], environ: Mapping[str, str],
                  problems: list[Problem]) -> list[HookConfig] | None:
    """Validate each `[[hooks]]` table, interpolate `${VAR}` in `exec` and `webhook`, and check that the URL
    is http(s) and each app in `apps` exists; None when any is invalid (the problems say why)."""
    from omnitron.config.load import _validate_part

    if not isinstance(items, list):
        problems.append(Problem(("hooks",), f"expected an array of hook tables, got {type(items).__name__}"))
        return None
    hooks: list[HookConfig] = []
    for index, item in enumerate(items):
        at: Loc = ("hooks", index)
        hook = _validate_part(HookConfig, item, at, problems)
        if hook is None:
            continue
        update: dict[str, object] = {}
        try:
            if hook.exec is not None:
                update["exec"] = [interpolate(arg, environ) for arg in hook.exec]
            if hook.webhook is not None:
                update["webhook"] = url = interpolate(hook.webhook, environ)
                parts = urlsplit(url)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    problems.append(Problem((*at, "webhook"), "expected an http:// or https:// URL (is its variable "
                                            "set?); the value is not shown, it may hold a token"))
        except InterpolationError as exc:
            problems.append(Problem(at, str(exc)))
        for name in hook.apps or []:
            if name not in app_names:
                problems.append(Problem((*at, "apps"), f"unknown app {name!r}; apps: {', '.join(app_names) or 'none'}"))
        hooks.append(hook.model_copy(update=update))
    return hooks if len(hooks) == len(items) else None
