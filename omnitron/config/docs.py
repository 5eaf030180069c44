"""Generates the key reference in docs/configuration.md from the config model: `python -m omnitron.config.docs`."""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from omnitron.config.hooks import HookConfig
from omnitron.config.model import (
    AppConfig,
    BackoffConfig,
    DaemonConfig,
    HealthConfig,
    InfraConfig,
    LogsConfig,
    QueueSignalConfig,
    ScalingConfig,
)
from omnitron.config.settings import env_name, is_env_settable
from omnitron.config.units import format_duration, format_size, parse_duration, parse_size

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
BEGIN = "<!-- BEGIN GENERATED REFERENCE: python -m omnitron.config.docs -->"
END = "<!-- END GENERATED REFERENCE -->"

# (table header, model, prose). Order is the order of the document.
SECTIONS: tuple[tuple[str, type[BaseModel], str], ...] = (
    (
        "[daemon]",
        DaemonConfig,
        "Each scalar key is also set by the environment variable listed, which wins.",
    ),
    ("[daemon.logs]", LogsConfig, "Log rotation for every app that sets no `logs` of its own."),
    ("[[apps]]", AppConfig, "One table per app. Only `name` and one of `command` / `bootstrap` are required."),
    (
        "[apps.backoff]",
        BackoffConfig,
        "Delay between restarts of an instance that keeps dying early.",
    ),
    (
        "[apps.health]",
        HealthConfig,
        "The readiness probe; `[apps.liveness]`, the liveness probe, takes the same keys. Exactly one of `http`, "
        "`tcp`, `exec`. See docs/health.md.",
    ),
    ("[apps.logs]", LogsConfig, "Overrides `[daemon.logs]` for this app."),
    (
        "[apps.scaling]",
        ScalingConfig,
        "Autoscaling of the instance count between `min` and `max`; at least one signal. See docs/scaling.md.",
    ),
    (
        "[apps.scaling.queue]",
        QueueSignalConfig,
        "The queue-depth signal: exactly one of `exec` and `http`, and `per_instance`.",
    ),
    ("[infra]", InfraConfig, "Used only by `omnitron infra migrate`."),
    (
        "[[hooks]]",
        HookConfig,
        "Notifications: each table delivers the event kinds in `on` by running `exec` or POSTing to `webhook` "
        "(exactly one), from a bounded queue off the supervision path. See docs/events.md.",
    ),
)

# Types whose Python spelling says little to someone writing TOML.
TYPE_OVERRIDES: dict[tuple[type[BaseModel], str], str] = {
    (AppConfig, "command"): "string or array of strings",
    (AppConfig, "depends_on"): "table of name = condition, or array of names",
    (AppConfig, "env"): "table of strings",
    (AppConfig, "stop_signal"): "signal name",
    (HealthConfig, "exec"): "string or array of strings",
    (QueueSignalConfig, "exec"): "string or array of strings",
    (InfraConfig, "migrate"): "string, or array of strings or arrays",
    (HookConfig, "exec"): "string or array of strings",
    (HookConfig, "on"): "array of event kinds",
}

# Keys whose value is a table documented in its own section.
NESTED: dict[tuple[type[BaseModel], str], str] = {
    (DaemonConfig, "logs"): "[daemon.logs]",
    (AppConfig, "backoff"): "[apps.backoff]",
    (AppConfig, "health"): "[apps.health]",
    (AppConfig, "liveness"): "[apps.health]",
    (AppConfig, "logs"): "[apps.logs]",
    (AppConfig, "scaling"): "[apps.scaling]",
    (ScalingConfig, "queue"): "[apps.scaling.queue]",
}


def render_reference() -> str:
    """The generated part of the document: one table per config section."""
    parts: list[str] = []
    for header, model, prose in SECTIONS:
        is_daemon = model is DaemonConfig
        parts.append(f"### `{header}`\n\n{prose}\n")
        columns = ["key", "type", "default", "meaning"] + (["environment"] if is_daemon else [])
        parts.append("| " + " | ".join(columns) + " |")
        parts.append("|" + "---|" * len(columns))
        for name, field in model.model_fields.items():
            cells = [f"`{name}`", _type(model, name, field), _default_text(field), _escape(field.description or "")]
            if is_daemon:
                cells.append(f"`{env_name(name)}`" if is_env_settable(name) else "file only")
            parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
    return "\n".join(parts)


def update_document(text: str) -> str:
    """`text` with the part between the markers replaced by the current reference."""
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the document lacks the markers {BEGIN!r} ... {END!r}")
    return text[: start + len(BEGIN)] + "\n\n" + render_reference() + "\n" + text[end:]


def _type(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    nested = NESTED.get((model, name))
    if nested:
        return f"table, see `{nested}`"
    return TYPE_OVERRIDES.get((model, name)) or _describe(field.annotation, field.metadata)


def _describe(annotation: object, metadata: Sequence[object] = ()) -> str:
    for item in metadata:
        if isinstance(item, BeforeValidator) and item.func is parse_duration:
            return "duration"
        if isinstance(item, BeforeValidator) and item.func is parse_size:
            return "size"
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return _describe(args[0], args[1:])
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args if arg is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in args)
    if origin is list:
        return f"array of {_describe(args[0])}s"
    if origin is dict:
        return "table"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return names.get(annotation, str(annotation)) if isinstance(annotation, type) else str(annotation)


def _default(field: FieldInfo) -> object:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return field.default


def _default_text(field: FieldInfo) -> str:
    value = _default(field)
    kind = _describe(field.annotation, field.metadata)
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "not set"
    if isinstance(value, BaseModel):
        return "its section's defaults"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if kind == "duration" and isinstance(value, int | float):
        return f'`"{format_duration(value)}"`'
    if kind == "size" and isinstance(value, int):
        return f'`"{format_size(value)}"`'
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, dict | list) and not value:
        return "`{}`" if isinstance(value, dict) else "`[]`"
    return f"`{value}`"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the document is out of date; write nothing")
    parser.add_argument("--path", type=Path, default=DOCUMENT, help="the document (default: docs/configuration.md)")
    args = parser.parse_args(argv)
    current = args.path.read_text(encoding="utf-8")
    fresh = update_document(current)
    if args.check:
        if fresh != current:
            sys.stderr.write(f"{args.path} is out of date; run `python -m omnitron.config.docs` to regenerate it\n")
            return 1
        return 0
    if fresh != current:
        args.path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
