"""`/metrics`: a DaemonSnapshot rendered in the Prometheus text format, through a fresh registry per scrape.

Every series comes from the snapshot alone, so a scrape never touches live Instances and leaves no global
registry state behind. Conventions: base units (seconds, bytes), `_total` for counters, labels `app` and
`instance`, and the "enum" pattern for the state (one series per state, 1 for the current one).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from omnitron.runtime.snapshot import DaemonSnapshot, InstanceSnapshot
from omnitron.runtime.states import AppState

LABELS = ("app", "instance")


class SnapshotCollector(Collector):
    """Yields omnitron's metric families from one snapshot."""

    def __init__(self, snapshot: DaemonSnapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot
        build = GaugeMetricFamily("omnitron_build_info", "omnitron version; always 1", labels=["version"])
        build.add_metric([snap.version], 1)
        yield build
        yield GaugeMetricFamily("omnitron_daemon_uptime_seconds", "Seconds since the daemon started", snap.uptime_s)
        yield GaugeMetricFamily(
            "omnitron_ready", "1 when /readyz answers 200: every autostart instance is ready", int(snap.ready)
        )
        yield from _instance_families(snap.instances)
        yield from _scaling_families(snap.instances)


def _scaling_families(instances: list[InstanceSnapshot]) -> Iterator[Metric]:
    """Per autoscaled app: the count its `[apps.scaling]` wants and the count it has."""
    desired = GaugeMetricFamily("omnitron_app_desired_instances",
                                "Instances the app's autoscaling wants (apps with [apps.scaling] only)", labels=["app"])
    current = GaugeMetricFamily("omnitron_app_instances",
                                "Instances the app has now (apps with [apps.scaling] only)", labels=["app"])
    counts: dict[str, int] = {}
    wanted: dict[str, int] = {}
    for inst in instances:
        if inst.scaling is not None:
            counts[inst.name] = counts.get(inst.name, 0) + 1
            wanted[inst.name] = int(inst.scaling["desired"])
    for app, count in counts.items():
        desired.add_metric([app], wanted[app])
        current.add_metric([app], count)
    yield from (desired, current)


def _instance_families(instances: list[InstanceSnapshot]) -> Iterator[Metric]:
    up = GaugeMetricFamily("omnitron_instance_up", "1 when the instance is in state running", labels=LABELS)
    restarts = CounterMetricFamily(
        "omnitron_instance_restarts", "Restarts of the instance since the daemon started", labels=LABELS
    )
    cpu = CounterMetricFamily(
        "omnitron_instance_cpu_seconds",
        "User and system CPU of the instance's process tree, reaped children included",
        labels=LABELS,
    )
    rss = GaugeMetricFamily(
        "omnitron_instance_memory_rss_bytes", "Resident memory of the instance's whole process tree", labels=LABELS
    )
    healthy = GaugeMetricFamily(
        "omnitron_instance_healthy",
        "1 while the instance's probe passes, 0 once it fails; absent for apps without a probe or before a verdict",
        labels=LABELS,
    )
    state = GaugeMetricFamily(
        "omnitron_instance_state", "1 for the instance's current state, 0 for the others", labels=[*LABELS, "state"]
    )
    for inst in instances:
        labels = [inst.name, str(inst.instance)]
        up.add_metric(labels, int(inst.state == AppState.RUNNING))
        restarts.add_metric(labels, inst.restarts)
        cpu.add_metric(labels, inst.cpu_seconds)
        rss.add_metric(labels, inst.memory_rss)
        if inst.healthy is not None:
            healthy.add_metric(labels, int(inst.healthy))
        for each in AppState:
            state.add_metric([*labels, each.value], int(inst.state == each.value))
    yield from (up, restarts, cpu, rss, healthy, state)


def render(snapshot: DaemonSnapshot) -> tuple[bytes, str]:
    """(body, content type) of a scrape; text format 0.0.4, which every Prometheus version reads."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    ProcessCollector(registry=registry)  # the daemon's own process_* series (CPU, memory, open fds)
    return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4
