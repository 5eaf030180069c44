"""The secrets store on real files: round trips, modes, encryption, keys and names."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from omnitron.errors import SecretsError, UsageError
from omnitron.home.paths import Home
from omnitron.home.secrets import FERNET_HEADER, PLAIN_HEADER, SecretStore, generate_key

VALUE = "s3cr3t-VALUE-äö\nsecond line"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def store_home(home: Path) -> Home:
    return Home(home).ensure()


@pytest.mark.parametrize("with_key", [False, True], ids=["plaintext", "encrypted"])
def test_set_get_list_rm_round_trip(store_home: Home, with_key: bool) -> None:
    store = SecretStore(store_home, key=generate_key() if with_key else "")
    store.set("JWT_SECRET", VALUE)
    store.set("API_TOKEN", "tok")

    assert store.get("JWT_SECRET") == VALUE
    infos = store.list()
    assert [i.name for i in infos] == ["API_TOKEN", "JWT_SECRET"]
    assert all(i.encrypted is with_key for i in infos)
    assert all(i.updated_at.tzinfo is not None for i in infos)

    store.set("JWT_SECRET", "rotated")
    assert store.get("JWT_SECRET") == "rotated"
    store.remove("JWT_SECRET")
    assert [i.name for i in store.list()] == ["API_TOKEN"]
    with pytest.raises(SecretsError, match="no secret named JWT_SECRET"):
        store.get("JWT_SECRET")
    with pytest.raises(SecretsError, match="no secret named JWT_SECRET"):
        store.remove("JWT_SECRET")


def test_key_defaults_to_the_environment(store_home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNITRON_SECRETS_KEY", generate_key())
    SecretStore(store_home).set("A", "x")
    assert (Path(store_home.secrets_dir) / "A").read_bytes().startswith(FERNET_HEADER)
    assert SecretStore(store_home).get("A") == "x"


def test_file_and_directory_modes_and_no_leftover_temp_files(store_home: Home) -> None:
    old = os.umask(0o022)
    try:
        SecretStore(store_home, key="").set("A", "x")
        SecretStore(store_home, key=generate_key()).set("B", "y")
    finally:
        os.umask(old)
    assert mode(Path(store_home.secrets_dir)) == 0o700
    assert mode(Path(store_home.secrets_dir) / "A") == 0o600
    assert mode(Path(store_home.secrets_dir) / "B") == 0o600
    assert sorted(os.listdir(Path(store_home.secrets_dir))) == ["A", "B"]


def test_value_is_not_on_disk_in_clear_with_a_key(store_home: Home) -> None:
    SecretStore(store_home, key=generate_key()).set("A", VALUE)
    raw = (Path(store_home.secrets_dir) / "A").read_bytes()
    assert VALUE.encode() not in raw
    assert b"s3cr3t" not in raw


def test_wrong_key_is_a_clear_error_without_the_value(store_home: Home) -> None:
    SecretStore(store_home, key=generate_key()).set("A", VALUE)
    with pytest.raises(SecretsError) as caught:
        SecretStore(store_home, key=generate_key()).get("A")
    message = caught.value.one_line()
    assert "cannot decrypt secret A" in message
    assert "does not match the key it was written with" in message
    assert "s3cr3t" not in message


def test_encrypted_secret_without_a_key_is_an_error(store_home: Home) -> None:
    SecretStore(store_home, key=generate_key()).set("A", VALUE)
    with pytest.raises(SecretsError, match="secret A is encrypted but OMNITRON_SECRETS_KEY is not set"):
        SecretStore(store_home, key="").get("A")


def test_plaintext_secret_still_reads_once_a_key_is_set(store_home: Home) -> None:
    SecretStore(store_home, key="").set("A", "plain")
    keyed = SecretStore(store_home, key=generate_key())
    assert keyed.get("A") == "plain"
    assert [i.encrypted for i in keyed.list()] == [False]


def test_a_file_placed_without_header_is_its_own_value(store_home: Home) -> None:
    SecretStore(store_home, key="").set("A", "x")  # creates the directory
    (Path(store_home.secrets_dir) / "MOUNTED").write_bytes(b"from-kubernetes")
    assert SecretStore(store_home, key="").get("MOUNTED") == "from-kubernetes"
    assert PLAIN_HEADER not in (Path(store_home.secrets_dir) / "MOUNTED").read_bytes()


@pytest.mark.parametrize("key", ["not-a-key", "c2hvcnQ=", "\u00e9" * 44], ids=["garbage", "short", "non-ascii"])
def test_invalid_key_format_is_a_clear_error(store_home: Home, key: str) -> None:
    with pytest.raises(SecretsError) as caught:
        SecretStore(store_home, key=key)
    assert "OMNITRON_SECRETS_KEY is not a valid key" in caught.value.one_line()
    assert "omnitron secrets keygen" in caught.value.one_line()


def test_generate_key_is_32_random_bytes_in_urlsafe_base64() -> None:
    key = generate_key()
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert key != generate_key()


@pytest.mark.parametrize(
    "name",
    ["", "1ABC", "A-B", "A B", "../etc", ".hidden", "A/B", "\u00c9", "A" * 201, "A\n"],
    ids=["empty", "digit", "dash", "space", "dotdot", "dot", "slash", "non-ascii", "long", "newline"],
)
def test_invalid_names_are_usage_errors(store_home: Home, name: str) -> None:
    store = SecretStore(store_home, key="")
    with pytest.raises(UsageError, match="invalid secret name"):
        store.set(name, "x")
    with pytest.raises(UsageError):
        store.get(name)


@pytest.mark.parametrize("name", ["A", "_", "jwt_secret", "DATABASE_URL2"])
def test_valid_names(store_home: Home, name: str) -> None:
    store = SecretStore(store_home, key="")
    store.set(name, "v")
    assert store.get(name) == "v"


def test_nul_in_value_is_refused(store_home: Home) -> None:
    with pytest.raises(UsageError, match="NUL"):
        SecretStore(store_home, key="").set("A", "a\x00b")


def test_load_many_names_every_missing_secret(store_home: Home) -> None:
    store = SecretStore(store_home, key="")
    store.set("PRESENT", VALUE)
    assert store.load_many(["PRESENT", "PRESENT"]) == {"PRESENT": VALUE}
    with pytest.raises(SecretsError) as caught:
        store.load_many(["MISSING_ONE", "PRESENT", "MISSING_TWO"])
    message = caught.value.one_line()
    assert "MISSING_ONE, MISSING_TWO" in message
    assert "s3cr3t" not in message


def test_list_of_an_empty_or_absent_store(store_home: Home) -> None:
    assert SecretStore(store_home, key="").list() == []


def test_repr_never_shows_the_key(store_home: Home) -> None:
    key = generate_key()
    assert key not in repr(SecretStore(store_home, key=key))


def test_a_mounted_secret_file_with_a_nul_byte_is_refused_by_name(store_home: Home) -> None:
    # Regression test for the hardening issue, item 1: the value reached Popen, which raised ValueError.
    store = SecretStore(store_home, key="")
    store.set("GOOD", "fine")
    mounted = Path(store_home.secrets_dir) / "MOUNTED"
    mounted.write_bytes(b"pass\x00word")
    with pytest.raises(SecretsError) as caught:
        store.load_many(["GOOD", "MOUNTED"])
    line = caught.value.one_line()
    assert "secret MOUNTED contains a NUL byte" in line and str(mounted) in line
    assert "word" not in line


_KEY_CASES = [
    generate_key(),
    f"  {generate_key()}\n",  # surrounding whitespace, as a mounted file or an env line may have
    base64.urlsafe_b64encode(os.urandom(31)).decode(),
    base64.urlsafe_b64encode(os.urandom(33)).decode(),
    generate_key()[:-1],  # bad padding
    generate_key().replace("=", ""),
    "not-a-key",
    "é" * 44,
    base64.b64encode(b"\xfb" * 32).decode(),  # standard base64 ('+', '/'): not the url-safe alphabet
]


@pytest.mark.parametrize("key", _KEY_CASES)
def test_the_key_check_without_cryptography_agrees_with_fernet(key: str) -> None:
    from cryptography.fernet import Fernet

    from omnitron.home.secrets import check_key, is_valid_key

    try:
        Fernet(key.strip().encode("ascii"))
        fernet_accepts = True
    except ValueError:
        fernet_accepts = False
    assert is_valid_key(key) is fernet_accepts
    if fernet_accepts:
        check_key({"OMNITRON_SECRETS_KEY": key})
    else:
        with pytest.raises(UsageError, match="not a valid key"):
            check_key({"OMNITRON_SECRETS_KEY": key})


def test_checking_the_key_at_up_does_not_load_cryptography() -> None:
    # A daemon whose apps list no secret never opens the store: cryptography (about 6 MiB) stays out of it.
    code = ("import json, sys\nfrom omnitron.home.secrets import check_key, generate_key\n"
            "check_key({'OMNITRON_SECRETS_KEY': generate_key()})\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'cryptography')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == []
