"""DaemonSettings: the `[daemon]` table's scalars overlaid by `OMNITRON_<KEY>` environment variables (env wins)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from omnitron.config.units import Duration

ENV_PREFIX = "OMNITRON_"

# The file's [daemon] table and the environment for the settings being built now. pydantic-settings builds
# sources in a classmethod, so per-call inputs travel through a context variable rather than init kwargs,
# which would outrank the environment.
_INPUTS: ContextVar[tuple[Mapping[str, object], Mapping[str, str]] | None] = ContextVar("_INPUTS", default=None)


class _MappingEnvSource(PydanticBaseSettingsSource):
    """`OMNITRON_<FIELD>` from the given environment (case-sensitive, as on Linux); unrelated variables are ignored."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._environ.get(env_name(field_name)), field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name in self.settings_cls.model_fields:
            value = self._environ.get(env_name(name))
            if value is not None and value != "":
                found[name] = value
        return found


class _TableSource(PydanticBaseSettingsSource):
    """The config file's `[daemon]` table, restricted to the settings' own keys."""

    def __init__(self, settings_cls: type[BaseSettings], table: Mapping[str, object]) -> None:
        super().__init__(settings_cls)
        self._table = table

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._table.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._table.items() if k in self.settings_cls.model_fields}


class DaemonSettings(BaseSettings):
    """The daemon's scalar settings; `[daemon]` keys that are tables (such as `logs`) stay in DaemonConfig."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    health_host: str = "0.0.0.0"
    health_port: int = Field(default=9800, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "console", "json"] = "auto"
    shutdown_timeout: Duration = 30.0
    on_fatal: Literal["keep", "exit"] = "keep"
    memory_check_interval: Duration = Field(default=5.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        table, environ = _INPUTS.get() or ({}, os.environ)
        # Order is precedence: the environment beats the file, the file beats the defaults.
        return (_MappingEnvSource(settings_cls, environ), _TableSource(settings_cls, table))


def env_name(field_name: str) -> str:
    """The environment variable that sets a daemon setting: `health_port` -> `OMNITRON_HEALTH_PORT`."""
    return ENV_PREFIX + field_name.upper()


@contextmanager
def _inputs(table: Mapping[str, object], environ: Mapping[str, str]) -> Iterator[None]:
    token = _INPUTS.set((table, environ))
    try:
        yield
    finally:
        _INPUTS.reset(token)


def load_daemon_settings(
    table: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
) -> DaemonSettings:
    """Settings from `table` (the file's `[daemon]`) and `environ` (default os.environ); raises ValidationError."""
    with _inputs(table or {}, os.environ if environ is None else environ):
        return DaemonSettings()


def from_environment(environ: Mapping[str, str], field_name: str) -> bool:
    """Whether `field_name` was set by the environment (so an error about it should name the variable)."""
    return bool(environ.get(env_name(field_name)))
