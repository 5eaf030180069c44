"""Loading configs: lookup order, the three formats, syntax errors, and every validation problem with its location."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from omnitron.config.load import dependency_order, find_config_path, load_config
from omnitron.errors import ConfigError, ExitCode

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def write(directory: Path, text: str, name: str = "omnitron.toml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    """The problem lines of an invalid config, with the file prefix checked and removed."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ or {})
    error = caught.value
    assert error.exit_code == ExitCode.USAGE
    assert error.cause.startswith(f"{path}: {len(error.problems)} problem")
    for line in error.problems:
        assert line.startswith(str(path))
        assert "\n" not in line
    return [line.split(": ", 1)[1] for line in error.problems]


# --- finding the file -----------------------------------------------------------------------------------


def test_explicit_path_wins_over_environment(tmp_path: Path) -> None:
    given = write(tmp_path, "", "given.toml")
    other = write(tmp_path, "", "other.toml")
    assert find_config_path(given, {"OMNITRON_CONFIG": str(other)}) == given


def test_omnitron_config_wins_over_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "")
    other = write(tmp_path, "", "other.json")
    assert find_config_path(None, {"OMNITRON_CONFIG": str(other)}) == other


def test_working_directory_then_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    nested = write(tmp_path / "config", "")
    assert find_config_path(None, {}) == nested
    top = write(tmp_path, "")
    assert find_config_path(None, {}) == top


def test_relative_path_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "", "rel.toml")
    found = find_config_path("rel.toml", {})
    assert found.is_absolute() and found == tmp_path / "rel.toml"


def test_no_config_anywhere_names_every_place_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        find_config_path(None, {})
    message = caught.value.one_line()
    assert "OMNITRON_CONFIG" in message
    assert str(tmp_path / "omnitron.toml") in message
    assert str(tmp_path / "config" / "omnitron.toml") in message
    assert caught.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize("origin", ["-c", "OMNITRON_CONFIG"])
def test_named_file_missing_is_an_error_without_fallback(tmp_path: Path, origin: str) -> None:
    write(tmp_path, "")  # present in the folder, but not what was asked for
    missing = tmp_path / "missing.toml"
    explicit, environ = (missing, {}) if origin == "-c" else (None, {"OMNITRON_CONFIG": str(missing)})
    with pytest.raises(ConfigError, match="does not exist"):
        find_config_path(explicit, environ)


def test_directory_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        find_config_path(tmp_path, {})


# --- formats ----------------------------------------------------------------------------------------------


def test_three_formats_load_to_the_same_model() -> None:
    loaded = [load_config(CONFIGS / f"issue_2_full.{ext}", environ={}) for ext in ("toml", "json", "py")]
    assert loaded[0].ecosystem == loaded[1].ecosystem == loaded[2].ecosystem
    ecosystem = loaded[0].ecosystem
    assert [a.name for a in ecosystem.apps] == ["migrate", "api", "worker"]
    api = ecosystem.apps[1]
    assert api.argv()[1] == str(CONFIGS.parent / "apps" / "ready.py")
    assert (api.min_uptime, api.backoff.initial, api.max_memory) == (5.0, 0.1, 512_000_000)
    assert api.liveness is not None and (api.liveness.tcp, api.liveness.start_period) == ("${PORT}", 30.0)
    assert ecosystem.daemon.logs.max_size == 1024 * 1024
    assert ecosystem.infra.migrate == [["python", "-c", "print(2)"]]


def test_empty_toml_is_a_valid_empty_ecosystem(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, ""), environ={})
    assert loaded.ecosystem.apps == []
    assert loaded.ecosystem.daemon.health_port == 9800


def test_python_config_gets_define_ecosystem_without_import(tmp_path: Path) -> None:
    text = "apps = [{'name': f'w{i}', 'command': 'true'} for i in range(3)]\necosystem = define_ecosystem(apps=apps)\n"
    loaded = load_config(write(tmp_path, text, "eco.py"), environ={})
    assert [a.name for a in loaded.ecosystem.apps] == ["w0", "w1", "w2"]


def test_unknown_extension_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "apps: []", "omnitron.yaml"), environ={})
    assert "unknown config format '.yaml' (name the file *.toml, *.json or *.py)" in caught.value.one_line()


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.toml", 'apps = 1\n[daemon\nlog_level = "x"\n', ":2:8: invalid TOML:"),
        ("bad.json", '{\n  "apps": [,]\n}', ":2:12: invalid JSON: Expecting value"),
        ("dup.json", '{"daemon": {}, "daemon": {}}', ": invalid JSON: duplicate key 'daemon'"),
        ("list.json", "[1, 2]", ": the top level must be a table of sections, got list"),
        ("bad.py", "ecosystem = define_ecosystem(\n", ":1:29: invalid Python: '(' was never closed"),
        ("raise.py", "x = 1\nraise RuntimeError('no database\\nsecond line')\n", ":2: RuntimeError: no database"),
        ("exit.py", "import sys\nsys.exit(3)\n", ":2: SystemExit: 3"),
        ("none.py", "apps = []\n", ": no `ecosystem` variable"),
        (
            "kwarg.py",
            "ecosystem = define_ecosystem(service={})\n",
            ":1: TypeError: define_ecosystem() got an unexpected",
        ),
        ("binary.toml", "\udcff", ": not UTF-8 text"),
    ],
)
def test_unreadable_files_give_one_line_with_position(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.cause == f"{path}: 1 problem"
    assert len(caught.value.problems) == 1
    line = caught.value.problems[0]
    assert line.startswith(f"{path}{expected}"), line
    assert "Traceback" not in line and "second line" not in line


# --- validation problems ----------------------------------------------------------------------------------

APP = '[[apps]]\nname = "api"\ncommand = "run"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("services = 1\n", "services: unknown key"),
        (APP + "colour = 'red'\n", "apps[0].colour: unknown key"),
        ('[[apps]]\ncommand = "run"\n', "apps[0].name: missing"),
        ('[[apps]]\nname = "Api"\ncommand = "run"\n', "apps[0].name: must match [a-z0-9][a-z0-9_-]*"),
        (APP + "restart = 'sometimes'\n", "apps[0].restart: expected always|on-failure|never, got 'sometimes'"),
        (APP + "kill_timeout = '10 seconds'\n", "apps[0].kill_timeout: expected a duration such as 5"),
        (APP + "min_uptime = -1\n", "apps[0].min_uptime: a duration cannot be negative"),
        (APP + "max_memory = '1ZB'\n", "apps[0].max_memory: expected a size such as"),
        (APP + "instances = -1\n", "apps[0].instances: input should be greater than or equal to 0"),
        (APP + "port = 70000\n", "apps[0].port: input should be less than or equal to 65535"),
        (APP + "stop_signal = 'SIGKILL'\n", "apps[0].stop_signal: unknown or uncatchable signal 'SIGKILL'"),
        (APP + "backoff = { factor = 0.5 }\n", "apps[0].backoff.factor: input should be greater than or equal to 1"),
        ('[[apps]]\nname = "api"\ncommand = "  "\n', "apps[0].command: the command is empty"),
        (
            '[[apps]]\nname = "api"\ncommand = ["run", ""]\n',
            "apps[0].command[1]: string should have at least 1 character",
        ),
        (APP + "bootstrap = 'x.py'\n", "apps[0]: set exactly one of command or bootstrap"),
        ('[[apps]]\nname = "api"\n', "apps[0]: set exactly one of command or bootstrap"),
        (APP + "[apps.health]\ninterval = '5q'\nhttp = 'x'\n", "apps[0].health.interval: expected a duration"),
        (APP + "[apps.health]\ninterval = '5s'\n", "apps[0].health: set exactly one of http, tcp or exec"),
        (APP + "[apps.health]\ntcp = [1]\n", "apps[0].health.tcp: expected a port number such as 8000"),
        (APP + "[apps.health]\ntcp = 0\n", "apps[0].health.tcp: a port must be between 1 and 65535"),
        (APP + "[apps.liveness]\ninterval = '5s'\n", "apps[0].liveness: set exactly one of http, tcp or exec"),
        (APP + "[apps.liveness]\ntcp = 1\nrestart = true\n", "apps[0].liveness.restart: unknown key"),
        (APP + "depends_on = { db = 'ready' }\n", "apps[0].depends_on.db: expected started|completed|healthy"),
        (APP + "env = { A = 1 }\n", "apps[0].env.A: input should be a valid string"),
        ("[daemon]\nlog_level = 'loud'\n", "daemon.log_level: expected debug|info|warning|error, got 'loud'"),
        ("[daemon]\nhealth_port = 'abc'\n", "daemon.health_port: input should be a valid integer"),
        ("[daemon]\nverbose = true\n", "daemon.verbose: unknown key"),
        ("[daemon.logs]\nmax_size = 0\n", "daemon.logs.max_size: input should be greater than 0"),
        ("daemon = 5\n", "daemon: input should be a valid dictionary"),
        ("apps = 5\n", "apps: expected an array of app tables, got int"),
        ("[infra]\nmigrate = ['ok', '']\n", "infra.migrate[1]: the command is empty"),
        ("[infra]\nseed = []\n", "infra.seed: unknown key"),
    ],
)
def test_each_problem_is_one_line_with_its_location(tmp_path: Path, text: str, expected: str) -> None:
    problems = problems_of(write(tmp_path, text))
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = (
        "[daemon]\nlog_level = 'loud'\n"
        '[[apps]]\nname = "a"\ncommand = "run"\nrestart = "x"\nkill_timeout = "y"\n'
        '[[apps]]\nname = "b"\ncommand = "run"\ndepends_on = ["nope"]\n'
        "[infra]\nmigrate = ['']\n"
    )
    problems = problems_of(write(tmp_path, text))
    assert [p.split(":")[0] for p in problems] == [
        "daemon.log_level",
        "apps[0].restart",
        "apps[0].kill_timeout",
        "apps[1].depends_on.nope",
        "infra.migrate[0]",
    ]


def test_env_values_never_appear_in_problems(tmp_path: Path) -> None:
    text = APP + 'env = { TOKEN = "s3cret-${", OTHER = 12345, BAD = ["s3cret"] }\n'
    problems = problems_of(write(tmp_path, text))
    assert len(problems) == 2
    assert not any("s3cret" in p or "12345" in p for p in problems), problems


# --- checks across fields and apps --------------------------------------------------------------------------


def apps_toml(*apps: str) -> str:
    return "".join(f"[[apps]]\n{body}\n" for body in apps)


@pytest.mark.parametrize(
    ("apps", "expected"),
    [
        (
            ['name = "api"\ncommand = "a"', 'name = "api"\ncommand = "b"'],
            'apps[1].name: duplicate app name "api" (also apps[0])',
        ),
        (['name = "api"\ncommand = "a"\ndepends_on = ["db"]'], 'apps[0].depends_on.db: unknown app "db"'),
        (
            ['name = "api"\ncommand = "a"\ndepends_on = ["api"]'],
            "apps[0].depends_on.api: an app cannot depend on itself",
        ),
        (
            ['name = "api"\ncommand = "a"\ndepends_on = ["db"]', 'name = "db"\ncommand = "b"\ndepends_on = ["api"]'],
            "apps[0].depends_on: dependency cycle api -> db -> api",
        ),
        (
            [
                'name = "c"\ncommand = "a"\ndepends_on = ["a"]',
                'name = "a"\ncommand = "a"\ndepends_on = ["b"]',
                'name = "b"\ncommand = "a"\ndepends_on = ["c"]',
            ],
            "apps[0].depends_on: dependency cycle c -> a -> b -> c",
        ),
        (
            ['name = "api"\ncommand = "a"\nsecrets = ["OK", "NOT-OK"]'],
            'apps[0].secrets[1]: "NOT-OK" is not a valid environment',
        ),
        (
            ['name = "api"\ncommand = "a"\nenv = { "1X" = "v" }'],
            'apps[0].env: "1X" is not a valid environment variable name',
        ),
        (
            ['name = "db"\ncommand = "a"', 'name = "api"\ncommand = "a"\ndepends_on = { db = "healthy" }'],
            'apps[1].depends_on.db: "healthy" needs a probe: add apps[0].health',
        ),
        (
            ['name = "m"\ncommand = "a"', 'name = "api"\ncommand = "a"\ndepends_on = { m = "completed" }'],
            'apps[1].depends_on.m: "m" never completes with restart = "always"',
        ),
        (
            ['name = "api"\ncommand = "a"\nport = 65535\ninstances = 2'],
            "apps[0].port: port + instances - 1 exceeds 65535",
        ),
    ],
)
def test_cross_field_problems(tmp_path: Path, apps: list[str], expected: str) -> None:
    problems = problems_of(write(tmp_path, apps_toml(*apps)))
    assert any(p.startswith(expected) for p in problems), problems


def test_dependency_on_an_invalid_app_is_not_called_unknown(tmp_path: Path) -> None:
    text = apps_toml('name = "db"\ncommand = "a"\nrestart = "x"', 'name = "api"\ncommand = "a"\ndepends_on = ["db"]')
    assert [p.split(":")[0] for p in problems_of(write(tmp_path, text))] == ["apps[0].restart"]


def test_dependency_order_layers_independent_apps_together(tmp_path: Path) -> None:
    text = apps_toml(
        'name = "web"\ncommand = "a"\ndepends_on = ["api", "cache"]',
        'name = "api"\ncommand = "a"\ndepends_on = { db = "started", migrate = "completed" }',
        'name = "migrate"\ncommand = "a"\nrestart = "never"\ndepends_on = ["db"]',
        'name = "db"\ncommand = "a"',
        'name = "cache"\ncommand = "a"',
    )
    ecosystem = load_config(write(tmp_path, text), environ={}).ecosystem
    assert dependency_order(ecosystem) == [["db", "cache"], ["migrate"], ["api"], ["web"]]


# --- paths and interpolation --------------------------------------------------------------------------------


def test_paths_resolve_against_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "deploy"
    (folder / "srv").mkdir(parents=True)
    (folder / "main.py").write_text("")
    (folder / ".env").write_text("A=1\n")
    monkeypatch.chdir(tmp_path)  # relative to the config file, not to the working directory
    text = apps_toml(
        'name = "a"\nbootstrap = "main.py"\ncwd = "srv"\nenv_file = ".env"',
        'name = "b"\ncommand = "x"',
        f'name = "c"\ncommand = "x"\ncwd = "{tmp_path}"',
    )
    a, b, c = load_config(write(folder, text).relative_to(tmp_path), environ={}).ecosystem.apps
    assert (a.bootstrap, a.cwd, a.env_file) == (str(folder / "main.py"), str(folder / "srv"), str(folder / ".env"))
    assert a.argv()[1] == str(folder / "main.py")
    assert b.cwd == str(folder)
    assert c.cwd == str(tmp_path)


def test_missing_paths_are_problems(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    text = apps_toml('name = "a"\nbootstrap = "nope.py"\ncwd = "file"\nenv_file = "missing.env"')
    problems = problems_of(write(tmp_path, text))
    assert [p.split(":")[0] for p in problems] == ["apps[0].cwd", "apps[0].bootstrap", "apps[0].env_file"]
    assert str(tmp_path / "nope.py") in problems[1]


def test_interpolation_at_load_time(tmp_path: Path) -> None:
    (tmp_path / "data-eu").mkdir()
    environ = {"DB": "pg://db", "REGION": "eu", "HOST": "10.0.0.9", "PORT": "1", "OMNITRON_INSTANCE": "9"}
    text = (
        apps_toml(
            'name = "a"\ncommand = ["serve", "--db=${DB}", "--port", "${PORT}", "--id=${OMNITRON_INSTANCE}", "$$x"]\n'
            'cwd = "data-${REGION}"\n'
            'env = { URL = "${DB}/app", MODE = "${MODE:-prod}", LIT = "$${DB}", P = "${PORT}" }\n'
            'health = { http = "http://${HOST}:${PORT}/h" }',
            'name = "b"\ncommand = "x"\nhealth = { tcp = "${HOST}:${PORT}" }\n'
            'liveness = { http = "http://${HOST}:${PORT}/live" }',
            'name = "c"\ncommand = "x"\nhealth = { exec = ["check", "${HOST}", "${PORT}"] }\n'
            'liveness = { exec = ["alive", "${HOST}", "${PORT}"] }',
        )
        + '[infra]\nmigrate = ["migrate --db ${DB}"]\n'
    )
    ecosystem = load_config(write(tmp_path, text), environ=environ).ecosystem
    a, b, c = ecosystem.apps
    assert a.command == ["serve", "--db=pg://db", "--port", "${PORT}", "--id=${OMNITRON_INSTANCE}", "$$x"]
    assert a.cwd == str(tmp_path / "data-eu")
    assert a.env == {"URL": "pg://db/app", "MODE": "prod", "LIT": "${DB}", "P": "1"}
    assert a.health is not None and a.health.http == "http://10.0.0.9:${PORT}/h"
    assert b.health is not None and b.health.tcp == "10.0.0.9:${PORT}"
    assert c.health is not None and c.health.exec == ["check", "10.0.0.9", "${PORT}"]
    assert b.liveness is not None and b.liveness.http == "http://10.0.0.9:${PORT}/live"
    assert c.liveness is not None and c.liveness.exec == ["alive", "10.0.0.9", "${PORT}"]
    assert a.liveness is None
    assert ecosystem.infra.migrate == [["migrate", "--db", "pg://db"]]


def test_environment_defaults_to_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNITRON_TEST_GREETING", "hi")
    loaded = load_config(CONFIGS / "issue_2_full.json")
    assert loaded.ecosystem.apps[1].env["GREETING"] == "hi"


def test_bad_interpolation_is_located(tmp_path: Path) -> None:
    text = apps_toml('name = "a"\ncommand = ["x", "${1}"]') + '[infra]\nmigrate = ["m ${oops"]\n'
    problems = problems_of(write(tmp_path, text))
    assert [p.split(":")[0] for p in problems] == ["apps[0].command[1]", "infra.migrate[0][1]"]


def test_a_required_variable_that_is_unset_is_a_located_problem(tmp_path: Path) -> None:
    """Regression test for #20 item 4: `${VAR:?message}` makes a missing variable an error, as shells do."""
    text = apps_toml('name = "a"\ncommand = "x"\nenv = { DB = "${DATABASE_URL:?add the Postgres add-on}" }')
    assert problems_of(write(tmp_path, text)) == [
        "apps[0].env.DB: ${DATABASE_URL} is not set: add the Postgres add-on (set DATABASE_URL in the daemon's "
        "environment)"]
    app = load_config(write(tmp_path, text), environ={"DATABASE_URL": "pg://db"}).ecosystem.apps[0]
    assert app.env == {"DB": "pg://db"}


def test_returned_path_is_absolute_and_loaded_model_is_frozen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, json.dumps({"apps": [{"name": "a", "command": "x"}]}), "omnitron.json")
    loaded = load_config("omnitron.json", environ={})
    assert loaded.path == tmp_path / "omnitron.json" and os.path.isabs(loaded.path)
    with pytest.raises(ValueError, match="frozen"):
        loaded.ecosystem.apps[0].name = "b"


def test_contract_example_is_valid() -> None:
    ecosystem = load_config(CONFIGS / "contract_example.toml", environ={"DATABASE_URL": "pg://x"}).ecosystem
    api = ecosystem.app("api")
    assert api is not None
    assert api.env == {"LOG_LEVEL": "info", "DB": "pg://x"}
    assert api.depends_on == {"migrate": "completed", "cache": "healthy"}
    assert api.health is not None and api.health.http == "http://127.0.0.1:${PORT}/health"
    assert api.liveness is not None and api.liveness.http == "http://127.0.0.1:${PORT}/live"
    assert dependency_order(ecosystem) == [["migrate", "cache"], ["api"]]


def test_only_one_app_may_be_main(tmp_path: Path) -> None:
    path = tmp_path / "omnitron.toml"
    path.write_text('[[apps]]\nname = "a"\ncommand = "run"\nmain = true\n\n'
                    '[[apps]]\nname = "b"\ncommand = "run"\nmain = true\n')
    assert problems_of(path) == ["apps[1].main: only one app may be main (also apps[0], a)"]


def test_a_nul_byte_in_a_command_env_value_or_exec_probe_is_refused_with_its_location(tmp_path: Path) -> None:
    # Regression test for the hardening issue, item 1: `check` accepted these, and the spawn raised ValueError
    path = tmp_path / "omnitron.toml"
    path.write_text('[[apps]]\nname = "api"\ncommand = ["sleep", "1\\u0000"]\nenv = { A = "x\\u0000y" }\n'
                    '[apps.health]\nexec = ["true\\u0000"]\n')
    problems = problems_of(path)
    assert problems == [
        "apps[0].command[1]: contains a NUL byte, which no program can receive; remove it",
        "apps[0].env.A: contains a NUL byte, which no program can receive; remove it",
        "apps[0].health.exec[0]: contains a NUL byte, which no program can receive; remove it",
    ]
    assert "x\u0000y" not in " ".join(problems), "env values are never printed"


@pytest.mark.parametrize(
    ("probe", "loc"),
    [
        ('http = "http://\\u00fc..x/health"', "apps[0].health.http"),
        ('tcp = "\\u00fc..x:80"', "apps[0].health.tcp"),
        ('http = "http://a\\u2044b:8000/"', "apps[0].health.http"),
        ('tcp = "a\\u0000b:80"', "apps[0].health.tcp"),
    ],
)
def test_a_probe_host_that_cannot_be_resolved_is_refused_with_its_location(tmp_path: Path, probe: str,
                                                                          loc: str) -> None:
    # Regression test for the hardening issue, item 1: `check` accepted an IDNA-invalid host, and the probe's
    # resolver raised UnicodeError (not OSError) inside the daemon.
    path = write(tmp_path, f'[[apps]]\nname = "api"\ncommand = "run"\n[apps.health]\n{probe}\n')
    (problem,) = problems_of(path)
    assert problem.startswith(f"{loc}: the host ")
    assert "fix the host name" in problem or "remove it" in problem


def test_a_valid_international_or_per_instance_probe_host_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, '[[apps]]\nname = "api"\ncommand = "run"\n[apps.health]\nhttp = "http://b\\u00fccher.example/"\n'
                 '[apps.liveness]\ntcp = "h${OMNITRON_INSTANCE}.local:${PORT}"\n')
    app = load_config(path, environ={}).ecosystem.apps[0]
    assert app.health is not None and app.health.http == "http://b\u00fccher.example/"


def test_dependency_order_of_a_1500_app_chain(tmp_path: Path) -> None:
    # Regression test for the hardening issue, item 14: each app depends on the next, so a0 starts last.
    text = "\n".join(f'[[apps]]\nname = "a{i}"\ncommand = "run"\n'
                     + (f'depends_on = ["a{i + 1}"]\n' if i < 1499 else "") for i in range(1500))
    ecosystem = load_config(write(tmp_path, text), environ={}).ecosystem
    assert dependency_order(ecosystem) == [[f"a{i}"] for i in reversed(range(1500))]
