"""`listen` in the config (issue 14): one address or a list, `${PORT:-3001}` from the daemon's environment,
every bad address reported with its location; and the socket registry the daemon binds them with."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from omnitron.config.addresses import ListenAddress, parse_address
from omnitron.config.load import load_config
from omnitron.errors import ConfigError, OmnitronError
from omnitron.runtime.launch import listen_env
from omnitron.runtime.listeners import ListenSockets


def write(tmp_path: Path, apps: str) -> Path:
    path = tmp_path / "omnitron.toml"
    path.write_text(apps)
    return path


def test_one_address_becomes_a_list_and_reads_port_from_the_daemon_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[[apps]]\nname = "api"\ncommand = "x"\nlisten = "0.0.0.0:${PORT:-3001}"\n')
    assert load_config(path, environ={}).ecosystem.apps[0].listen == ["0.0.0.0:3001"]
    assert load_config(path, environ={"PORT": "8080"}).ecosystem.apps[0].listen == ["0.0.0.0:8080"]


def test_every_bad_address_is_reported_with_its_location(tmp_path: Path) -> None:
    path = write(tmp_path, '[[apps]]\nname = "api"\ncommand = "x"\n'
                           'listen = ["nohost", "::1:80", "127.0.0.1:70000", "[::1]:3001"]\n'
                           '[[apps]]\nname = "b"\ncommand = "x"\nlisten = "[::1]:3001"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    problems = caught.value.problems
    assert any("apps[0].listen[0]" in p and "HOST:PORT" in p for p in problems), problems
    assert any("apps[0].listen[1]" in p and "brackets" in p for p in problems), problems
    assert any("apps[0].listen[2]" in p and "out of range" in p for p in problems), problems
    assert any("apps[1].listen[0]" in p and "already the socket of apps[0] (api)" in p for p in problems), problems
    assert len(problems) == 4, problems


@pytest.mark.parametrize(("text", "want"), [
    ("0.0.0.0:3001", ListenAddress("0.0.0.0", 3001)),
    ("[::]:80", ListenAddress("::", 80)),
    ("localhost:8000", ListenAddress("localhost", 8000)),
])
def test_addresses_parse_and_print_in_one_form(text: str, want: ListenAddress) -> None:
    assert parse_address(text) == want
    assert str(want) == text


def test_systemd_variables_name_the_app_once_per_socket() -> None:
    assert listen_env("api", 2) == {"LISTEN_FDS": "2", "LISTEN_FDNAMES": "api:api", "LISTEN_FD": "3"}
    assert listen_env("api", 0) == {}


def test_binding_is_all_or_nothing_and_a_reload_keeps_the_socket_of_an_address_that_stays() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = busy.getsockname()[1]
        sockets = ListenSockets()
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                free = probe.getsockname()[1]
            sockets.bind([("a", [f"127.0.0.1:{free}"])])
            [fd] = sockets.fds("a")
            with pytest.raises(OmnitronError, match=f"cannot listen on 127.0.0.1:{busy_port}: Address already in use"):
                sockets.bind([("a", [f"127.0.0.1:{free}"]), ("b", [f"127.0.0.1:{busy_port}"])])
            assert sockets.fds("a") == (fd,) and sockets.fds("b") == (), "a refused bind changes nothing"
            sockets.bind([("a", [f"127.0.0.1:{free}"])])
            assert sockets.fds("a") == (fd,), "the same socket, never closed and bound again"
            sock = socket.socket(fileno=socket.dup(fd))
            try:
                assert sock.getblocking(), "passed blocking, as systemd does"
                assert not sock.get_inheritable()
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
            finally:
                sock.close()
            sockets.retain([])
            assert sockets.fds("a") == ()
            with socket.socket() as again:
                again.bind(("127.0.0.1", free))  # the socket was closed: the port is free again
        finally:
            sockets.close()
