"""ProbeTracker verdict tables and make_probe's per-instance resolution (no I/O)."""

from __future__ import annotations

import pytest

from omnitron.config.model import HealthConfig
from omnitron.health.probes import (
    BrokenProbe,
    ExecProbe,
    HttpProbe,
    ProbeResult,
    ProbeTracker,
    ProbeVerdict,
    TcpProbe,
    make_probe,
)
from tests.helpers import launch_spec

PASS = ProbeResult(True)
FAIL = ProbeResult(False, "connection refused")


def health(**overrides: object) -> HealthConfig:
    values: dict[str, object] = {"tcp": 1234, "failure_threshold": 3, "start_period": 10.0}
    values.update(overrides)
    return HealthConfig.model_validate(values)


def run(tracker: ProbeTracker, steps: list[tuple[float, ProbeResult]]) -> list[ProbeVerdict]:
    return [tracker.record(result, now) for now, result in steps]


def test_first_pass_marks_healthy_and_changed() -> None:
    tracker = ProbeTracker(health(), started_at=100.0)
    assert tracker.healthy is None
    verdict = tracker.record(PASS, 101.0)
    assert verdict == ProbeVerdict(healthy=True, changed=True, last_error=None)
    assert tracker.record(PASS, 102.0).changed is False


def test_failures_inside_start_period_are_not_counted() -> None:
    tracker = ProbeTracker(health(start_period=10.0), started_at=100.0)
    verdicts = run(tracker, [(101.0, FAIL), (103.0, FAIL), (105.0, FAIL), (109.9, FAIL)])
    assert [v.healthy for v in verdicts] == [None, None, None, None]
    assert not any(v.healthy is False or v.changed for v in verdicts)
    # the reason is still reported, for /readyz
    assert verdicts[-1].last_error == "connection refused"


def test_failures_after_start_period_reach_threshold() -> None:
    tracker = ProbeTracker(health(start_period=10.0, failure_threshold=3), started_at=100.0)
    verdicts = run(tracker, [(105.0, FAIL), (110.0, FAIL), (111.0, FAIL), (112.0, FAIL)])
    assert [v.healthy for v in verdicts] == [None, None, None, False]
    assert [v.healthy is False for v in verdicts] == [False, False, False, True]
    assert [v.changed for v in verdicts] == [False, False, False, True]


def test_a_pass_ends_the_start_period_so_failures_count_at_once() -> None:
    tracker = ProbeTracker(health(start_period=60.0, failure_threshold=2), started_at=0.0)
    verdicts = run(tracker, [(1.0, PASS), (2.0, FAIL), (3.0, FAIL)])
    assert [v.healthy for v in verdicts] == [True, True, False]
    assert [v.healthy is False for v in verdicts] == [False, False, True]
    assert verdicts[1].last_error == "connection refused"


def test_a_pass_resets_the_consecutive_count() -> None:
    tracker = ProbeTracker(health(start_period=0.0, failure_threshold=2), started_at=0.0)
    verdicts = run(tracker, [(1.0, PASS), (2.0, FAIL), (3.0, PASS), (4.0, FAIL), (5.0, PASS)])
    assert [v.healthy for v in verdicts] == [True] * 5
    assert not any(v.healthy is False for v in verdicts)


def test_recovery_after_unhealthy_is_a_change() -> None:
    tracker = ProbeTracker(health(start_period=0.0, failure_threshold=1), started_at=0.0)
    verdicts = run(tracker, [(1.0, PASS), (2.0, FAIL), (3.0, FAIL), (4.0, PASS)])
    assert [(v.healthy, v.changed) for v in verdicts] == [(True, True), (False, True), (False, False), (True, True)]
    # level-triggered: every failure past the threshold is a failed verdict (a liveness probe restarts on it)
    assert [v.healthy is False for v in verdicts] == [False, True, True, False]
    assert verdicts[-1].last_error is None and tracker.last_error is None


def test_failure_without_reason_gets_a_generic_one() -> None:
    tracker = ProbeTracker(health(start_period=0.0, failure_threshold=1), started_at=0.0)
    assert tracker.record(ProbeResult(False), 1.0).last_error == "probe failed"


def test_http_probe_resolves_port_and_instance() -> None:
    config = health(tcp=None, http="http://127.0.0.1:${PORT}/health?i=${OMNITRON_INSTANCE}")
    probe = make_probe(config, launch_spec(port=3002, instance=1, env={}, cwd="."))
    assert isinstance(probe, HttpProbe)
    assert (probe.host, probe.port, probe.path) == ("127.0.0.1", 3002, "/health?i=1")


def test_http_probe_default_path_and_port() -> None:
    probe = make_probe(health(tcp=None, http="http://localhost"), launch_spec(port=None, instance=0, env={}, cwd="."))
    assert isinstance(probe, HttpProbe)
    assert (probe.host, probe.port, probe.path) == ("localhost", 80, "/")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (8000, ("127.0.0.1", 8000)),
        ("8001", ("127.0.0.1", 8001)),
        ("${PORT}", ("127.0.0.1", 3005)),
        ("db:${PORT}", ("db", 3005)),
        ("[::1]:80", ("::1", 80)),
    ],
)
def test_tcp_targets(target: int | str, expected: tuple[str, int]) -> None:
    probe = make_probe(health(tcp=target), launch_spec(port=3005, instance=0, env={}, cwd="."))
    assert isinstance(probe, TcpProbe)
    assert (probe.host, probe.port) == expected


def test_exec_probe_resolves_argv_from_the_instance_env() -> None:
    config = health(tcp=None, exec=["check", "--port", "${PORT}", "--name=${NAME}"])
    probe = make_probe(config, launch_spec(port=4000, instance=0, env={"NAME": "api"}, cwd="/"))
    assert isinstance(probe, ExecProbe)
    assert probe.argv == ["check", "--port", "4000", "--name=api"]


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        ("http", "http://127.0.0.1:${PORT}/", "sets no `port`"),
        ("http", "ftp://example.com/", "http:// or https://"),
        ("tcp", "db:notaport", "host:port"),
        ("tcp", "${PORT}", "sets no `port`"),
    ],
)
@pytest.mark.anyio
async def test_unusable_probe_config_fails_every_check_with_the_reason(kind: str, value: str, reason: str) -> None:
    probe = make_probe(health(**{"tcp": None, kind: value}), launch_spec(port=None, instance=0, env={}, cwd="."))
    assert isinstance(probe, BrokenProbe)
    result = await probe.check()
    assert not result.ok
    assert result.error is not None and reason in result.error


def test_a_host_invalid_once_resolved_per_instance_is_a_broken_probe() -> None:
    # Regression test for the hardening issue, item 1: the resolver would raise UnicodeError at every probe.
    config = health(tcp=None, http="http://${HOST}..x/")
    probe = make_probe(config, launch_spec(port=None, instance=0, env={"HOST": "\u00fc"}, cwd="."))
    assert isinstance(probe, BrokenProbe)
    assert "http probe: the host is not a valid internationalized domain name" in repr(probe)
