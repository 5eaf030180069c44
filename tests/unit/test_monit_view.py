"""monit's layout as text: it fits 80×24 with many instances, keeps the selection in view, and says when the
figures are stale."""

from __future__ import annotations

from typing import Any

from omnitron.cli.monit_view import ASCII_BARS, UNICODE_BARS, Model, layout, sparkline


def _status(count: int, state: str = "running") -> dict[str, Any]:
    return {"daemon": {"pid": 7, "version": "0.1.0", "uptime_s": 3700, "ready": True},
            "apps": [{"name": "a-rather-long-app-name" if i == 0 else "web", "instance": i, "pid": 1000 + i,
                      "state": state, "restarts": i, "uptime_s": 65.0, "healthy": i % 2 == 0,
                      "cpu_percent": 12.5 * i, "memory_rss": 30 * 2**20 + i} for i in range(count)]}


def test_twenty_instances_fit_80_by_24_and_the_selection_scrolls_into_view() -> None:
    model = Model()
    model.update(_status(20))
    for _ in range(19):
        model.move(1)
    lines = layout(model, 24, 80)
    assert all(0 <= line.y < 24 and len(line.text) <= 80 for line in lines)
    assert len({line.y for line in lines}) == len(lines)  # one text per row
    texts = [line.text for line in lines]
    assert any(t.startswith("web:19 ") for t in texts)  # the selected (last) row is on screen
    assert [line.style for line in lines if line.text.startswith("web:19 ")] == ["selected"]
    assert texts[-1].lstrip().startswith("q quit")


def test_a_row_shows_state_health_pid_restarts_uptime_cpu_and_memory() -> None:
    model = Model()
    model.update(_status(3))
    row = next(line.text for line in layout(model, 24, 80) if line.text.startswith("web:2 "))
    assert row.split()[:7] == ["web:2", "running", "ok", "1002", "2", "1m", "25.0%"]
    assert "30M" in row


def test_a_daemon_that_stops_answering_is_said_in_the_header() -> None:
    model = Model()
    model.update(_status(1))
    model.problem = "daemon PID 7 does not answer"
    assert "does not answer" in layout(model, 24, 80)[0].text


def test_sparklines_scale_to_their_own_peak_and_fall_back_to_ascii() -> None:
    assert sparkline([0, 5, 10], UNICODE_BARS) == "▁▅█"
    assert sparkline([0, 0], UNICODE_BARS) == "▁▁"
    assert sparkline([0.1, 0.1], UNICODE_BARS, floor=5.0) == "▁▁"  # a trickle is not a full bar
    assert sparkline([100, 100, 101], UNICODE_BARS, relative=True) == "▄▄▄"  # memory that hardly moves
    assert sparkline([100, 150, 200], UNICODE_BARS, relative=True) == "▁▅█"
    assert sparkline([1, 2], ASCII_BARS).isascii()
    assert all(line.text.isascii() for line in layout(_ascii_model(), 24, 80))


def _ascii_model() -> Model:
    model = Model(unicode=False)
    model.update(_status(2))
    model.update(_status(2))
    return model
