"""The launch spec of one instance: argv, env, cwd, port (and later its listening fds), built once per spawn."""

from __future__ import annotations

import os

from omnitron.config.interpolate import interpolate
from omnitron.config.model import AppConfig
from omnitron.home.paths import Home
from omnitron.runtime.appenv import build_instance_env
from omnitron.runtime.identity import resolve as resolve_identity
from omnitron.runtime.listeners import ListenSockets
from omnitron.runtime.process import LaunchSpec
from omnitron.runtime.runmarker import RUN_ID_VAR, RunMarker

FIRST_LISTEN_FD = 3  # sd_listen_fds(3)'s SD_LISTEN_FDS_START
LISTEN_VARS = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "LISTEN_FD")


class Launcher:
    """Builds each instance's LaunchSpec from its app config, the daemon's env and the secrets store."""

    def __init__(self, home: Home, *, marker: RunMarker | None = None, secrets_key: str | None = None,
                 sockets: ListenSockets | None = None) -> None:
        self._home = home
        self.marker = marker or RunMarker()
        self._secrets_key = secrets_key  # None: read OMNITRON_SECRETS_KEY from the environment
        self._sockets = sockets

    def __repr__(self) -> str:
        return f"<Launcher {self._home.root}>"

    def __call__(self, app: AppConfig, index: int) -> LaunchSpec:
        """Raises OmnitronError (e.g. a missing secret) when the instance cannot be started."""
        from omnitron.home.secrets import SecretStore

        secrets = SecretStore(self._home, key=self._secrets_key).load_many(app.secrets) if app.secrets else {}
        env = build_instance_env(app, index, base_env=os.environ, secrets=secrets)
        sockets = self._sockets
        fds = sockets.fds(app.name) if sockets is not None and app.listen else ()
        for name in LISTEN_VARS:  # inherited ones (omnitron itself socket-activated) are not this app's
            env.pop(name, None)
        env.update(listen_env(app.name, len(fds)))
        if fds and app.port is None and sockets is not None:
            # ${PORT} (probes, the app) is the shared port; `port` keeps one per instance instead
            env["PORT"] = str(sockets.addresses(app.name)[0].port)
        identity = resolve_identity(app.user, app.group)
        if identity is not None:  # the user's own HOME, USER and LOGNAME, unless the app's env sets them
            env.update({k: v for k, v in (("HOME", identity.home), ("USER", identity.name),
                                          ("LOGNAME", identity.name)) if k not in app.env})
        env[RUN_ID_VAR] = self.marker.next_spawn()  # last: an app cannot pose as another spawn
        # ${PORT}, ${OMNITRON_INSTANCE} and ${LISTEN_FD} in the command are per instance, so they resolve here.
        argv = tuple(interpolate(arg, env) for arg in app.argv())
        port = int(env["PORT"]) if app.port is not None or fds else None
        return LaunchSpec(argv=argv, env=env, cwd=app.cwd, port=port, listen_fds=fds, identity=identity)


def listen_env(app: str, count: int) -> dict[str, str]:
    """systemd's socket-activation variables (LISTEN_PID is set in the child itself) plus `LISTEN_FD`."""
    if not count:
        return {}
    return {"LISTEN_FDS": str(count), "LISTEN_FDNAMES": ":".join([app] * count), "LISTEN_FD": str(FIRST_LISTEN_FD)}
