"""`omnitron logs` on real log files: tail, rotated files, merging apps by time, JSON, unknown apps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omnitron.cli import main
from omnitron.home.paths import Home


def write_log(home: Path, name: str, lines: list[tuple[str, str, bytes]]) -> None:
    logs = Path(Home(home).ensure().logs_dir)
    (logs / name).write_bytes(b"".join(b"%s %s | %s\n" % (ts.encode(), s.encode(), line) for ts, s, line in lines))


def ts(second: int) -> str:
    return f"2026-11-26T09:00:{second:02d}.000Z"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["logs", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_last_n_lines_of_one_instance(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_log(home, "api-0.log", [(ts(i), "stdout", b"line %d" % i) for i in range(60)])
    code, out, _ = run(capsys, "api:0", "-n", "3")
    assert code == 0
    assert out == ["api.0 | line 57", "api.0 | line 58", "api.0 | line 59"]


def test_default_is_50_lines(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_log(home, "api-0.log", [(ts(i % 60), "stdout", b"line %d" % i) for i in range(80)])
    assert run(capsys, "api")[1][0] == "api.0 | line 30"


def test_rotated_files_fill_in_when_the_current_one_is_short(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_log(home, "api-0.log.2", [(ts(0), "stdout", b"a"), (ts(1), "stdout", b"b")])
    write_log(home, "api-0.log.1", [(ts(2), "stdout", b"c")])
    write_log(home, "api-0.log", [(ts(3), "stderr", b"d")])
    code, out, _ = run(capsys, "api", "-n", "3")
    assert out == ["api.0 | b", "api.0 | c", "api.0 | d"]


def test_all_apps_are_merged_by_time_and_tagged(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_log(home, "api-0.log", [(ts(1), "stdout", b"api first"), (ts(4), "stdout", b"api last")])
    write_log(home, "api-1.log", [(ts(2), "stdout", b"api one")])
    write_log(home, "my-app-2-0.log", [(ts(3), "stderr", b"dashed name")])
    write_log(home, "omnitron.log", [(ts(0), "stdout", b"not an app log")])
    code, out, _ = run(capsys)
    assert out == ["api.0 | api first", "api.1 | api one", "my-app-2.0 | dashed name", "api.0 | api last"]


def test_json_lines(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_log(home, "api-3.log", [(ts(5), "stderr", b"bad \xff and \r kept")])
    code, out, _ = run(capsys, "api", "--json")
    assert [json.loads(line) for line in out] == [
        {"ts": ts(5), "app": "api", "instance": 3, "stream": "stderr", "line": "bad \\xff and \r kept"}
    ]


def test_an_unfinished_last_line_is_not_shown(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_log(home, "api-0.log", [(ts(1), "stdout", b"done")])
    with Home(home).instance_log("api", 0).open("ab") as f:
        f.write(b"2026-11-26T09:00:02.000Z stdout | half")
    assert run(capsys, "api")[1] == ["api.0 | done"]


def test_unknown_app_is_a_usage_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_log(home, "api-0.log", [(ts(1), "stdout", b"x")])
    code, out, err = run(capsys, "nope")
    assert code == 2 and out == []
    assert "no logs for nope" in err and "omnitron status" in err


def test_unknown_instance_is_a_usage_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_log(home, "api-0.log", [(ts(1), "stdout", b"x")])
    assert run(capsys, "api:7")[0] == 2


@pytest.mark.parametrize("args", [["api:x"], ["api", "-n", "-1"]])
def test_bad_arguments_are_usage_errors(home: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    assert run(capsys, *args)[0] == 2


@pytest.mark.parametrize(("target", "what"), [("api:x", "bad instance"), ("api:-1", "bad instance"), (":0", "no app")])
def test_a_bad_target_names_what_is_wrong(
    home: Path, capsys: pytest.CaptureFixture[str], target: str, what: str
) -> None:
    assert run(capsys, target) == (2, [], f"omnitron: {what} in {target!r} (use APP or APP:N, e.g. api:0)\n")


def test_no_logs_at_all_prints_nothing(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys) == (0, [], "")


def test_zero_lines(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_log(home, "api-0.log", [(ts(1), "stdout", b"x")])
    assert run(capsys, "api", "-n", "0") == (0, [], "")


def test_timestamps_show_each_line_with_its_time_and_stream(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue #20: `logs --timestamps`, with stderr marked (what PM2's `logs --timestamp` gives)."""
    write_log(home, "api-0.log", [(ts(1), "stdout", b"GET / 200"), (ts(2), "stderr", b"Traceback")])
    assert run(capsys, "api", "-t")[1] == [f"{ts(1)} stdout api.0 | GET / 200", f"{ts(2)} stderr api.0 | Traceback"]


def test_grep_keeps_the_last_n_matching_lines_of_every_app(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue #20: `logs --grep`; the matches are searched in the whole files, not only in the last N lines."""
    write_log(home, "api-0.log", [(ts(1), "stdout", b"GET /orders 500"), *((ts(2), "stdout", b"GET / 200"),) * 60])
    write_log(home, "web-0.log", [(ts(3), "stderr", b"POST /login 500"), (ts(4), "stdout", b"ok")])
    assert run(capsys, "--grep", r" 5\d\d$", "-n", "5")[1] == ["api.0 | GET /orders 500", "web.0 | POST /login 500"]
    assert run(capsys, "--grep", "500", "-n", "1")[1] == ["web.0 | POST /login 500"]
    code, out, err = run(capsys, "--grep", "(")
    assert (code, out) == (2, []) and "not a valid regular expression" in err


def test_a_valid_app_with_no_output_yet_is_not_called_unknown(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression test for #20 item 8: `logs APP` for an app that never wrote a line said "check the name"."""
    Home(home).ensure()
    (home / "state.json").write_text(json.dumps({"pid": 1, "apps": [
        {"app": "quiet", "instance": 0, "pid": 5, "start_time": 1.0, "state": "running", "restarts": 0}]}))
    assert run(capsys, "quiet") == (0, [], f"omnitron: quiet has written no output yet (nothing in {home / 'logs'})\n")
    code, _, err = run(capsys, "quiet:3")
    assert code == 2 and "check the name" in err and "apps: quiet" in err


def test_the_daemons_own_log(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression test for #20 item 8: the detached daemon's logs/omnitron.log could not be read with `logs`."""
    code, out, err = run(capsys, "--daemon")
    assert (code, out) == (1, []) and "only a detached daemon" in err and "docker logs" in err
    Path(Home(home).ensure().daemon_log).write_text(
        "".join(f'{{"event": "daemon_started", "n": {i}}}\n' for i in range(5)) + '{"event": "half"')
    assert run(capsys, "--daemon", "-n", "2") == (0, ['{"event": "daemon_started", "n": 3}',
                                                      '{"event": "daemon_started", "n": 4}'], "")
    assert run(capsys, "--daemon", "--grep", '"n": [02]')[1] == ['{"event": "daemon_started", "n": 0}',
                                                                 '{"event": "daemon_started", "n": 2}']
    assert run(capsys, "--daemon", "api")[0] == 2


def test_the_daemons_log_tail_reaches_into_its_rotated_files(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = Path(Home(home).ensure().daemon_log)
    log.with_name("omnitron.log.1").write_text('{"n": 1}\n{"n": 2}\n')
    log.write_text('{"n": 3}\n')
    assert run(capsys, "--daemon", "-n", "2")[1] == ['{"n": 2}', '{"n": 3}']
