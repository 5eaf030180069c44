"""The validated ecosystem model: every key of the contract's section 2, frozen, unknown keys rejected."""

from __future__ import annotations

import shlex
import signal
import sys
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from omnitron.config.units import ByteSize, Duration

APP_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
RestartPolicy = Literal["always", "on-failure", "never"]
DependencyCondition = Literal["started", "completed", "healthy"]


def split_command(value: object) -> object:
    """A command string is split like a shell would (never run through one); an array is kept as is."""
    if isinstance(value, str):
        parts = shlex.split(value)
        if not parts:
            raise ValueError("the command is empty")
        return parts
    return value


def signal_name(value: object) -> object:
    if not isinstance(value, str):
        return value
    name = value.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if not hasattr(signal.Signals, name) or name in ("SIGKILL", "SIGSTOP"):
        raise ValueError(f'unknown or uncatchable signal {value!r}; use a name such as "SIGTERM" or "SIGINT"')
    return name


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Command = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
# A command given as a string or an array; one name so that errors in a list of commands carry the item's index.
CommandLine = Annotated[Command, BeforeValidator(split_command)]


class BackoffConfig(_Model):
    initial: Duration = 0.1
    max: Duration = 30.0
    factor: float = Field(default=2.0, ge=1.0)


class LogsConfig(_Model):
    """Per-instance log files: rotate when a file reaches max_size, keep this many rotated files."""

    max_size: ByteSize = Field(default=10 * 1024 * 1024, gt=0)
    keep: int = Field(default=5, ge=0)


class HealthConfig(_Model):
    """Readiness and liveness probe: exactly one of http, tcp, exec."""

    http: str | None = None
    tcp: int | str | None = None
    exec: Command | None = None
    interval: Duration = 5.0
    timeout: Duration = 2.0
    failure_threshold: int = Field(default=3, ge=1)
    start_period: Duration = 0.0

    _split_exec = field_validator("exec", mode="before")(split_command)

    @field_validator("tcp", mode="before")
    @classmethod
    def _port_or_address(cls, value: object) -> object:
        # One clear message instead of pydantic's one-per-union-member.
        if isinstance(value, int) and not isinstance(value, bool):
            if not 1 <= value <= 65535:
                raise ValueError("a port must be between 1 and 65535")
            return value
        if value is None or isinstance(value, str):
            return value
        raise ValueError('expected a port number such as 8000 or an address such as "127.0.0.1:8000"')

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> HealthConfig:
        kinds = [k for k in ("http", "tcp", "exec") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("set exactly one of http, tcp or exec")
        if self.interval <= 0 or self.timeout <= 0:
            raise ValueError("interval and timeout must be greater than 0")
        return self


class AppConfig(_Model):
    name: str = Field(pattern=APP_NAME_PATTERN)
    command: Command | None = None
    bootstrap: str | None = None
    cwd: str = "."
    env: dict[str, str] = Field(default_factory=dict, repr=False)
    env_file: str | None = None
    secrets: list[str] = Field(default_factory=list)
    instances: int = Field(default=1, ge=0)
    port: int | None = Field(default=None, ge=1, le=65535)
    autostart: bool = True
    restart: RestartPolicy = "always"
    min_uptime: Duration = 1.0
    max_restarts: int = Field(default=10, ge=0)
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)
    stop_signal: str = "SIGTERM"
    kill_timeout: Duration = 10.0
    max_memory: ByteSize | None = None
    depends_on: dict[str, DependencyCondition] = Field(default_factory=dict)
    health: HealthConfig | None = None
    logs: LogsConfig | None = None

    _split_command = field_validator("command", mode="before")(split_command)
    _signal_name = field_validator("stop_signal", mode="before")(signal_name)

    @field_validator("depends_on", mode="before")
    @classmethod
    def _list_means_started(cls, value: object) -> object:
        if isinstance(value, list):
            return dict.fromkeys(value, "started")
        return value

    @model_validator(mode="after")
    def _command_or_bootstrap(self) -> AppConfig:
        if (self.command is None) == (self.bootstrap is None):
            raise ValueError("set exactly one of command or bootstrap")
        return self

    def argv(self) -> list[str]:
        """What to exec: the command, or the daemon's own Python running `bootstrap`."""
        if self.command is not None:
            return list(self.command)
        assert self.bootstrap is not None
        return [sys.executable, self.bootstrap]

    @property
    def stop_signum(self) -> signal.Signals:
        return signal.Signals[self.stop_signal]


class DaemonConfig(_Model):
    health_host: str = "0.0.0.0"
    health_port: int = Field(default=9800, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "console", "json"] = "auto"
    shutdown_timeout: Duration = 30.0
    on_fatal: Literal["keep", "exit"] = "keep"
    logs: LogsConfig = Field(default_factory=LogsConfig)
    memory_check_interval: Duration = Field(default=5.0, gt=0)


class InfraConfig(_Model):
    migrate: list[CommandLine] = Field(default_factory=list)

    @field_validator("migrate", mode="before")
    @classmethod
    def _one_command_is_a_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class Ecosystem(_Model):
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    apps: list[AppConfig] = Field(default_factory=list)
    infra: InfraConfig = Field(default_factory=InfraConfig)

    def app(self, name: str) -> AppConfig | None:
        return next((a for a in self.apps if a.name == name), None)
