"""Find the config file, read it (.toml, .json or .py), validate it and report every problem with its location."""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from omnitron.config.checks import Loc, Problem, check_apps, check_dashboard, check_listen, dependency_order
from omnitron.config.model import AppConfig, DaemonConfig, Ecosystem, InfraConfig
from omnitron.config.plain import MAX_DEPTH, NotPlain, format_loc, to_plain
from omnitron.config.resolve import resolve_app, resolve_hooks, resolve_infra
from omnitron.config.settings import env_name, settings_from_environment
from omnitron.errors import ConfigError

__all__ = ["LoadedConfig", "dependency_order", "find_config_path", "load_config", "read_raw"]

DEFAULT_LOCATIONS = ("omnitron.toml", "config/omnitron.toml")
_FIX = "fix each listed key; `omnitron check -c FILE` re-checks, docs/configuration.md lists every key"
_SECTION_RANK = {"daemon": 1, "apps": 2, "infra": 3}
_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class LoadedConfig:
    path: Path
    ecosystem: Ecosystem


def find_config_path(explicit: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None) -> Path:
    """`-c FILE`, else `$OMNITRON_CONFIG`, else ./omnitron.toml, else ./config/omnitron.toml (absolute)."""
    environ = os.environ if environ is None else environ
    if explicit is not None and os.fspath(explicit) != "":
        return _existing(Path(explicit), "given with -c")
    from_env = environ.get("OMNITRON_CONFIG", "")
    if from_env:
        return _existing(Path(from_env), "set by OMNITRON_CONFIG")
    candidates = [Path(os.path.abspath(name)) for name in DEFAULT_LOCATIONS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise ConfigError(
        f"no config file found (looked for $OMNITRON_CONFIG, {looked})",
        "pass -c FILE, set OMNITRON_CONFIG, or create ./omnitron.toml",
    )


def _existing(path: Path, origin: str) -> Path:
    absolute = Path(os.path.abspath(path))
    if absolute.is_dir():
        raise ConfigError(f"config path {absolute} ({origin}) is a directory", "point it at a .toml, .json or .py file")
    if not absolute.exists():
        raise ConfigError(f"config file {absolute} ({origin}) does not exist", "check the path, or create the file")
    return absolute


def load_config(
    explicit: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> LoadedConfig:
    """The validated ecosystem from the config file; raises ConfigError listing every problem found."""
    environ = os.environ if environ is None else environ
    path = find_config_path(explicit, environ)
    raw = read_raw(path, environ)
    ecosystem, problems = _validate(raw, path.parent, environ)
    if problems or ecosystem is None:
        raise _problems_error(path, problems)
    return LoadedConfig(path=path, ecosystem=ecosystem)


def _problems_error(path: Path, problems: list[Problem]) -> ConfigError:
    ordered = sorted(problems, key=_sort_key)
    count = len(ordered)
    lines = [f"{path}: {p.render()}" for p in ordered]
    return ConfigError(f"{path}: {count} problem{'s' if count != 1 else ''}", _FIX, problems=lines)


def _sort_key(problem: Problem) -> tuple[int, int]:
    loc = problem.loc
    rank = _SECTION_RANK.get(str(loc[0]), 0) if loc else 0
    index = loc[1] if len(loc) > 1 and loc[0] == "apps" and isinstance(loc[1], int) else -1
    return rank, index


# --- reading ---------------------------------------------------------------------------------------------


def read_raw(path: Path, environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """The file's top-level table as plain data, before validation; syntax errors become one-line ConfigErrors.

    `environ` (default os.environ) gives a `.py` file its evaluation timeout (`OMNITRON_CONFIG_TIMEOUT`)."""
    readers = {".toml": _read_toml, ".json": _read_json, ".py": _read_python}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise ConfigError(f"{path}: unknown config format {path.suffix!r}", "name the file *.toml, *.json or *.py")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}", "check the path and its permissions"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _syntax(path, f"not UTF-8 text (byte {exc.start})", "save the file as UTF-8") from None
    try:
        raw = to_plain(reader(path, text, os.environ if environ is None else environ), keep_other=True)
    except RecursionError:  # the parser's own recursion, thousands of levels down
        raise _syntax(path, f"nested too deeply to read (more than {MAX_DEPTH} levels)", "flatten it") from None
    except NotPlain as exc:
        raise _syntax(path, f"{format_loc(exc.loc) or 'the top level'}: {exc.message}", "flatten it") from None
    if not isinstance(raw, dict):
        kind = "define `ecosystem = define_ecosystem(...)`" if path.suffix == ".py" else "write an object of sections"
        raise _syntax(path, f"the top level must be a table of sections, got {type(raw).__name__}", kind)
    return raw


def _syntax(path: Path, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"{path}: 1 problem", fix, problems=[f"{path}: {problem}"])


def _read_toml(path: Path, text: str, environ: Mapping[str, str]) -> object:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)$", message)
        where = f"{path}:{match.group(1)}:{match.group(2)}" if match else str(path)
        message = message[: match.start()].strip() if match else message
        raise ConfigError(
            f"{path}: 1 problem", "fix the TOML syntax", problems=[f"{where}: invalid TOML: {message}"]
        ) from None


def _read_json(path: Path, text: str, environ: Mapping[str, str]) -> object:
    def unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
        table: dict[str, object] = {}
        for key, value in pairs:
            if key in table:
                raise ValueError(f"duplicate key {key!r}")
            table[key] = value
        return table

    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        where = f"{path}:{exc.lineno}:{exc.colno}"
        raise ConfigError(
            f"{path}: 1 problem", "fix the JSON syntax", problems=[f"{where}: invalid JSON: {exc.msg}"]
        ) from None
    except ValueError as exc:
        raise _syntax(path, f"invalid JSON: {exc}", "remove the repeated key") from None


def _read_python(path: Path, text: str, environ: Mapping[str, str]) -> object:
    """The file's `ecosystem` variable, evaluated in a child process with a deadline (config/pyconfig.py)."""
    from omnitron.config import pyconfig

    try:
        timeout_s = pyconfig.timeout_from(environ)
    except pyconfig.PyConfigFailed as failed:
        raise _syntax(path, failed.problem, failed.fix) from None
    try:
        return pyconfig.evaluate(str(path), timeout_s)
    except pyconfig.PyConfigFailed as failed:
        raise ConfigError(f"{path}: 1 problem", failed.fix, problems=[failed.problem]) from None


# --- validation ------------------------------------------------------------------------------------------


def _validate(raw: dict[str, object], base: Path, environ: Mapping[str, str]) -> tuple[Ecosystem | None, list[Problem]]:
    problems: list[Problem] = []
    unknown = [key for key in raw if key not in Ecosystem.model_fields]
    problems.extend(Problem((key,), "unknown key") for key in unknown)
    daemon = _validate_daemon(raw.get("daemon", {}), environ, problems)
    apps = _validate_apps(raw.get("apps", []), base, environ, problems)
    infra = _validate_part(InfraConfig, raw.get("infra", {}), ("infra",), problems)
    if infra is not None:
        infra = resolve_infra(infra, environ, problems)
    raw_apps = raw.get("apps", [])
    names = [str(a.get("name")) for a in raw_apps if isinstance(a, dict)] if isinstance(raw_apps, list) else []
    hooks = resolve_hooks(raw.get("hooks", []), names, environ, problems)
    if problems or daemon is None or apps is None or infra is None or hooks is None:
        return None, problems
    return Ecosystem(daemon=daemon, apps=apps, infra=infra, hooks=hooks), problems


def _validate_daemon(table: object, environ: Mapping[str, str], problems: list[Problem]) -> DaemonConfig | None:
    """The file's `[daemon]` table overlaid by `OMNITRON_<KEY>` variables; a bad variable is named, its value is not."""
    if not isinstance(table, dict):
        return _validate_part(DaemonConfig, table, ("daemon",), problems)
    from_env = settings_from_environment(environ)
    try:
        daemon = DaemonConfig.model_validate({**table, **from_env})
        problems.extend(check_dashboard(daemon, environ))
        return daemon
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            if field in from_env:
                loc: Loc = ("daemon", f"{field} (from environment variable {env_name(field)})")
                problems.append(Problem(loc, readable(error, show_input=False)))
            else:
                problems.append(Problem(("daemon", *error["loc"]), readable(error)))
        return None


def _validate_apps(
    items: object, base: Path, environ: Mapping[str, str], problems: list[Problem]
) -> list[AppConfig] | None:
    if not isinstance(items, list):
        problems.append(Problem(("apps",), f"expected an array of app tables, got {type(items).__name__}"))
        return None
    valid: list[tuple[int, AppConfig]] = []
    failed_names: list[str] = []
    for index, item in enumerate(items):
        app = _validate_part(AppConfig, item, ("apps", index), problems)
        if app is not None:
            valid.append((index, app))
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            failed_names.append(item["name"])
    problems.extend(check_apps(valid, failed_names))
    resolved = [resolve_app(index, app, base, environ, problems) for index, app in valid]
    problems.extend(check_listen([(index, app) for (index, _), app in zip(valid, resolved, strict=True)]))
    return None if len(valid) != len(items) else resolved


def _validate_part(model: type[_M], data: object, prefix: Loc, problems: list[Problem]) -> _M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc: Loc = (*prefix, *error["loc"])
            is_env_value = loc[:1] == ("apps",) and loc[2:3] == ("env",)
            problems.append(Problem(loc, readable(error, show_input=not is_env_value)))
        return None


def readable(error: Mapping[str, object], *, show_input: bool = True) -> str:
    """A pydantic error as a short sentence; the input value is quoted only where it cannot be a secret."""
    kind = error.get("type")
    message = str(error.get("msg", ""))
    ctx = error.get("ctx")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing"
    if kind == "value_error" or kind == "assertion_error":
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        # The duration and size validators (config/units.py) end their message by quoting the input.
        return message if show_input else message.removesuffix(f", got {error.get('input')!r}")
    if kind == "literal_error" and isinstance(ctx, dict):
        choices = "|".join(
            part.strip(" '") for part in re.split(r",| or ", str(ctx.get("expected", ""))) if part.strip()
        )
        got = f", got {error.get('input')!r}" if show_input else ""
        return f"expected {choices}{got}"
    if kind == "string_pattern_mismatch" and isinstance(ctx, dict):
        return f"must match {str(ctx.get('pattern', '')).strip('^$')}"
    return message[:1].lower() + message[1:]
