"""/metrics rendering, checked through prometheus-client's own text parser."""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from omnitron.http.metrics import render
from omnitron.runtime.snapshot import DaemonSnapshot, InstanceSnapshot
from omnitron.runtime.states import AppState

API0 = InstanceSnapshot(
    name="api",
    instance=0,
    pid=57,
    state="running",
    restarts=3,
    uptime_s=12.1,
    exit_code=None,
    healthy=True,
    cpu_percent=0.4,
    memory_rss=31_457_280,
    cpu_seconds=1.25,
    autostart=True,
    ready=True,
    reason="",
)
API1 = replace(API0, instance=1, pid=None, state="backoff", restarts=7, healthy=False, memory_rss=0, cpu_seconds=0.0)
WORKER = replace(API0, name="worker", pid=60, healthy=None, restarts=0, memory_rss=1024, cpu_seconds=9.5)
DAEMON = DaemonSnapshot(
    pid=41,
    version="0.1.0",
    home="/var/lib/omnitron",
    started_at="2026-11-26T09:00:00Z",
    uptime_s=12.5,
    ready=False,
    config="/app/omnitron.toml",
    shutting_down=False,
    health_port=9800,
    instances=[API0, API1, WORKER],
)


def scrape(snapshot: DaemonSnapshot = DAEMON) -> dict[str, list[Sample]]:
    body, content_type = render(snapshot)
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode("utf-8"))}
    return {name: family.samples for name, family in families.items()}


def values(samples: list[Sample], name: str | None = None) -> dict[tuple[str, ...], float]:
    return {tuple(v for _k, v in sorted(s.labels.items())): s.value for s in samples if name is None or s.name == name}


def test_daemon_series() -> None:
    metrics = scrape()
    assert [s.labels for s in metrics["omnitron_build_info"]] == [{"version": "0.1.0"}]
    assert metrics["omnitron_build_info"][0].value == 1
    assert metrics["omnitron_daemon_uptime_seconds"][0].value == 12.5
    assert metrics["omnitron_ready"][0].value == 0
    assert scrape(replace(DAEMON, ready=True))["omnitron_ready"][0].value == 1


def test_instance_up_follows_the_running_state() -> None:
    assert values(scrape()["omnitron_instance_up"]) == {("api", "0"): 1, ("api", "1"): 0, ("worker", "0"): 1}


def test_counters_have_total_names_and_types() -> None:
    body, _ = render(DAEMON)
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert families["omnitron_instance_restarts"].type == "counter"
    assert families["omnitron_instance_cpu_seconds"].type == "counter"
    restarts = values(families["omnitron_instance_restarts"].samples, "omnitron_instance_restarts_total")
    assert restarts == {("api", "0"): 3, ("api", "1"): 7, ("worker", "0"): 0}
    cpu = values(families["omnitron_instance_cpu_seconds"].samples, "omnitron_instance_cpu_seconds_total")
    assert cpu == {("api", "0"): 1.25, ("api", "1"): 0.0, ("worker", "0"): 9.5}


def test_memory_in_bytes() -> None:
    rss = values(scrape()["omnitron_instance_memory_rss_bytes"])
    assert rss == {("api", "0"): 31_457_280, ("api", "1"): 0, ("worker", "0"): 1024}


def test_healthy_is_absent_without_a_probe_verdict() -> None:
    assert values(scrape()["omnitron_instance_healthy"]) == {("api", "0"): 1, ("api", "1"): 0}


def test_state_is_one_series_per_state_with_one_set() -> None:
    samples = scrape()["omnitron_instance_state"]
    api1 = {s.labels["state"]: s.value for s in samples if s.labels["app"] == "api" and s.labels["instance"] == "1"}
    assert set(api1) == {state.value for state in AppState}
    assert {state for state, value in api1.items() if value == 1} == {"backoff"}


@pytest.mark.parametrize("name", ['we"ird', "back\\slash", "new\nline"])
def test_label_values_are_escaped(name: str) -> None:
    metrics = scrape(replace(DAEMON, instances=[replace(API0, name=name)]))
    assert [s.labels["app"] for s in metrics["omnitron_instance_up"]] == [name]


def test_no_instances_still_renders_the_daemon() -> None:
    metrics = scrape(replace(DAEMON, instances=[]))
    assert metrics["omnitron_instance_up"] == []
    assert metrics["omnitron_ready"][0].value == 0


def test_the_daemon_s_own_process_metrics_are_included() -> None:
    assert scrape()["process_resident_memory_bytes"][0].value > 0


def test_renders_are_independent() -> None:
    first = scrape(DAEMON)
    second = scrape(replace(DAEMON, instances=[WORKER]))
    assert len(values(first["omnitron_instance_up"])) == 3
    assert values(second["omnitron_instance_up"]) == {("worker", "0"): 1}


def test_restarts_by_reason_events_by_kind_and_hook_failures() -> None:
    snap = replace(DAEMON, instances=[replace(API0, restarts=3, restart_reasons={"crash": 2, "operator": 1}), WORKER],
                   event_counts={"start": 4, "exit": 3, "fatal": 1}, hook_failures=2)
    body, _ = render(snap)
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert families["omnitron_restarts"].type == "counter"
    by_reason = {(s.labels["app"], s.labels["instance"], s.labels["reason"]): s.value
                 for s in families["omnitron_restarts"].samples if s.name == "omnitron_restarts_total"}
    assert by_reason[("api", "0", "crash")] == 2 and by_reason[("api", "0", "operator")] == 1
    assert by_reason[("api", "0", "liveness")] == 0 and by_reason[("worker", "0", "scaling")] == 0
    assert {r for (_a, _i, r) in by_reason} == {"crash", "liveness", "memory", "operator", "reload", "watch",
                                                "scaling"}
    events = {s.labels["kind"]: s.value for s in families["omnitron_events"].samples
              if s.name == "omnitron_events_total"}
    assert events == {"start": 4, "exit": 3, "fatal": 1}
    (failures,) = [s for s in families["omnitron_hook_failures"].samples if s.name == "omnitron_hook_failures_total"]
    assert failures.value == 2
