"""The secrets store: one file per named value under $OMNITRON_HOME/secrets/, Fernet-encrypted when a key is set."""

from __future__ import annotations

import base64
import errno
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from omnitron.errors import SecretsError, UsageError
from omnitron.home.atomic import fsync_folder, write_atomic
from omnitron.home.paths import Home

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

KEY_ENV = "OMNITRON_SECRETS_KEY"
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_NAME_LENGTH = 200
# Every file the store writes starts with one of these lines, so a reader knows how the rest is stored.
PLAIN_HEADER = b"omnitron-secret:plain\n"
FERNET_HEADER = b"omnitron-secret:fernet\n"
_HEADER_MAX = max(len(PLAIN_HEADER), len(FERNET_HEADER))


@dataclass(frozen=True)
class SecretInfo:
    """What `secrets list` shows about a secret: never its value."""

    name: str
    updated_at: datetime
    encrypted: bool


def generate_key() -> str:
    """A new store key: 32 random bytes, url-safe base64 (the Fernet key format)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def validate_name(name: str) -> str:
    """Return `name` if it can be an environment variable name; UsageError otherwise."""
    if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise UsageError(
            f"invalid secret name {name!r}: secrets are injected as environment variables",
            f"use letters, digits and underscores, not starting with a digit, at most {MAX_NAME_LENGTH} characters",
        )
    return name


_BAD_KEY = (f"{KEY_ENV} is not a valid key: it must be 32 bytes in url-safe base64",
            "generate one with `omnitron secrets keygen`")


def _make_fernet(key: str) -> Fernet:
    from cryptography.fernet import Fernet

    try:
        return Fernet(key.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise SecretsError(*_BAD_KEY) from None


def is_valid_key(key: str) -> bool:
    """Fernet's own test of a key (its url-safe base64 decodes to 32 bytes), without importing cryptography:
    a daemon whose apps list no secret never loads it (about 6 MiB of RSS, issue 18)."""
    try:
        return len(base64.urlsafe_b64decode(key.strip().encode("ascii"))) == 32
    except ValueError:  # binascii.Error and UnicodeEncodeError are both ValueErrors
        return False


def check_key(environ: Mapping[str, str]) -> None:
    """At `up`: a set OMNITRON_SECRETS_KEY must be a valid key, or the daemon refuses to start (exit 2), so a
    placeholder key fails at deploy time, not at the first secret an app needs (issue #20)."""
    raw = environ.get(KEY_ENV)
    if raw and not is_valid_key(raw):
        raise UsageError(*_BAD_KEY)


class SecretStore:
    """Named values on disk. Files written without a key are plaintext; with a key, Fernet tokens."""

    def __init__(self, home: Home, key: str | None = None) -> None:
        self.home = home
        raw = os.environ.get(KEY_ENV) if key is None else key
        # An empty variable (`ENV OMNITRON_SECRETS_KEY=` in a Dockerfile) means no key, like an unset one.
        self._fernet = _make_fernet(raw) if raw else None

    def __repr__(self) -> str:
        state = "encrypting" if self._fernet else "plaintext"
        return f"<SecretStore {self.home.secrets_dir} {state}>"

    @property
    def directory(self) -> Path:
        return Path(self.home.secrets_dir)

    @property
    def has_key(self) -> bool:
        return self._fernet is not None

    def _path(self, name: str) -> Path:
        return self.directory / validate_name(name)

    def has(self, name: str) -> bool:
        self._check_dir()
        try:
            mode = os.lstat(self._path(name)).st_mode
        except FileNotFoundError:
            return False
        return stat.S_ISREG(mode) or stat.S_ISLNK(mode)  # a link: get() says why it is refused

    def _check_dir(self) -> None:
        """secrets/ must be a real folder: a link could point at a folder where others plant values."""
        try:
            info = os.lstat(self.directory)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(info.st_mode):
            raise SecretsError(
                f"{self.directory} is a symbolic link; omnitron never follows links in its home",
                "replace it with a real folder (mode 0700) holding the secret files",
            )

    def _read(self, path: Path) -> bytes:
        """The file's bytes, never through a symbolic link (O_NOFOLLOW)."""
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            return handle.read()

    def set(self, name: str, value: str) -> None:
        """Store `value` under `name`, replacing any previous value atomically."""
        path = self._path(name)
        if "\x00" in value:
            raise UsageError(f"the value of secret {name} contains a NUL byte", "environment values cannot hold NUL")
        data = value.encode("utf-8")
        if self._fernet is not None:
            payload = FERNET_HEADER + self._fernet.encrypt(data)
        else:
            payload = PLAIN_HEADER + data
        self._ensure_dir()
        write_atomic(path, payload)

    def get(self, name: str) -> str:
        """The value of `name`; SecretsError naming the secret if it is missing or cannot be decrypted."""
        path = self._path(name)
        self._check_dir()
        try:
            raw = self._read(path)
        except FileNotFoundError:
            raise SecretsError(
                f"no secret named {name} in {self.directory}",
                f"set it with `omnitron secrets set {name}`",
            ) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise SecretsError(f"secret {name} is a symbolic link ({path}); omnitron never follows links in "
                                   "its home", f"put the value itself in {path}") from None
            raise SecretsError(f"cannot read secret {name}: {exc.strerror}", f"check {path}") from None
        return self._decode(name, raw)

    def list(self) -> list[SecretInfo]:
        """Every secret's name, modification time and whether it is encrypted, sorted by name."""
        self._check_dir()
        try:
            entries = sorted(os.scandir(self.directory), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        infos = []
        for entry in entries:
            # Temporary files (".NAME.tmp…") and anything else that is not a valid name are not secrets.
            if not NAME_PATTERN.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                with open(entry.path, "rb") as handle:
                    head = handle.read(_HEADER_MAX)
                mtime = datetime.fromtimestamp(entry.stat().st_mtime, tz=UTC)
            except OSError as exc:
                raise SecretsError(f"cannot read secret {entry.name}: {exc.strerror}", f"check {entry.path}") from None
            infos.append(SecretInfo(entry.name, mtime, head.startswith(FERNET_HEADER)))
        return infos

    def remove(self, name: str) -> None:
        path = self._path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise SecretsError(
                f"no secret named {name} in {self.directory}", "see the names with `omnitron secrets list`"
            ) from None
        fsync_folder(self.directory)

    def load_many(self, names: Iterable[str]) -> dict[str, str]:
        """Values for `names`; one SecretsError listing every missing name if any is missing."""
        wanted = list(dict.fromkeys(validate_name(n) for n in names))
        missing = [n for n in wanted if not self.has(n)]
        if missing:
            raise SecretsError(
                f"missing secret{'s' if len(missing) > 1 else ''}: {', '.join(missing)}",
                "set each with `omnitron secrets set NAME`",
            )
        return {name: self.get(name) for name in wanted}

    def _decode(self, name: str, raw: bytes) -> str:
        if raw.startswith(FERNET_HEADER):
            data = self._decrypt(name, raw[len(FERNET_HEADER) :])
        elif raw.startswith(PLAIN_HEADER):
            data = raw[len(PLAIN_HEADER) :]
        else:
            # A file placed here by other means (a mounted Docker or Kubernetes secret) is its own value.
            data = raw
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretsError(
                f"secret {name} is not valid UTF-8", f"re-set it with `omnitron secrets set {name}`"
            ) from None
        if "\x00" in value:
            # A mounted file can hold one; no environment variable can (the spawn would raise ValueError).
            raise SecretsError(
                f"secret {name} contains a NUL byte, which no environment variable can hold",
                f"remove it from {self._path(name)}, or re-set it with `omnitron secrets set {name}`",
            )
        return value

    def _decrypt(self, name: str, token: bytes) -> bytes:
        from cryptography.fernet import InvalidToken

        if self._fernet is None:
            raise SecretsError(
                f"secret {name} is encrypted but {KEY_ENV} is not set",
                f"set {KEY_ENV} to the key it was written with",
            )
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise SecretsError(
                f"cannot decrypt secret {name}: {KEY_ENV} does not match the key it was written with",
                f"set {KEY_ENV} to that key, or re-set the secret with `omnitron secrets set {name}`",
            ) from None

    def _ensure_dir(self) -> None:
        self._check_dir()
        Path(self.home.root).mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.directory, 0o700)
