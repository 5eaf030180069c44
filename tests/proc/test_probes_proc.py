"""Real http, tcp and exec probes against real sockets and processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from omnitron.config.model import HealthConfig
from omnitron.health.probes import Probe, ProbeResult, make_probe
from tests.helpers import app_script, await_for, launch_spec, python, wait_for

pytestmark = pytest.mark.anyio


class HttpApp:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, fail_file: Path) -> None:
        self.proc = proc
        self.port = port
        self.fail_file = fail_file


@pytest.fixture
def http_app(tmp_path: Path) -> Iterator[HttpApp]:
    port_file = tmp_path / "port"
    fail_file = tmp_path / "fail"
    argv = app_script("http_app.py", "--port", 0, "--port-file", port_file, "--fail-file", fail_file)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        wait_for(port_file.exists, timeout=30, describe=lambda: f"http_app exit code {proc.poll()}")
        yield HttpApp(proc, int(port_file.read_text()), fail_file)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def probe_for(
    *, timeout: float = 10.0, port: int | None = None, env: dict[str, str] | None = None, cwd: str = ".", **kind: object
) -> Probe:
    config = HealthConfig.model_validate({**kind, "timeout": timeout})
    spec = launch_spec(port=port, instance=0, env=env if env is not None else dict(os.environ), cwd=cwd)
    return make_probe(config, spec)


def free_port() -> int:
    """A port nothing listens on (bound then released; nobody else on this host binds it meanwhile)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A listening socket that completes TCP handshakes (kernel backlog) but never reads or answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as sock:
        yield sock.getsockname()[1]


async def test_http_probe_passes_on_200(http_app: HttpApp) -> None:
    result = await probe_for(http="http://127.0.0.1:${PORT}/health", port=http_app.port).check()
    assert result == ProbeResult(True)


async def test_http_probe_passes_on_redirect(http_app: HttpApp) -> None:
    assert (await probe_for(http=f"http://127.0.0.1:{http_app.port}/redirect").check()).ok


async def test_http_probe_fails_on_500_and_recovers(http_app: HttpApp) -> None:
    probe = probe_for(http=f"http://127.0.0.1:{http_app.port}/health")
    http_app.fail_file.touch()
    assert await probe.check() == ProbeResult(False, "HTTP 500")
    http_app.fail_file.unlink()
    assert await probe.check() == ProbeResult(True)


async def test_http_probe_fails_on_404(http_app: HttpApp) -> None:
    assert await probe_for(http=f"http://127.0.0.1:{http_app.port}/nope").check() == ProbeResult(False, "HTTP 404")


async def test_http_probe_refused() -> None:
    result = await probe_for(http=f"http://127.0.0.1:{free_port()}/health").check()
    assert result == ProbeResult(False, "connection refused")


async def test_http_probe_times_out_against_a_server_that_never_answers(silent_server: int) -> None:
    result = await probe_for(http=f"http://127.0.0.1:{silent_server}/health", timeout=0.3).check()
    assert result == ProbeResult(False, "timeout after 0.3s")


async def test_http_probe_reports_a_non_http_answer() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        probe = probe_for(http=f"http://127.0.0.1:{port}/")
        import anyio

        async def answer_garbage() -> None:
            conn, _ = await anyio.to_thread.run_sync(server.accept)
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH\r\n")

        async with anyio.create_task_group() as tg:
            tg.start_soon(answer_garbage)
            result = await probe.check()
    assert result == ProbeResult(False, "not an HTTP response")


async def test_tcp_probe_passes_on_a_listening_port(silent_server: int) -> None:
    assert (await probe_for(tcp=silent_server).check()).ok
    assert (await probe_for(tcp="127.0.0.1:${PORT}", port=silent_server).check()).ok


async def test_tcp_probe_refused() -> None:
    assert await probe_for(tcp=free_port()).check() == ProbeResult(False, "connection refused")


async def test_exec_probe_exit_codes() -> None:
    assert await probe_for(exec=python("raise SystemExit(0)")).check() == ProbeResult(True)
    assert await probe_for(exec=python("raise SystemExit(3)")).check() == ProbeResult(False, "exit code 3")


async def test_exec_probe_gets_env_cwd_and_port(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "ok = os.environ['CHECK'] == 'yes' and os.getcwd() == sys.argv[1] and sys.argv[2] == '4321'\n"
        "raise SystemExit(0 if ok else 1)"
    )
    argv = [*python(code), str(tmp_path), "${PORT}"]
    env = {**os.environ, "CHECK": "yes"}
    assert (await probe_for(exec=argv, env=env, cwd=str(tmp_path), port=4321).check()).ok
    assert not (await probe_for(exec=argv, env={**env, "CHECK": "no"}, cwd=str(tmp_path), port=4321).check()).ok


async def test_exec_probe_with_a_lot_of_output_does_not_block() -> None:
    result = await probe_for(
        exec=python("import sys\nsys.stdout.write('x' * 1_000_000)\nsys.stderr.write('y' * 500_000)")
    ).check()
    assert result == ProbeResult(True)


async def test_exec_probe_missing_program() -> None:
    result = await probe_for(exec=["/nonexistent/omnitron-probe"]).check()
    assert not result.ok and result.error is not None and "not found" in result.error


async def test_exec_probe_signal_death_is_reported() -> None:
    result = await probe_for(exec=python("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")).check()
    assert result == ProbeResult(False, "killed by SIGKILL")


def is_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_exec_probe_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    # sh starts in milliseconds, so the background sleep exists long before the 2 s timeout
    script = f"sleep 60 & echo $! > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}; wait"
    result = await probe_for(exec=["/bin/sh", "-c", script], timeout=2.0).check()
    assert result == ProbeResult(False, "timeout after 2.0s")
    assert pid_file.exists(), "the probe command did not start its background process within the timeout"
    grandchild = int(pid_file.read_text())
    await await_for(lambda: is_gone(grandchild), timeout=10, describe=f"grandchild {grandchild} still alive")


async def test_exec_probe_kills_background_leftovers_after_exit(tmp_path: Path) -> None:
    pid_file = tmp_path / "bg.pid"
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
    )
    assert (await probe_for(exec=python(code)).check()).ok
    leftover = int(pid_file.read_text())
    await await_for(lambda: is_gone(leftover), timeout=10, describe=f"background process {leftover} still alive")


async def test_exec_probe_cancelled_mid_check_kills_the_group(tmp_path: Path) -> None:
    import anyio

    started = tmp_path / "started"
    code = f"import os, time\nopen({str(started)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)"
    probe = probe_for(exec=python(code), timeout=60)
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.check)
        await await_for(started.exists, timeout=10, describe="the probe command never started")
        tg.cancel_scope.cancel()
    pid = int(started.read_text())
    assert is_gone(pid)


def test_http_app_exits_on_sigterm(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        app_script("http_app.py", "--port-file", port_file), stdout=subprocess.DEVNULL, env={**os.environ, "PORT": "0"}
    )
    try:
        wait_for(port_file.exists, timeout=30, describe="http_app did not write its port")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait(timeout=10)


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_https_probe_accepts_a_self_signed_certificate(tmp_path: Path) -> None:
    import ssl

    import anyio

    cert_path, key_path = self_signed_cert(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def answer() -> None:
            conn, _ = server.accept()
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(4096)
                tls.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")

        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, answer)
            result = await probe_for(http=f"https://127.0.0.1:{port}/health").check()
    assert result == ProbeResult(True)


async def test_http_and_tcp_probes_resolve_a_host_name(http_app: HttpApp) -> None:
    """A host name goes through getaddrinfo, then the same connect as an IP literal (each address in turn)."""
    assert await probe_for(http=f"http://localhost:{http_app.port}/health").check() == ProbeResult(True)
    assert await probe_for(tcp=f"localhost:{http_app.port}").check() == ProbeResult(True)
    refused = free_port()
    assert await probe_for(http=f"http://localhost:{refused}/").check() == ProbeResult(False, "connection refused")
    assert await probe_for(tcp=f"localhost:{refused}").check() == ProbeResult(False, "connection refused")


async def test_an_unresolvable_host_name_is_a_connect_failure() -> None:
    result = await probe_for(http="http://no-such-host.invalid/health").check()
    assert not result.ok and result.error is not None and result.error.startswith("connect failed: "), result


async def test_https_probe_reports_a_server_that_hangs_up_during_the_handshake() -> None:
    """The anyio TLS stream this probe used before raised EndOfStream out of check() here."""
    import anyio

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def read_the_hello_and_hang_up() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)  # read first: closing with unread data would send a reset, not an end of stream

        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, read_the_hello_and_hang_up)
            result = await probe_for(http=f"https://127.0.0.1:{port}/health").check()
    assert not result.ok and result.error is not None and result.error.startswith("TLS handshake failed: "), result
