"""The control API's routing and JSON, against a canned ControlTarget data object; and the socket it binds."""

from __future__ import annotations

import os
import socket
import stat
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import structlog

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 and warns on import when it finds httpx; httpx still does the job here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from omnitron.errors import ConfigError, OmnitronError, UsageError
from omnitron.http.control_api import ReloadReport, StartReport
from omnitron.http.control_app import build_control_app
from omnitron.http.sockets import bind_control_socket, remove_control_socket
from omnitron.runtime.snapshot import DaemonSnapshot, InstanceSnapshot


def instance(name: str, number: int, pid: int | None = 100, state: str = "running") -> InstanceSnapshot:
    return InstanceSnapshot(
        name=name,
        instance=number,
        pid=pid,
        state=state,
        restarts=1,
        uptime_s=12.3456,
        exit_code=None,
        healthy=None,
        cpu_percent=0.44,
        memory_rss=31457280,
        cpu_seconds=1.0,
        autostart=True,
        ready=True,
        reason="",
    )


class CannedDaemon:
    """Implements ControlTarget over a fixed list of instances; records what it was asked to do."""

    def __init__(self) -> None:
        self.instances = [instance("api", 0, 100), instance("api", 1, 101), instance("worker", 0, 200)]
        self.calls: list[tuple[str, ...]] = []
        self.fail_with: BaseException | None = None
        self.shutdown_requested = False

    def snapshot(self) -> DaemonSnapshot:
        return DaemonSnapshot(
            pid=41,
            version="0.1.0",
            home="/tmp/h",
            started_at="2026-11-26T09:00:00Z",
            uptime_s=12.5,
            ready=True,
            config="/app/omnitron.toml",
            shutting_down=False,
            health_port=9800,
            instances=list(self.instances),
        )

    def _check(self, app: str, number: int | None) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        numbers = {i.instance for i in self.instances if i.name == app}
        if not numbers:
            raise UsageError(f"unknown app {app!r}", fix="see `omnitron status`")
        if number is not None and number not in numbers:
            raise UsageError(f"{app} has no instance {number}", fix="see `omnitron status`")

    async def start(self, app: str, instance: int | None) -> StartReport:
        self._check(app, instance)
        self.calls.append(("start", app, str(instance)))
        return StartReport()

    async def stop(self, app: str, instance: int | None) -> None:
        self._check(app, instance)
        self.calls.append(("stop", app, str(instance)))
        self.instances = [
            replace(i, pid=None, state="stopped") if i.name == app and instance in (None, i.instance) else i
            for i in self.instances
        ]

    async def restart(self, app: str, instance: int | None) -> None:
        self._check(app, instance)
        self.calls.append(("restart", app, str(instance)))

    async def signal(self, app: str, instance: int | None, signum: int) -> list[int]:
        self._check(app, instance)
        self.calls.append(("signal", app, str(instance), str(signum)))
        pids = [i.pid for i in self.instances if i.name == app and instance in (None, i.instance) and i.pid]
        if not pids:
            raise OmnitronError(f"no process to signal: {app} is stopped", fix=f"start it with `omnitron start {app}`")
        return pids

    async def scale(self, app: str, count: int) -> None:
        self._check(app, None)
        self.calls.append(("scale", app, str(count)))

    async def wait(self, app: str, instance: int | None, want: str, timeout_s: float) -> None:
        self._check(app, instance)
        self.calls.append(("wait", app, str(instance), want, str(timeout_s)))

    async def reload(self, config_path: str | None) -> ReloadReport:
        if self.fail_with is not None:
            raise self.fail_with
        self.calls.append(("reload", str(config_path)))
        return ReloadReport(config=config_path or "/app/omnitron.toml", added=["web"], unchanged=["api", "worker"])

    def app_names(self) -> list[str]:
        return sorted({i.name for i in self.instances})

    def request_shutdown(self) -> None:
        self.shutdown_requested = True


@pytest.fixture
def daemon() -> CannedDaemon:
    return CannedDaemon()


@pytest.fixture
def client(daemon: CannedDaemon) -> TestClient:
    app = build_control_app(daemon, daemon.snapshot, daemon.request_shutdown)
    return TestClient(app, raise_server_exceptions=False)


def test_ping_answers_pid_and_version(client: TestClient) -> None:
    response = client.get("/v1/ping")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "pid": os.getpid(), "version": "0.1.0"}


def test_status_is_the_section_4_document(client: TestClient, daemon: CannedDaemon) -> None:
    response = client.get("/v1/status")
    assert response.status_code == 200
    assert response.json() == daemon.snapshot().status_json()
    assert set(response.json()) == {"daemon", "apps"}


def test_status_filters_one_app(client: TestClient) -> None:
    apps = client.get("/v1/status", params={"app": "worker"}).json()["apps"]
    assert [(a["name"], a["instance"]) for a in apps] == [("worker", 0)]


def test_status_of_an_unknown_app_is_404_with_exit_2(client: TestClient) -> None:
    response = client.get("/v1/status", params={"app": "nope"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["exit_code"] == 2
    assert "nope" in error["cause"]
    assert error["fix"]


@pytest.mark.parametrize("verb", ["start", "stop", "restart"])
def test_actions_on_every_instance_send_none(client: TestClient, daemon: CannedDaemon, verb: str) -> None:
    response = client.post(f"/v1/apps/api/{verb}", json={"instance": None})
    assert response.status_code == 200
    assert daemon.calls == [(verb, "api", "None")]
    body = response.json()
    assert body["app"] == "api"
    assert [i["instance"] for i in body["instances"]] == [0, 1]


def test_action_on_one_instance_and_the_view_after_it(client: TestClient, daemon: CannedDaemon) -> None:
    response = client.post("/v1/apps/api/stop", json={"instance": 1})
    assert response.status_code == 200
    assert daemon.calls == [("stop", "api", "1")]
    states = {i["instance"]: (i["state"], i["pid"]) for i in response.json()["instances"]}
    assert states == {0: ("running", 100), 1: ("stopped", None)}


def test_action_without_a_body_means_every_instance(client: TestClient, daemon: CannedDaemon) -> None:
    assert client.post("/v1/apps/worker/restart").status_code == 200
    assert daemon.calls == [("restart", "worker", "None")]


@pytest.mark.parametrize("bad", [-1, "1", True, 1.5, [0]])
def test_a_bad_instance_is_400(client: TestClient, daemon: CannedDaemon, bad: object) -> None:
    response = client.post("/v1/apps/api/start", json={"instance": bad})
    assert response.status_code == 400
    assert response.json()["error"]["exit_code"] == 2
    assert daemon.calls == []


def test_a_body_that_is_not_json_is_400(client: TestClient) -> None:
    response = client.post("/v1/apps/api/start", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "not JSON" in response.json()["error"]["cause"]


def test_an_unknown_app_is_404_and_an_unknown_instance_400(client: TestClient) -> None:
    unknown_app = client.post("/v1/apps/nope/stop", json={"instance": None})
    assert unknown_app.status_code == 404
    assert unknown_app.json()["error"]["exit_code"] == 2
    unknown_instance = client.post("/v1/apps/api/stop", json={"instance": 7})
    assert unknown_instance.status_code == 400
    assert "no instance 7" in unknown_instance.json()["error"]["cause"]


def test_an_unknown_action_is_404(client: TestClient, daemon: CannedDaemon) -> None:
    assert client.post("/v1/apps/api/explode", json={}).status_code == 404
    assert daemon.calls == []


def test_signal_goes_to_the_target_and_answers_the_pids(client: TestClient, daemon: CannedDaemon) -> None:
    every = client.post("/v1/apps/api/signal", json={"instance": None, "signal": 10})
    assert every.status_code == 200
    assert every.json() == {"app": "api", "instance": None, "signal": 10, "signal_name": "SIGUSR1", "pids": [100, 101]}
    one = client.post("/v1/apps/api/signal", json={"instance": 1, "signal": 40})
    assert one.json()["pids"] == [101] and one.json()["signal_name"] == "40"
    assert daemon.calls == [("signal", "api", "None", "10"), ("signal", "api", "1", "40")]


@pytest.mark.parametrize("bad", [None, 0, 32, 65, -9, "USR1", True, 10.0])
def test_a_bad_signal_is_400_with_exit_2(client: TestClient, daemon: CannedDaemon, bad: object) -> None:
    response = client.post("/v1/apps/api/signal", json={"instance": None, "signal": bad})
    assert response.status_code == 400
    assert response.json()["error"]["exit_code"] == 2
    assert daemon.calls == []


def test_signal_to_an_unknown_app_is_404_and_to_no_process_409(client: TestClient, daemon: CannedDaemon) -> None:
    assert client.post("/v1/apps/nope/signal", json={"signal": 10}).status_code == 404
    client.post("/v1/apps/worker/stop", json={"instance": None})
    stopped = client.post("/v1/apps/worker/signal", json={"signal": 10})
    assert stopped.status_code == 409
    assert stopped.json()["error"]["exit_code"] == 1


def test_scale_passes_the_count_and_requires_it(client: TestClient, daemon: CannedDaemon) -> None:
    assert client.post("/v1/apps/api/scale", json={"count": 4}).status_code == 200
    assert client.post("/v1/apps/api/scale", json={}).status_code == 400
    assert client.post("/v1/apps/api/scale", json={"count": -2}).status_code == 400
    assert daemon.calls == [("scale", "api", "4")]


def test_reload_returns_the_report(client: TestClient, daemon: CannedDaemon) -> None:
    response = client.post("/v1/reload", json={"config": "/etc/new.toml"})
    assert response.status_code == 200
    assert response.json() == {
        "config": "/etc/new.toml",
        "added": ["web"],
        "removed": [],
        "changed": [],
        "unchanged": ["api", "worker"],
        "scaled": {},
    }
    assert client.post("/v1/reload", json={"config": None}).status_code == 200
    assert client.post("/v1/reload", json={"config": 3}).status_code == 400
    assert daemon.calls == [("reload", "/etc/new.toml"), ("reload", "None")]


def test_an_invalid_config_travels_with_its_problems(client: TestClient, daemon: CannedDaemon) -> None:
    daemon.fail_with = ConfigError("invalid config /x.toml", fix="run `omnitron check`", problems=["apps[0]: bad"])
    response = client.post("/v1/reload", json={"config": "/x.toml"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "cause": "invalid config /x.toml",
        "fix": "run `omnitron check`",
        "exit_code": 2,
        "problems": ["apps[0]: bad"],
        "kind": "ConfigError",
    }


def test_an_operation_that_failed_is_409_with_exit_1(client: TestClient, daemon: CannedDaemon) -> None:
    daemon.fail_with = OmnitronError("api:0 did not stop within 10s", fix="raise kill_timeout")
    response = client.post("/v1/apps/api/stop", json={})
    assert response.status_code == 409
    assert response.json()["error"]["exit_code"] == 1


def test_a_bug_is_500_logged_and_explained(client: TestClient, daemon: CannedDaemon) -> None:
    daemon.fail_with = RuntimeError("boom")
    with structlog.testing.capture_logs() as logs:
        response = client.post("/v1/apps/api/restart", json={})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["exit_code"] == 1
    assert "RuntimeError: boom" in error["cause"]
    assert [entry["event"] for entry in logs] == ["control_request_failed"]


def test_shutdown_is_accepted_and_requested(client: TestClient, daemon: CannedDaemon) -> None:
    response = client.post("/v1/shutdown")
    assert response.status_code == 202
    assert daemon.shutdown_requested


def test_state_changing_routes_refuse_get(client: TestClient, daemon: CannedDaemon) -> None:
    for path in ("/v1/apps/api/stop", "/v1/reload", "/v1/shutdown", "/v1/apps/api/scale"):
        assert client.get(path).status_code == 405
    assert daemon.calls == [] and not daemon.shutdown_requested


def test_socket_is_private_and_not_inherited(tmp_path: Path) -> None:
    path = tmp_path / "omnitron.sock"
    old = os.umask(0)  # even a permissive umask must not widen the socket
    try:
        sock = bind_control_socket(path)
    finally:
        os.umask(old)
    try:
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert not sock.get_inheritable()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
            peer.connect(str(path))
    finally:
        sock.close()
    remove_control_socket(path)
    assert not path.exists()


def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "omnitron.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: what a SIGKILLed daemon leaves
    sock = bind_control_socket(path)
    sock.close()


def test_a_live_socket_is_not_stolen(tmp_path: Path) -> None:
    path = tmp_path / "omnitron.sock"
    live = bind_control_socket(path)
    try:
        with pytest.raises(OmnitronError, match="another process serves"):
            bind_control_socket(path)
        assert path.exists()
    finally:
        live.close()


def test_a_regular_file_is_never_deleted(tmp_path: Path) -> None:
    path = tmp_path / "omnitron.sock"
    path.write_text("precious")
    with pytest.raises(OmnitronError, match="not a socket"):
        bind_control_socket(path)
    remove_control_socket(path)
    assert path.read_text() == "precious"


def test_a_socket_path_too_long_is_explained(tmp_path: Path) -> None:
    with pytest.raises(OmnitronError, match="longer than 107 bytes") as caught:
        bind_control_socket(tmp_path / ("x" * 120) / "omnitron.sock")
    assert "OMNITRON_HOME" in caught.value.fix


def test_wait_passes_the_state_and_the_timeout(client: TestClient, daemon: CannedDaemon) -> None:
    response = client.post("/v1/apps/api/wait", json={"instance": 1, "for": "ready", "timeout": 2.5})
    assert response.status_code == 200, response.text
    assert daemon.calls == [("wait", "api", "1", "ready", "2.5")]
    assert client.post("/v1/apps/api/wait", json={}).status_code == 400, "a state is required"
    assert client.post("/v1/apps/api/wait", json={"for": "running", "timeout": "x"}).status_code == 400
    assert client.post("/v1/apps/nope/wait", json={"for": "running"}).status_code == 404
