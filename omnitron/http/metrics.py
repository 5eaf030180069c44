"""`/metrics`: a DaemonSnapshot rendered in the Prometheus text format (0.0.4), written directly.

Every series comes from the snapshot alone, so a scrape never touches live Instances and leaves no global
registry state behind. Conventions: base units (seconds, bytes), `_total` for counters, labels `app` and
`instance`, and the "enum" pattern for the state (one series per state, 1 for the current one).

The instance series are formatted here rather than through prometheus-client's collectors: at 1,000
instances (12,000 series) its registry took ~160 ms of event-loop time per scrape, this ~10 ms (issue 13,
item 5; bench/metrics_scrape.py). The daemon's own `process_*` series still come from its ProcessCollector.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, ProcessCollector, generate_latest

from omnitron.runtime.snapshot import DaemonSnapshot, InstanceSnapshot
from omnitron.runtime.states import AppState

STATES = [s.value for s in AppState]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _header(name: str, kind: str, help_text: str) -> str:
    return f"# HELP {name} {help_text.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}\n" \
           f"# TYPE {name} {kind}\n"


def _daemon_lines(snap: DaemonSnapshot) -> Iterator[str]:
    yield _header("omnitron_build_info", "gauge", "omnitron version; always 1")
    yield f'omnitron_build_info{{version="{_escape(snap.version)}"}} 1.0\n'
    yield _header("omnitron_daemon_uptime_seconds", "gauge", "Seconds since the daemon started")
    yield f"omnitron_daemon_uptime_seconds {_number(snap.uptime_s)}\n"
    yield _header("omnitron_ready", "gauge", "1 when /readyz answers 200: every autostart instance is ready")
    yield f"omnitron_ready {_number(int(snap.ready))}\n"


# (name, type, help, value of an instance or None for no sample)
_InstanceValue = Callable[[InstanceSnapshot], float | None]
_FAMILIES: list[tuple[str, str, str, _InstanceValue]] = [
    ("omnitron_instance_up", "gauge", "1 when the instance is in state running",
     lambda i: int(i.state == AppState.RUNNING)),
    ("omnitron_instance_restarts_total", "counter", "Restarts of the instance since the daemon started",
     lambda i: i.restarts),
    ("omnitron_instance_cpu_seconds_total", "counter",
     "User and system CPU of the instance's process tree, reaped children included", lambda i: i.cpu_seconds),
    ("omnitron_instance_memory_rss_bytes", "gauge", "Resident memory of the instance's whole process tree",
     lambda i: i.memory_rss),
    ("omnitron_instance_healthy", "gauge",
     "1 while the instance's probe passes, 0 once it fails; absent for apps without a probe or before a verdict",
     lambda i: None if i.healthy is None else int(i.healthy)),
]


def _number(value: float) -> str:
    """A sample value: integers (most values: counts, bytes, 0/1) as `N.0`, floats as Python's repr."""
    if type(value) is int:
        return f"{value}.0"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _instance_lines(instances: list[InstanceSnapshot]) -> Iterator[str]:
    labels = [f'app="{_escape(i.name)}",instance="{i.instance}"' for i in instances]
    for name, kind, help_text, value_of in _FAMILIES:
        yield _header(name, kind, help_text)
        for inst, label in zip(instances, labels, strict=True):
            value = value_of(inst)
            if value is not None:
                yield f"{name}{{{label}}} {_number(value)}\n"
    yield _header("omnitron_instance_state", "gauge", "1 for the instance's current state, 0 for the others")
    for inst, label in zip(instances, labels, strict=True):
        prefix = "omnitron_instance_state{" + label + ',state="'
        yield "".join([f'{prefix}{state}"}} {"1.0" if inst.state == state else "0.0"}\n' for state in STATES])


def _scaling_lines(instances: list[InstanceSnapshot]) -> Iterator[str]:
    """Per autoscaled app: the count its `[apps.scaling]` wants and the count it has."""
    counts: dict[str, int] = {}
    wanted: dict[str, int] = {}
    for inst in instances:
        if inst.scaling is not None:
            counts[inst.name] = counts.get(inst.name, 0) + 1
            wanted[inst.name] = int(inst.scaling["desired"])
    yield _header("omnitron_app_desired_instances", "gauge",
                  "Instances the app's autoscaling wants (apps with [apps.scaling] only)")
    for app in counts:
        yield f'omnitron_app_desired_instances{{app="{_escape(app)}"}} {_number(wanted[app])}\n'
    yield _header("omnitron_app_instances", "gauge", "Instances the app has now (apps with [apps.scaling] only)")
    for app, count in counts.items():
        yield f'omnitron_app_instances{{app="{_escape(app)}"}} {_number(count)}\n'


RESTART_REASONS = ("crash", "liveness", "memory", "operator", "reload", "watch", "scaling")


def _event_lines(snap: DaemonSnapshot) -> Iterator[str]:
    """Restarts by reason per instance (every reason present, 0 until it happens), events by kind, hook failures."""
    yield _header("omnitron_restarts_total", "counter", "Restarts of the instance since the daemon started, by reason")
    for inst in snap.instances:
        label = f'app="{_escape(inst.name)}",instance="{inst.instance}"'
        for reason, count in {**dict.fromkeys(RESTART_REASONS, 0), **inst.restart_reasons}.items():
            yield f'omnitron_restarts_total{{{label},reason="{_escape(reason)}"}} {_number(count)}\n'
    yield _header("omnitron_events_total", "counter", "Lifecycle events emitted since the daemon started, by kind")
    for kind, count in sorted(snap.event_counts.items()):
        yield f'omnitron_events_total{{kind="{_escape(kind)}"}} {_number(count)}\n'
    yield _header("omnitron_hook_failures_total", "counter",
                  "Hook deliveries that failed after their retries, and events dropped because a hook's queue was full")
    yield f"omnitron_hook_failures_total {_number(snap.hook_failures)}\n"


def _socket_lines(snap: DaemonSnapshot) -> Iterator[str]:
    """Per `listen` socket: 1 while the daemon holds it, and the connections waiting in its accept queue."""
    yield _header("omnitron_listen_info", "gauge", "1 for each shared socket the daemon holds for an app (listen)")
    for sock in snap.sockets:
        yield f'omnitron_listen_info{{app="{_escape(sock.app)}",address="{_escape(sock.address)}"}} 1.0\n'
    yield _header("omnitron_listen_queued_connections", "gauge",
                  "Connections accepted by the kernel and not yet by an instance (the socket's accept queue)")
    for sock in snap.sockets:
        if sock.queued is not None:
            yield (f'omnitron_listen_queued_connections{{app="{_escape(sock.app)}",address="{_escape(sock.address)}"}}'
                   f" {_number(sock.queued)}\n")


def render(snapshot: DaemonSnapshot) -> tuple[bytes, str]:
    """(body, content type) of a scrape; text format 0.0.4, which every Prometheus version reads."""
    own = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=own)  # the daemon's own process_* series (CPU, memory, open fds)
    text = "".join([*_daemon_lines(snapshot), *_instance_lines(snapshot.instances),
                    *_scaling_lines(snapshot.instances), *_event_lines(snapshot), *_socket_lines(snapshot)])
    return text.encode("utf-8") + generate_latest(own), CONTENT_TYPE_PLAIN_0_0_4
