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
