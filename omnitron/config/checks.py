"""Checks that span fields or apps (names, env names, dependencies) and the dependency start order."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from omnitron.config.model import AppConfig, DaemonConfig, Ecosystem, split_host_port
from omnitron.config.plain import Loc as Loc
from omnitron.config.plain import format_loc

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Problem:
    """One error at one location, such as `apps[1].depends_on.db`, with a message that never quotes env values."""

    loc: Loc
    message: str

    def render(self) -> str:
        return f"{format_loc(self.loc)}: {self.message}" if self.loc else self.message


def check_apps(apps: Sequence[tuple[int, AppConfig]], other_names: Iterable[str] = ()) -> list[Problem]:
    """Cross-field problems of the valid `(index, app)` pairs; `other_names` are apps that failed validation."""
    problems: list[Problem] = []
    first_index: dict[str, int] = {}
    for index, app in apps:
        if app.name in first_index:
            problems.append(
                Problem(
                    ("apps", index, "name"), f'duplicate app name "{app.name}" (also apps[{first_index[app.name]}])'
                )
            )
        else:
            first_index[app.name] = index
        problems.extend(_check_names(index, app))
        if app.port is not None and app.port + max(app.instances, 1) - 1 > 65535:
            problems.append(
                Problem(("apps", index, "port"), "port + instances - 1 exceeds 65535; lower port or instances")
            )
    by_name = {app.name: (index, app) for index, app in reversed(apps)}
    known = set(by_name) | set(other_names)
    for index, app in apps:
        problems.extend(_check_dependencies(index, app, by_name, known))
    problems.extend(_cycles(apps))
    problems.extend(_check_main(apps))
    return problems


def check_listen(apps: Sequence[tuple[int, AppConfig]]) -> list[Problem]:
    """Each `listen` address (already resolved) belongs to one app, once: the socket is that app's."""
    problems: list[Problem] = []
    owner: dict[str, str] = {}
    for index, app in apps:
        for i, address in enumerate(app.listen):
            if address in owner:
                problems.append(Problem(("apps", index, "listen", i),
                                        f"{address} is already the socket of {owner[address]}; give each app its own"))
            else:
                owner[address] = f"apps[{index}] ({app.name})"
    return problems


def _check_main(apps: Sequence[tuple[int, AppConfig]]) -> list[Problem]:
    mains = [(index, app) for index, app in apps if app.main]
    first = mains[0] if mains else None
    return [Problem(("apps", index, "main"), f"only one app may be main (also apps[{first[0]}], {first[1].name})")
            for index, _app in mains[1:] if first is not None]


def _check_names(index: int, app: AppConfig) -> list[Problem]:
    problems = [
        Problem(("apps", index, "env"), f'"{key}" is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)')
        for key in app.env
        if not ENV_NAME.match(key)
    ]
    problems.extend(
        Problem(
            ("apps", index, "secrets", i), f'"{name}" is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)'
        )
        for i, name in enumerate(app.secrets)
        if not ENV_NAME.match(name)
    )
    return problems


def _check_dependencies(
    index: int, app: AppConfig, by_name: dict[str, tuple[int, AppConfig]], known: set[str]
) -> list[Problem]:
    problems: list[Problem] = []
    for name, condition in app.depends_on.items():
        loc: Loc = ("apps", index, "depends_on", name)
        if name == app.name:
            problems.append(Problem(loc, "an app cannot depend on itself; remove this entry"))
        elif name not in known:
            problems.append(Problem(loc, f'unknown app "{name}"; depend on an app defined in [[apps]]'))
        elif name in by_name:
            target_index, target = by_name[name]
            if condition == "healthy" and target.health is None:
                problems.append(
                    Problem(loc, f'"healthy" needs a probe: add apps[{target_index}].health or use "started"')
                )
            if condition == "completed" and target.restart == "always":
                problems.append(
                    Problem(
                        loc,
                        f'"{name}" never completes with restart = "always": set its restart to "never" or "on-failure"',
                    )
                )
    return problems


def _cycles(apps: Sequence[tuple[int, AppConfig]]) -> list[Problem]:
    """One problem per distinct dependency cycle, named like `api -> db -> api` and located at its first app.

    A depth-first walk in config order with its own stack: a valid chain of thousands of apps is as fine
    as a short one (a recursive walk met Python's recursion limit at about 1,000).
    """
    index_of = {app.name: index for index, app in reversed(apps)}
    edges = {app.name: [d for d in app.depends_on if d in index_of and d != app.name] for _, app in apps}
    seen_cycles: set[frozenset[str]] = set()
    problems: list[Problem] = []
    done: set[str] = set()
    for _, app in apps:
        if app.name in done:
            continue
        path = [app.name]
        position = {app.name: 0}  # of each app on `path`
        pending = [iter(edges[app.name])]
        while pending:
            dep = next(pending[-1], None)
            if dep is None:
                pending.pop()
                finished = path.pop()
                del position[finished]
                done.add(finished)
            elif dep in position:
                cycle = path[position[dep] :]
                if frozenset(cycle) not in seen_cycles:
                    seen_cycles.add(frozenset(cycle))
                    start = min(range(len(cycle)), key=lambda i: index_of[cycle[i]])
                    ordered = cycle[start:] + cycle[:start]
                    text = " -> ".join([*ordered, ordered[0]])
                    problems.append(Problem(("apps", index_of[ordered[0]], "depends_on"), f"dependency cycle {text}"))
            elif dep not in done:
                position[dep] = len(path)
                path.append(dep)
                pending.append(iter(edges[dep]))
    return problems


def dependency_order(ecosystem: Ecosystem) -> list[list[str]]:
    """App names in start layers: each layer depends only on earlier ones; config order within a layer."""
    return app_layers(ecosystem.apps)


def app_layers(apps: Sequence[AppConfig]) -> list[list[str]]:
    """`dependency_order` for any set of apps (dependencies outside the set are ignored).

    Kahn's algorithm by layers: each app is placed once its last dependency is, in time linear in the apps
    and their dependencies (a chain of 1,500 apps is 1,500 layers).
    """
    order = {app.name: position for position, app in enumerate(apps)}
    waiting_on = {app.name: {d for d in app.depends_on if d in order} for app in apps}
    dependents: dict[str, list[str]] = {name: [] for name in order}
    for name, deps in waiting_on.items():
        for dep in deps:
            dependents[dep].append(name)
    remaining = {name: len(deps) for name, deps in waiting_on.items()}
    layer = [name for name in order if remaining[name] == 0]
    layers: list[list[str]] = []
    while layer:
        layers.append(layer)
        ready: set[str] = set()
        for name in layer:
            for dependent in dependents[name]:
                remaining[dependent] -= 1
                if remaining[dependent] == 0:
                    ready.add(dependent)
        layer = sorted(ready, key=order.__getitem__)
    placed = sum(len(names) for names in layers)
    if placed != len(order):
        stuck = sorted(name for name, count in remaining.items() if count > 0)
        raise ValueError(f"dependency cycle among {', '.join(stuck)}")
    return layers


def stop_chain_s(apps: Sequence[AppConfig]) -> float:
    """The longest a graceful shutdown can take: layers stop in turn, each as slow as its slowest kill_timeout."""
    by_name = {app.name: app for app in apps}
    return sum(max(by_name[name].kill_timeout for name in layer) for layer in app_layers(apps))


def shutdown_warnings(apps: Sequence[AppConfig], shutdown_timeout_s: float) -> list[str]:
    """Valid but risky: a stop chain longer than shutdown_timeout ends in SIGKILL (and exit 1)."""
    chain = stop_chain_s(apps)
    if chain <= shutdown_timeout_s:
        return []
    return [f"warning: the apps' kill_timeouts add up to {chain:g}s along the stop order, over "
            f"shutdown_timeout = {shutdown_timeout_s:g}s: a slow shutdown ends in SIGKILL; raise "
            "[daemon] shutdown_timeout (and keep the platform's grace period above it) or lower kill_timeout"]



def readiness_only_notices(apps: Sequence[AppConfig]) -> list[str]:
    """For `check` only: an app with `[apps.health]` and no `[apps.liveness]` was restarted by its probe before
    the two were split; say once per app what changed and how to keep the restart."""
    return [f"notice: apps[{index}] ({app.name}): [apps.health] is readiness only and no longer restarts the app; "
            "add [apps.liveness] with the same keys to keep restarting it when the probe fails"
            for index, app in enumerate(apps) if app.health is not None and app.liveness is None]


DASHBOARD_TOKEN_ENV = "OMNITRON_DASHBOARD_TOKEN"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: reachable from this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def check_dashboard(daemon: DaemonConfig, environ: Mapping[str, str]) -> list[Problem]:
    """A dashboard bound beyond loopback must have a token to ask of every request (CONTRACT section 13)."""
    if daemon.dashboard is None:
        return []
    host, _port = split_host_port(daemon.dashboard)
    if is_loopback(host) or environ.get(DASHBOARD_TOKEN_ENV, ""):
        return []
    return [Problem(("daemon", "dashboard"),
                    f"{daemon.dashboard} is reachable beyond this machine, so it needs a token: set "
                    f"{DASHBOARD_TOKEN_ENV}, or bind it to 127.0.0.1 and use `kubectl port-forward` or `fly proxy`")]
