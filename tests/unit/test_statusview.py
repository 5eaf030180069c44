"""The status table: 80 columns, human units, colour only when asked, a clear line for an empty ecosystem."""

from __future__ import annotations

import re

import pytest

from omnitron.cli.statusview import WIDTH, human_bytes, human_duration, render_status, row, summary, table


def entry(name: str = "api", instance: int = 0, **changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": name,
        "instance": instance,
        "pid": 4194304,  # the largest Linux PID: the widest pid cell
        "state": "completed",  # the longest state name
        "restarts": 12345,
        "uptime_s": 99 * 86400.0,
        "exit_code": None,
        "healthy": False,
        "cpu_percent": 199.94,
        "memory_rss": 1023 * 1024**3,
    }
    return base | changes


def daemon(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "pid": 41,
        "version": "0.1.0",
        "home": "/h",
        "started_at": "2026-11-26T09:00:00Z",
        "uptime_s": 12.5,
        "ready": False,
        "config": "/app/omnitron.toml",
    }
    return base | changes


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (5.9, "5s"), (59, "59s"), (60, "1m"), (199, "3m"), (3600, "1h"), (7300, "2h"), (4 * 86400 + 5, "4d")],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0B"), (512, "512B"), (1536, "1.5K"), (31457280, "30M"), (32 * 1024**2 + 1, "32M"), (2 * 1024**3, "2.0G")],
)
def test_human_bytes(size: int, text: str) -> None:
    assert human_bytes(size) == text


def test_worst_case_rows_fit_80_columns_and_long_names_are_cut() -> None:
    lines = table([entry("a-very-long-application-name-that-never-fits", 10), entry("api", 0)])
    assert max(len(line) for line in lines) <= WIDTH
    assert lines[1].startswith("a-very-long")
    assert "…" in lines[1].split()[0]
    assert lines[2].split()[0] == "api"


def test_cells_are_human() -> None:
    cells = row(entry(pid=57, state="running", restarts=2, uptime_s=190.0, cpu_percent=0.44, memory_rss=31457280))
    assert cells == {
        "app": "api",
        "inst": "0",
        "pid": "57",
        "state": "running",
        "uptime": "3m",
        "restarts": "2",
        "cpu%": "0.4",
        "mem": "30M",
        "health": "fail",
    }


def test_a_dead_instance_shows_dashes_not_zeros() -> None:
    cells = row(entry(pid=None, state="fatal", uptime_s=0.0, cpu_percent=0.0, memory_rss=0, healthy=None))
    assert [cells[c] for c in ("pid", "uptime", "cpu%", "mem", "health")] == ["-"] * 5
    assert cells["state"] == "fatal"


def test_health_values() -> None:
    assert [row(entry(healthy=h))["health"] for h in (True, False, None)] == ["ok", "fail", "-"]


def test_colour_only_on_request_and_width_unchanged() -> None:
    entries = [entry(state="running", pid=1), entry(state="fatal", instance=1, pid=None)]
    plain = table(entries)
    coloured = table(entries, colour=True)
    assert all("\033[" not in line for line in plain)
    assert "\033[32mrunning\033[0m" in coloured[1]
    assert "\033[31;1mfatal\033[0m" in coloured[2]
    assert "\033" not in coloured[0]  # the header stays plain
    strip = re.compile(r"\033\[[0-9;]*m")
    assert [strip.sub("", line) for line in coloured] == plain


def test_restarts_glyph_falls_back() -> None:
    assert table([entry()], restarts_glyph="rst")[0].split()[5] == "rst"
    assert table([entry()])[0].split()[5] == "↺"


def test_empty_ecosystem_says_so() -> None:
    text = render_status({"daemon": daemon(), "apps": []})
    assert text.splitlines()[1].startswith("no app instances")


def test_summary_never_cuts_the_config_path() -> None:
    """Regression test for #20 item 10: the path was cut to fit 80 columns, even on a wide terminal."""
    long_path = "/srv/" + "deep/" * 30 + "omnitron.toml"
    narrow = summary(daemon(config=long_path, uptime_s=7300.0, ready=True))
    assert narrow.splitlines() == ["omnitron 0.1.0  pid 41  up 2h  ready", f"config {long_path}"]
    wide = summary(daemon(config=long_path, uptime_s=7300.0, ready=True), width=250)
    assert wide == f"omnitron 0.1.0  pid 41  up 2h  ready  {long_path}"
    assert summary(daemon(config="/app/omnitron.toml")).endswith("not ready  /app/omnitron.toml")
    assert summary(daemon(config=None)).endswith("not ready")


def test_render_status_is_summary_header_and_one_line_per_instance() -> None:
    text = render_status({"daemon": daemon(), "apps": [entry(), entry(instance=1)]})
    assert text.endswith("\n")
    assert len(text.splitlines()) == 4


def test_an_autoscaled_app_gets_one_line_with_its_range_desired_count_and_reason() -> None:
    scaling = {"min": 1, "max": 8, "desired": 5, "reason": "queue 50 / 10 per instance"}
    apps = [entry("worker", i, scaling=scaling) for i in range(3)] + [entry("api")]
    lines = render_status({"daemon": daemon(), "apps": apps}).splitlines()
    assert lines[-1] == "worker: autoscaled 1..8, desired 5 (queue 50 / 10 per instance)"
    assert sum("autoscaled" in line for line in lines) == 1


def test_every_instance_not_running_gets_a_line_saying_why() -> None:
    fatal = entry("worker", state="fatal", pid=None, reason="fatal: crash loop: exit code 1",
                  last_exit={"at": "2026-12-02T01:44:12.345Z", "code": 1, "signal": None, "reason": "crash"})
    stopped = entry("web", state="stopped", pid=None, reason="stopped: operator",
                    last_exit={"at": "2026-12-02T01:50:00.000Z", "code": None, "signal": "SIGTERM",
                               "reason": "operator"})
    ready = entry("api", state="running", reason=None, last_exit=None)
    lines = render_status({"daemon": daemon(), "apps": [ready, fatal, stopped]}).splitlines()
    assert len(lines) == 1 + 1 + 3 + 1 + 2, lines
    assert lines[-3] == ""
    assert lines[-2] == "worker:0  fatal: crash loop: exit code 1 (last exit 01:44:12Z: code 1, crash)"
    assert lines[-1] == "web:0  stopped: operator (last exit 01:50:00Z: signal SIGTERM, operator)"
    long = entry("w", state="backoff", reason="backoff: " + "x" * 200)
    assert all(len(line) <= 80 for line in render_status({"daemon": daemon(), "apps": [long]}).splitlines())


def test_an_app_with_listen_gets_one_line_naming_its_socket_and_any_surge() -> None:
    """Issue 14: status shows the shared socket, and which instance is replacing which PID."""
    from omnitron.cli.statusview import listen_lines

    base = {"state": "running", "pid": 10, "listen": ["0.0.0.0:3001"]}
    entries = [{"name": "api", "instance": 0, **base}, {"name": "api", "instance": 1, **base, "replacing_pid": 7},
               {"name": "worker", "instance": 0, "state": "running", "pid": 11}]
    assert listen_lines(entries) == ["api: listens on 0.0.0.0:3001; api:1 replacing pid 7"]
