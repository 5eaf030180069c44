"""The validated ecosystem model: every key of the contract's section 2, frozen, unknown keys rejected."""

from __future__ import annotations

import shlex
import signal
import sys
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from omnitron.config.hooks import HookConfig
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


def one_or_many(value: object) -> object:
    """One string where a list of them is expected is a list of one."""
    return [value] if isinstance(value, str) else value


def signal_name(value: object) -> object:
    if not isinstance(value, str):
        return value
    name = value.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if not hasattr(signal.Signals, name) or name in ("SIGKILL", "SIGSTOP"):
        raise ValueError(f'unknown or uncatchable signal {value!r}; use a name such as "SIGTERM" or "SIGINT"')
    return name


def split_host_port(value: str) -> tuple[str, int]:
    """`"127.0.0.1:9801"`, `"[::1]:9801"` or `":9801"` (every address) -> (host, port); ValueError otherwise."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f'expected "HOST:PORT" such as "127.0.0.1:9801", got {value!r}')
    host = host.removeprefix("[").removesuffix("]") or "0.0.0.0"
    return host, int(port_text)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def no_nul(value: str) -> str:
    """The OS cannot pass a NUL byte in an argument or an environment value (Popen raises ValueError)."""
    if "\x00" in value:
        raise ValueError("contains a NUL byte, which no program can receive; remove it")
    return value


Argument = Annotated[str, Field(min_length=1), AfterValidator(no_nul)]
Command = Annotated[list[Argument], Field(min_length=1)]
# A command given as a string or an array; one name so that errors in a list of commands carry the item's index.
CommandLine = Annotated[Command, BeforeValidator(split_command)]


class BackoffConfig(_Model):
    initial: Duration = Field(default=0.1, description="delay after the first early death (one before `min_uptime`)")
    max: Duration = Field(default=30.0, description="upper bound on the delay")
    factor: float = Field(
        default=2.0, ge=1.0, description="delay after early death n is `initial × factor^(n-1)`, capped at `max`"
    )
    jitter: float = Field(
        default=0.1, ge=0.0, lt=1.0,
        description="each delay is multiplied by a random factor in `[1 - jitter, 1 + jitter]`; 0 for none",
    )


# A bound, not a tuning knob: 1,000 rotated files of the default 10 MB are 10 GB per instance already.
MAX_LOG_KEEP = 1000


class LogsConfig(_Model):
    """Per-instance log files: rotate when a file reaches max_size, keep this many rotated files."""

    max_size: ByteSize = Field(
        default=10 * 1024 * 1024, gt=0, description="rotate a log file when it reaches this size"
    )
    keep: int = Field(default=5, ge=0, le=MAX_LOG_KEEP,
                      description=f"rotated files to keep (`<app>-<instance>.log.1` …), at most {MAX_LOG_KEEP}")


class HealthConfig(_Model):
    """One probe, exactly one of http, tcp, exec: `[apps.health]` (readiness) or `[apps.liveness]` (same keys)."""

    http: str | None = Field(
        default=None, description="URL to GET; healthy on a 2xx or 3xx answer; `${PORT}` is the instance's port"
    )
    tcp: int | str | None = Field(
        default=None, description='port (on 127.0.0.1) or `"host:port"` that must accept a connection'
    )
    exec: Command | None = Field(default=None, description="command (string or array) that must exit 0")
    interval: Duration = Field(default=5.0, description="time between probes (greater than 0)")
    timeout: Duration = Field(default=2.0, description="a probe taking longer fails (greater than 0)")
    failure_threshold: int = Field(
        default=3,
        ge=1,
        description="consecutive counted failures that fail the probe: not ready (`health`), restarted (`liveness`)",
    )
    start_period: Duration = Field(
        default=0.0, description="failures before this much time after start are not counted"
    )

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


class QueueSignalConfig(_Model):
    """The queue-depth signal of `[apps.scaling]`: a command that prints a number, or a URL that answers one."""

    exec: Command | None = Field(
        default=None, description="command (string or array) whose stdout is the queue depth; run with the app's env"
    )
    http: str | None = Field(default=None, description="URL whose 2xx body is the queue depth")
    per_instance: float = Field(gt=0, description="queue depth one instance handles: desired = ceil(depth / this)")
    timeout: Duration = Field(default=5.0, gt=0, description="a reading taking longer fails (and keeps the count)")

    _split_exec = field_validator("exec", mode="before")(split_command)

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> QueueSignalConfig:
        if (self.exec is None) == (self.http is None):
            raise ValueError("set exactly one of exec or http")
        return self


class ScalingConfig(_Model):
    """`[apps.scaling]`: the instance count follows CPU and/or queue depth between `min` and `max`."""

    min: int = Field(default=1, ge=0, description="fewest instances; readiness counts the app ready with these")
    max: int = Field(ge=1, description="most instances")
    target_cpu: float | None = Field(
        default=None, gt=0, description="percent of one core per instance, averaged over `window`"
    )
    queue: QueueSignalConfig | None = Field(
        default=None, description="`{ exec = ... | http = URL, per_instance = N }`: ceil(depth / per_instance)"
    )
    interval: Duration = Field(default=5.0, gt=0, description="time between decisions")
    window: Duration = Field(
        default=30.0, gt=0, le=600, description="CPU is averaged over this much recent time (at most 10 minutes)"
    )
    cooldown: Duration = Field(
        default=60.0, ge=0, description="scale down only once the lower desired count has held this long"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ScalingConfig:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.target_cpu is None and self.queue is None:
            raise ValueError("set at least one signal: target_cpu, or queue = { exec | http, per_instance }")
        if self.min == 0 and self.queue is None:
            raise ValueError("min = 0 needs a queue signal (zero instances use no CPU, so CPU alone never scales up)")
        return self


class AppConfig(_Model):
    name: str = Field(pattern=APP_NAME_PATTERN, description="unique; `[a-z0-9][a-z0-9_-]*`")
    command: Command | None = Field(
        default=None,
        description="what to run: a string (split like a shell, never run through one) or an array; or use `bootstrap`",
    )
    bootstrap: str | None = Field(
        default=None, description="a Python file run with the daemon's own interpreter, instead of `command`"
    )
    cwd: str = Field(default=".", description="working directory; relative to the config file's folder")
    env: dict[str, Annotated[str, AfterValidator(no_nul)]] = Field(
        default_factory=dict,
        repr=False,
        description="extra environment variables; values may use `${VAR}`; never printed",
    )
    env_file: str | None = Field(
        default=None, description="dotenv file loaded into the environment; relative to the config file's folder"
    )
    secrets: list[str] = Field(
        default_factory=list,
        description="names from the secrets store, injected as environment variables of the same name",
    )
    instances: int = Field(default=1, ge=0, description="copies to run; each gets `OMNITRON_INSTANCE=0..N-1`")
    port: int | None = Field(default=None, ge=1, le=65535, description="instance i gets `PORT=port+i`")
    autostart: bool = Field(default=True, description="start with the daemon; otherwise only on `omnitron start`")
    restart: RestartPolicy = Field(default="always", description="when an exited instance is started again")
    min_uptime: Duration = Field(
        default=1.0, description="up at least this long counts as a successful start and resets the backoff"
    )
    max_restarts: int = Field(
        default=10,
        ge=0,
        description="consecutive starts that die before `min_uptime` (after the first) before the instance is `fatal`",
    )
    backoff: BackoffConfig = Field(default_factory=BackoffConfig, description="delay between restarts")
    stop_signal: str = Field(
        default="SIGTERM",
        description="sent to the instance's process group to stop it (`TERM` and `SIGTERM` both work)",
    )
    kill_timeout: Duration = Field(default=10.0, description="then SIGKILL to the whole process group")
    max_memory: ByteSize | None = Field(
        default=None, description="restart an instance whose RSS (its whole process tree) exceeds this"
    )
    depends_on: dict[str, DependencyCondition] = Field(
        default_factory=dict,
        description='apps to wait for before starting: `{db = "healthy"}`, or a list of names meaning `"started"`',
    )
    health: HealthConfig | None = Field(
        default=None, description='readiness probe: gates `/readyz` and `depends_on` `"healthy"`; never restarts'
    )
    liveness: HealthConfig | None = Field(
        default=None, description="liveness probe: `failure_threshold` failures restart the instance, with backoff"
    )
    logs: LogsConfig | None = Field(default=None, description="this app's log rotation; default: `[daemon.logs]`")
    scaling: ScalingConfig | None = Field(
        default=None,
        description="autoscaling: the instance count follows CPU or queue depth between `min` and `max` "
        "(`instances` is the starting count)",
    )
    watch: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="globs relative to `cwd` (`src/**/*.py`); with `up --watch` a change there restarts the app, "
        "rolling",
    )
    listen: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description='`"HOST:PORT"` (or a list) the daemon binds before any app starts and passes to every instance '
        "as fd 3 (4, 5 …) with `LISTEN_FDS`/`LISTEN_PID`; `${PORT:-3001}` reads the daemon's environment; "
        "replacements then start before the instance they replace stops (docs/sockets.md)",
    )
    user: str | None = Field(
        default=None, min_length=1,
        description="run the app (and its exec probes) as this user, a name or a numeric uid, with its HOME, "
        "USER and groups; needs the daemon to run as root",
    )
    group: str | None = Field(
        default=None, min_length=1,
        description="run the app as this group (name or gid) instead of the user's own; needs a root daemon",
    )
    main: bool = Field(
        default=False,
        description="at most one app: when it ends (`completed` or `fatal`), the daemon stops the others and exits "
        "with its exit status (128+N for signal N)",
    )

    _split_command = field_validator("command", mode="before")(split_command)
    _one_glob_is_a_list = field_validator("watch", mode="before")(one_or_many)
    _one_address_is_a_list = field_validator("listen", mode="before")(one_or_many)
    _signal_name = field_validator("stop_signal", mode="before")(signal_name)

    @field_validator("depends_on", mode="before")
    @classmethod
    def _list_means_started(cls, value: object) -> object:
        if isinstance(value, list):
            for item in value:
                if not isinstance(item, str):
                    raise ValueError(f"expected app names (strings) in the array, got {type(item).__name__}")
            return dict.fromkeys(value, "started")
        return value

    @model_validator(mode="after")
    def _command_or_bootstrap(self) -> AppConfig:
        if (self.command is None) == (self.bootstrap is None):
            raise ValueError("set exactly one of command or bootstrap")
        return self

    @model_validator(mode="before")
    @classmethod
    def _scaling_starts_at_min(cls, data: object) -> object:
        # An autoscaled app without `instances` starts with its minimum.
        if isinstance(data, dict) and "instances" not in data and isinstance(data.get("scaling"), dict):
            start = data["scaling"].get("min", 1)
            if isinstance(start, int) and not isinstance(start, bool) and start >= 0:
                return {**data, "instances": start}
        return data

    @model_validator(mode="after")
    def _instances_within_scaling(self) -> AppConfig:
        scaling = self.scaling
        if scaling is not None and not scaling.min <= self.instances <= scaling.max:
            raise ValueError(
                f"instances = {self.instances} is outside [apps.scaling] min..max ({scaling.min}..{scaling.max})"
            )
        return self

    def argv(self) -> list[str]:
        """What to exec: the command, or the daemon's own Python running `bootstrap`."""
        if self.command is not None:
            return list(self.command)
        assert self.bootstrap is not None
        # argv is interpolated per instance later, so a literal `$` in the path is escaped here.
        return [sys.executable.replace("$", "$$"), self.bootstrap.replace("$", "$$")]

    @property
    def stop_signum(self) -> signal.Signals:
        return signal.Signals[self.stop_signal]


class DaemonConfig(_Model):
    """The `[daemon]` table; config/settings.py overlays each scalar key with `OMNITRON_<KEY>` from the environment."""

    health_host: str = Field(default="0.0.0.0", description="address the HTTP health endpoint binds")
    health_port: int = Field(
        default=9800, ge=0, le=65535, description="port of `/healthz`, `/readyz`, `/metrics`; 0 picks a free port"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="the daemon's own log level"
    )
    log_format: Literal["auto", "console", "json"] = Field(
        default="auto", description="`auto` is console on a TTY, JSON otherwise"
    )
    shutdown_timeout: Duration = Field(default=30.0, description="whole-daemon bound on graceful shutdown")
    on_fatal: Literal["keep", "exit"] = Field(
        default="keep",
        description="`exit`: the daemon exits non-zero when any app becomes fatal (lets a PaaS restart the container)",
    )
    logs: LogsConfig = Field(
        default_factory=LogsConfig, description="log rotation for every app without its own `logs`"
    )
    memory_check_interval: Duration = Field(default=5.0, gt=0, description="how often `max_memory` is checked")
    exit_when: Literal["never", "done"] = Field(
        default="never",
        description="`done`: exit once no autostart app is left to run (each `completed` or `fatal`): 0 when all "
        "completed, 1 otherwise",
    )
    watch: bool = Field(
        default=False, description="restart apps whose `watch` globs see a change (as `omnitron up --watch`)"
    )
    dashboard: str | None = Field(
        default=None,
        description='`"HOST:PORT"` of the read-only web dashboard (off by default); beyond loopback it needs '
        "`OMNITRON_DASHBOARD_TOKEN`",
    )

    @field_validator("dashboard")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            split_host_port(value)
        return value


class InfraConfig(_Model):
    migrate: list[CommandLine] = Field(
        default_factory=list,
        description="release commands run in order by `omnitron infra migrate`; a string or an array of commands",
    )

    @field_validator("migrate", mode="before")
    @classmethod
    def _one_command_is_a_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class Ecosystem(_Model):
    daemon: DaemonConfig = Field(default_factory=DaemonConfig, description="the daemon itself")
    apps: list[AppConfig] = Field(default_factory=list, description="the programs to supervise")
    infra: InfraConfig = Field(default_factory=InfraConfig, description="release commands")
    hooks: list[HookConfig] = Field(default_factory=list, description="notifications: events run a command or POST")

    def app(self, name: str) -> AppConfig | None:
        return next((a for a in self.apps if a.name == name), None)
