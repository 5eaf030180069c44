"""The environment an app instance starts with: daemon env, env_file, env, secrets, then omnitron's own vars."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING

from omnitron.errors import ConfigError

if TYPE_CHECKING:
    from omnitron.config.model import AppConfig

# Variables the daemon reads for itself and never passes on: the store key must not reach any app, and the
# home (its socket, state, logs) is the daemon's; an app that needs it asks in `env`:
# `OMNITRON_HOME = "${OMNITRON_HOME}"`. An inherited OMNITRON_RUN_ID is replaced by the instance's own.
DAEMON_ONLY_VARS = frozenset({"OMNITRON_SECRETS_KEY", "OMNITRON_HOME", "OMNITRON_RUN_ID"})


def daemon_env(base_env: Mapping[str, str]) -> dict[str, str]:
    """`base_env` without the daemon-only variables: what every child inherits."""
    return {key: value for key, value in base_env.items() if key not in DAEMON_ONLY_VARS}


def build_instance_env(
    app: AppConfig, instance: int, *, base_env: Mapping[str, str], secrets: Mapping[str, str]
) -> dict[str, str]:
    """Later wins: base_env < env_file < env < the app's secrets < OMNITRON_APP_NAME/OMNITRON_INSTANCE/PORT.

    Only the secrets `app.secrets` names are taken from `secrets`, so a store-wide mapping cannot leak
    another app's values. `app.env` is already interpolated and `app.env_file` already absolute.
    """
    env = daemon_env(base_env)
    if app.env_file is not None:
        env.update(read_env_file(app.env_file))
    env.update(app.env)
    env.update({name: secrets[name] for name in app.secrets if name in secrets})
    env["OMNITRON_APP_NAME"] = app.name
    env["OMNITRON_INSTANCE"] = str(instance)
    if app.port is not None:
        env["PORT"] = str(app.port + instance)
    return env


def read_env_file(path: str) -> dict[str, str]:
    """Parse a dotenv file with python-dotenv; ConfigError naming the file on a read or syntax error.

    `${VAR}` and `${VAR:-default}` in the file expand from earlier lines and the process environment
    (python-dotenv's rules); a bare `NAME` line with no `=` sets nothing, so NAME keeps its inherited value.
    """
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read env_file {path}: {exc.strerror}", "create it or fix `env_file`") from None
    except UnicodeDecodeError:
        raise ConfigError(f"env_file {path} is not UTF-8 text", "save it as UTF-8") from None
    bad_lines = [str(b.original.line) for b in parse_stream(io.StringIO(text)) if b.error]
    if bad_lines:
        raise ConfigError(
            f"env_file {path}: cannot parse line {', '.join(bad_lines)}",
            "write each line as NAME=value (quote values with spaces)",
        )
    values = dotenv_values(stream=io.StringIO(text))
    with_nul = sorted(key for key, value in values.items() if "\x00" in key or (value is not None and "\x00" in value))
    if with_nul:
        # Named, never quoted: the value may be a secret. Popen would raise ValueError at every spawn.
        raise ConfigError(
            f"env_file {path}: {', '.join(repr(k) for k in with_nul)} contains a NUL byte, which no environment "
            "variable can hold",
            "remove the NUL byte from the file",
        )
    return {key: value for key, value in values.items() if value is not None}
