"""A seeded fuzz test of the config loader (the hardening issue's "Done when"): a few hundred configs, each a
valid document with random mutations (wrong types, hostile strings, deep nesting, deleted and unknown keys)
or a TOML text with random byte edits. Every one must load, or fail as a ConfigError (exit 2) whose every
problem line names the file and a location: never another exception, never a hang."""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from omnitron.config.load import load_config
from omnitron.errors import ConfigError, ExitCode

SEED = 20261202
CASES = 300
TEXT_CASES = 100

BASE: dict[str, object] = {
    "daemon": {
        "health_host": "127.0.0.1", "health_port": 0, "log_level": "info", "log_format": "json",
        "shutdown_timeout": "30s", "on_fatal": "keep", "memory_check_interval": "5s", "exit_when": "never",
        "logs": {"max_size": "10MB", "keep": 3},
    },
    "apps": [
        {"name": "migrate", "command": ["true"], "restart": "never"},
        {
            "name": "api", "command": "run --port ${PORT}", "cwd": ".", "env": {"A": "${HOME:-x}", "B": "$$y"},
            "instances": 2, "port": 3001, "autostart": True, "restart": "on-failure", "min_uptime": "1s",
            "max_restarts": 3, "backoff": {"initial": "100ms", "max": "30s", "factor": 2.0, "jitter": 0.1},
            "stop_signal": "SIGTERM", "kill_timeout": "10s", "max_memory": "512MB",
            "depends_on": {"migrate": "completed"}, "main": False, "logs": {"max_size": 1000, "keep": 1},
            "health": {"http": "http://127.0.0.1:${PORT}/health", "interval": "5s", "timeout": "2s",
                       "failure_threshold": 3, "start_period": "10s"},
            "liveness": {"tcp": "127.0.0.1:${PORT}", "interval": 1},
        },
        {
            "name": "worker", "command": ["work"], "depends_on": ["api"], "health": {"exec": "probe --fast"},
            "scaling": {"min": 1, "max": 4, "target_cpu": 70, "window": "30s", "cooldown": "60s",
                        "queue": {"exec": ["depth"], "per_instance": 100}},
        },
    ],
    "infra": {"migrate": ["alembic upgrade head"]},
}


def deep(depth: int) -> object:
    value: object = "bottom"
    for _ in range(depth):
        value = [value]
    return value


HOSTILE: list[object] = [
    None, True, False, 0, -1, 1, 65536, 2**70, -(2**70), 1e308, -1e308, 0.5, float("inf"), float("nan"),
    "", " ", "\x00", "a\x00b", "\u00fc..x", "http://\u00fc..x/health", "http://[::1", "http://h:99999/",
    "${", "${1X}", "${X:?}", "${X:?must be set}", "${X:-${Y:-z}}", "$$", "$", "}", "${PORT}", "10", "-5s",
    "1ms", "1e400s", "nan", "inf", "512QB", "SIGKILL", "TERM", "always", "never", "completed", "healthy",
    "\u202e", "\U0001f600", "a" * 5000, "../../etc", "/dev/null", "127.0.0.1:0", "host:port:extra",
    [], [[]], [{}], [None], [""], ["\x00"], [1, 2], {}, {"": 1}, {"x": [1]}, {"migrate": "sometimes"},
    {"nope": "started"}, deep(20), deep(31), deep(33), deep(40),
]


def nodes(document: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path in the document, the root excluded."""
    found: list[tuple[str | int, ...]] = []
    children: list[tuple[str | int, object]] = []
    if isinstance(document, dict):
        children = list(document.items())
    elif isinstance(document, list):
        children = list(enumerate(document))
    for key, child in children:
        found.append((*path, key))
        found.extend(nodes(child, (*path, key)))
    return found


def parent_of(document: object, path: tuple[str | int, ...]) -> object:
    for key in path[:-1]:
        document = document[key]  # type: ignore[index]
    return document


def mutate(document: dict[str, object], rng: random.Random) -> None:
    """One random edit: replace a value, delete a key or item, add an unknown key, or duplicate an app."""
    paths = nodes(document)
    if not paths:
        document["apps"] = rng.choice(HOSTILE)
        return
    path = rng.choice(paths)
    parent = parent_of(document, path)
    action = rng.random()
    if action < 0.6:
        parent[path[-1]] = copy.deepcopy(rng.choice(HOSTILE))  # type: ignore[index]
    elif action < 0.8:
        del parent[path[-1]]  # type: ignore[attr-defined]
    elif action < 0.9 and isinstance(parent, dict):
        parent[rng.choice(["bogus", "Name", "apps", "health", ""])] = rng.choice(HOSTILE)
    else:
        apps = document.get("apps")
        if isinstance(apps, list) and apps:
            apps.append(copy.deepcopy(rng.choice(apps)))


def assert_loads_or_reports(path: Path) -> bool:
    """True when the config is valid; False when it is refused as it must be (asserted)."""
    try:
        load_config(path, environ={"HOME": "/home/u", "Y": "", "OMNITRON_CONFIG_TIMEOUT": "10s"})
    except ConfigError as error:
        assert error.exit_code == ExitCode.USAGE
        assert error.problems, f"{path}: a ConfigError without problem lines: {error.one_line()}"
        for line in error.problems:
            assert line.startswith(f"{path}"), line
            located = line.removeprefix(str(path))
            assert located.startswith(":") and located[1:].strip(), f"no location or message: {line!r}"
            assert "\n" not in line
        return False
    return True


def documents() -> list[tuple[int, dict[str, object]]]:
    rng = random.Random(SEED)
    cases = []
    for index in range(CASES):
        document = copy.deepcopy(BASE)
        for _ in range(rng.randint(1, 4)):
            mutate(document, rng)
        cases.append((index, document))
    return cases


def test_mutated_documents_load_or_fail_with_located_problems(tmp_path: Path) -> None:
    outcomes = {"valid": 0, "invalid": 0}
    for index, document in documents():
        fmt = ("json", "py")[index % 5 == 0]
        path = tmp_path / f"case{index}.{fmt}"
        text = json.dumps(document, allow_nan=True)
        if fmt == "py":
            text = f"import json\necosystem = json.loads({text!r})\n"
        path.write_text(text)
        outcomes["valid" if assert_loads_or_reports(path) else "invalid"] += 1
    assert outcomes["valid"] > 0 and outcomes["invalid"] > 0, outcomes  # the generator reaches both outcomes


def test_edited_toml_text_parses_or_fails_with_located_problems(tmp_path: Path) -> None:
    base = (tmp_path / "base.toml")
    base.write_text('[daemon]\nhealth_port = 0\n\n[[apps]]\nname = "api"\ncommand = ["run", "${PORT}"]\nport = 3000\n'
                    '[apps.health]\nhttp = "http://127.0.0.1:${PORT}/"\n\n[[apps]]\nname = "w"\ncommand = "w"\n'
                    'depends_on = { api = "healthy" }\n')
    text = base.read_bytes()
    rng = random.Random(SEED + 1)
    alphabet = b'[]{}="\',.:\\\n #0123456789abcdefghijklmnopqrstuvwxyz$\x00\xff\xc3'
    for index in range(TEXT_CASES):
        edited = bytearray(text)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(edited))
            if rng.random() < 0.5:
                edited[at:at + 1] = bytes([rng.choice(alphabet)])
            else:
                edited.insert(at, rng.choice(alphabet))
        path = tmp_path / f"edit{index}.toml"
        path.write_bytes(bytes(edited))
        assert_loads_or_reports(path)


@pytest.mark.parametrize("index", [1, 7, 42, 99, 150])
def test_the_cli_maps_fuzzed_configs_to_exit_0_or_2(tmp_path: Path, index: int) -> None:
    # A sample through `omnitron check` itself: the exit code and a one-line cause, never a traceback.
    document = dict(documents())[index]
    path = tmp_path / "case.json"
    path.write_text(json.dumps(document))
    result = subprocess.run([sys.executable, "-m", "omnitron", "check", "-c", str(path)], capture_output=True,
                            text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": "/home/u"})
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
