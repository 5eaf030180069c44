"""The `[daemon]` table overlaid by `OMNITRON_<KEY>` environment variables: environment, then file, then default."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel

from omnitron.config.model import DaemonConfig

ENV_PREFIX = "OMNITRON_"


def env_name(field_name: str) -> str:
    """The environment variable that sets a daemon setting: `health_port` -> `OMNITRON_HEALTH_PORT`."""
    return ENV_PREFIX + field_name.upper()


def is_env_settable(field_name: str) -> bool:
    """Whether a `[daemon]` key can come from the environment: every scalar key; tables (`logs`) are file only."""
    field = DaemonConfig.model_fields.get(field_name)
    if field is None:
        return False
    annotation = field.annotation
    return not (isinstance(annotation, type) and issubclass(annotation, BaseModel))


def settings_from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The daemon settings `environ` sets, by key. Names are case-sensitive, as on Linux; empty counts as unset."""
    found: dict[str, str] = {}
    for name in DaemonConfig.model_fields:
        value = environ.get(env_name(name), "")
        if value != "" and is_env_settable(name):
            found[name] = value
    return found


def load_daemon_settings(
    table: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
) -> DaemonConfig:
    """`table` (the file's `[daemon]`) overlaid by `environ` (default os.environ); raises ValidationError."""
    environ = os.environ if environ is None else environ
    return DaemonConfig.model_validate({**(table or {}), **settings_from_environment(environ)})
