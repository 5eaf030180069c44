"""`omnitron secrets` as users run it: a real CLI process on a private home, no daemon."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

VALUE = "tok-3f9a-SECRET-VALUE"


def omnitron(*args: str, stdin: str | None = None, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("OMNITRON_SECRETS_KEY", None)
    if key is not None:
        env["OMNITRON_SECRETS_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "omnitron", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def keygen() -> str:
    result = omnitron("secrets", "keygen")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("with_key", [False, True], ids=["plaintext", "encrypted"])
def test_round_trip_with_value_from_stdin(home: Path, with_key: bool) -> None:
    key = keygen() if with_key else None
    result = omnitron("secrets", "set", "JWT_SECRET", stdin=VALUE + "\n", key=key)
    assert result.returncode == 0, result.stderr
    assert VALUE not in result.stdout + result.stderr

    got = omnitron("secrets", "get", "JWT_SECRET", key=key)
    assert (got.returncode, got.stdout) == (0, VALUE + "\n")

    listed = omnitron("secrets", "list", "--json", key=key)
    assert listed.returncode == 0, listed.stderr
    assert VALUE not in listed.stdout + listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["name"] == "JWT_SECRET"
    assert row["encrypted"] is with_key
    assert row["updated_at"].endswith("Z")

    table = omnitron("secrets", "list", key=key)
    assert "JWT_SECRET" in table.stdout
    assert VALUE not in table.stdout + table.stderr

    assert omnitron("secrets", "rm", "JWT_SECRET", key=key).returncode == 0
    assert json.loads(omnitron("secrets", "list", "--json").stdout) == []


def test_files_on_disk_have_private_modes(home: Path) -> None:
    assert omnitron("secrets", "set", "A", "x").returncode == 0
    assert stat.S_IMODE((home / "secrets").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "secrets" / "A").stat().st_mode) == 0o600


def test_only_one_trailing_newline_is_stripped_from_stdin(home: Path) -> None:
    assert omnitron("secrets", "set", "MULTI", stdin="line1\nline2\n\n").returncode == 0
    assert omnitron("secrets", "get", "MULTI").stdout == "line1\nline2\n\n"


def test_value_as_argument(home: Path) -> None:
    assert omnitron("secrets", "set", "ARG", "from-arg").returncode == 0
    assert omnitron("secrets", "get", "ARG").stdout == "from-arg\n"


def test_wrong_key_exits_1_with_a_one_line_error_and_no_value(home: Path) -> None:
    assert omnitron("secrets", "set", "A", VALUE, key=keygen()).returncode == 0
    result = omnitron("secrets", "get", "A", key=keygen())
    assert result.returncode == 1
    assert result.stdout == ""
    assert "cannot decrypt secret A" in result.stderr
    assert VALUE not in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_encrypted_secret_without_key_exits_1(home: Path) -> None:
    assert omnitron("secrets", "set", "A", VALUE, key=keygen()).returncode == 0
    result = omnitron("secrets", "get", "A")
    assert result.returncode == 1
    assert "OMNITRON_SECRETS_KEY is not set" in result.stderr


def test_invalid_key_exits_1(home: Path) -> None:
    result = omnitron("secrets", "set", "A", "x", key="not-a-key")
    assert result.returncode == 1
    assert "not a valid key" in result.stderr
    assert not (home / "secrets" / "A").exists()


def test_missing_secret_get_and_rm_exit_1(home: Path) -> None:
    for action in ("get", "rm"):
        result = omnitron("secrets", action, "NOPE")
        assert result.returncode == 1
        assert "no secret named NOPE" in result.stderr


def test_invalid_name_exits_2_without_reading_stdin(home: Path) -> None:
    result = omnitron("secrets", "set", "not-valid", stdin=VALUE)
    assert result.returncode == 2
    assert "invalid secret name" in result.stderr
    assert VALUE not in result.stderr


def test_empty_stdin_is_refused(home: Path) -> None:
    result = omnitron("secrets", "set", "EMPTY", stdin="")
    assert result.returncode == 2
    assert "no value for EMPTY on stdin" in result.stderr


def test_missing_action_exits_2(home: Path) -> None:
    assert omnitron("secrets").returncode == 2


def test_keygen_prints_a_usable_key(home: Path) -> None:
    key = keygen()
    assert omnitron("secrets", "set", "A", "v", key=key).returncode == 0
    assert omnitron("secrets", "get", "A", key=key).stdout == "v\n"


def test_building_the_cli_does_not_import_cryptography_or_dotenv() -> None:
    """`omnitron status` must not pay for the secrets store's heavy imports."""
    code = (
        "import sys, omnitron.cli as cli; cli.build_parser(); "
        "print(sorted(m for m in ('cryptography', 'dotenv', 'omnitron.home.secrets') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
