"""The launch spec of one instance: argv, env, cwd, port (and later its listening fds), built once per spawn."""

from __future__ import annotations

import os

from omnitron.config.interpolate import interpolate
from omnitron.config.model import AppConfig
from omnitron.home.paths import Home
from omnitron.runtime.appenv import build_instance_env
from omnitron.runtime.process import LaunchSpec
from omnitron.runtime.runmarker import RUN_ID_VAR, RunMarker


class Launcher:
    """Builds each instance's LaunchSpec from its app config, the daemon's env and the secrets store."""

    def __init__(self, home: Home, *, marker: RunMarker | None = None, secrets_key: str | None = None) -> None:
        self._home = home
        self.marker = marker or RunMarker()
        self._secrets_key = secrets_key  # None: read OMNITRON_SECRETS_KEY from the environment

    def __repr__(self) -> str:
        return f"<Launcher {self._home.root}>"

    def __call__(self, app: AppConfig, index: int) -> LaunchSpec:
        """Raises OmnitronError (e.g. a missing secret) when the instance cannot be started."""
        from omnitron.home.secrets import SecretStore

        secrets = SecretStore(self._home, key=self._secrets_key).load_many(app.secrets) if app.secrets else {}
        env = build_instance_env(app, index, base_env=os.environ, secrets=secrets)
        env[RUN_ID_VAR] = self.marker.next_spawn()  # last: an app cannot pose as another spawn
        # ${PORT} and ${OMNITRON_INSTANCE} in the command are per instance, so they resolve here.
        argv = tuple(interpolate(arg, env) for arg in app.argv())
        port = int(env["PORT"]) if app.port is not None else None
        return LaunchSpec(argv=argv, env=env, cwd=app.cwd, port=port)
