"""Shared listening sockets (`listen`): parsed, bound by the daemon before any app starts, kept open across
restarts and reloads, and handed to every instance of their app (contract section 11).

The daemon never accepts on these sockets; it only holds them, so the kernel queues connections while no
instance accepts (start-up, a surge replacement). They stay blocking, as systemd passes them: O_NONBLOCK is a
flag of the one open file every instance shares, so the daemon must not set it for them.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from typing import Final

from omnitron.config.addresses import ListenAddress, parse_address
from omnitron.errors import OmnitronError, UsageError

# listen(2) backlog: the kernel caps it at net.core.somaxconn (4096 since Linux 5.4). Large, because during a
# replacement new connections wait here until an instance accepts them.
BACKLOG: Final = 4096


def bind_listener(address: ListenAddress, *, v6only: bool) -> socket.socket:
    """A listening TCP socket on `address`: SO_REUSEADDR, a large backlog, blocking, not inheritable.

    An IPv6 socket also takes IPv4 connections (the kernel's default, as systemd leaves it) unless `v6only`.
    Raises OmnitronError naming the address when it cannot be bound.
    """
    try:
        infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise OmnitronError(f"cannot listen on {address}: {error.strerror}",
                            "fix the host in `listen` (an IP address, or a name this host resolves)") from None
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
        sock.bind(sockaddr)
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        raise OmnitronError(f"cannot listen on {address}: {error.strerror}",
                            "free that address, or change `listen` (or the PORT it reads)") from None
    return sock


class ListenSockets:
    """Every app's listening sockets, by address; the daemon's for its whole life (a reload keeps an address
    that stays, binds a new one before anything changes, and closes one no app uses any more)."""

    def __init__(self) -> None:
        self._sockets: dict[ListenAddress, socket.socket] = {}
        self._by_app: dict[str, tuple[ListenAddress, ...]] = {}

    def __repr__(self) -> str:
        return f"<ListenSockets {', '.join(map(str, self._sockets)) or 'none'}>"

    def bind(self, apps: Iterable[tuple[str, list[str]]]) -> None:
        """Bind what these (app, `listen`) pairs need and is not bound yet; all or nothing (OmnitronError)."""
        try:
            wanted = {name: tuple(parse_address(text) for text in listen) for name, listen in apps}
        except ValueError as error:  # `check` reports it first; an AppConfig built in code reaches here
            raise UsageError(f"listen: {error}", "fix `listen`") from None
        v4_ports = {a.port for addresses in wanted.values() for a in addresses if not a.is_ipv6}
        fresh: dict[ListenAddress, socket.socket] = {}
        try:
            for addresses in wanted.values():
                for address in addresses:
                    if address not in self._sockets and address not in fresh:
                        # beside an IPv4 socket on the same port, an IPv6 one takes IPv6 only (else EADDRINUSE)
                        fresh[address] = bind_listener(address, v6only=address.port in v4_ports)
        except BaseException:
            for sock in fresh.values():
                sock.close()
            raise
        self._sockets.update(fresh)
        self._by_app.update(wanted)

    def retain(self, names: Iterable[str]) -> None:
        """Forget apps not in `names` and close every socket no remaining app uses (after a reload)."""
        keep = set(names)
        self._by_app = {name: a for name, a in self._by_app.items() if name in keep}
        used = {a for addresses in self._by_app.values() for a in addresses}
        for address in [a for a in self._sockets if a not in used]:
            self._sockets.pop(address).close()

    def addresses(self, app: str) -> tuple[ListenAddress, ...]:
        return self._by_app.get(app, ())

    def fds(self, app: str) -> tuple[int, ...]:
        """The app's sockets' fds, in `listen` order (the child gets them as 3, 4, …)."""
        return tuple(self._sockets[a].fileno() for a in self.addresses(app))

    def bound_address(self, address: ListenAddress) -> str:
        """What the kernel bound (port 0 never reaches here; a name shows as the address it resolved to)."""
        host, port = self._sockets[address].getsockname()[:2]
        return str(ListenAddress(host, port))

    def queued(self, address: ListenAddress) -> int | None:
        """Connections in the accept queue now: tcp_info's tcpi_unacked on a listening socket (offset 24,
        after 8 one-byte fields and rto, ato, snd_mss, rcv_mss), which is how `ss -l` reads Recv-Q."""
        try:
            info = self._sockets[address].getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32)
        except OSError:
            return None
        return int(struct.unpack_from("I", info, 24)[0]) if len(info) >= 28 else None

    def snapshot(self) -> list[tuple[str, str, int | None]]:
        """(app, bound address, queued) for every socket, in app then `listen` order."""
        return [(app, self.bound_address(a), self.queued(a)) for app, addresses in self._by_app.items()
                for a in addresses if a in self._sockets]

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
        self._by_app.clear()
