"""`listen` addresses: `HOST:PORT`, `[V6]:PORT`; parsed once the `${VAR}` references are resolved."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class ListenAddress:
    """One `HOST:PORT` (`[V6]:PORT` for IPv6)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host


def parse_address(text: str) -> ListenAddress:
    """`0.0.0.0:3001`, `[::]:3001`, `localhost:3001`; ValueError saying what is expected."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f'expected "HOST:PORT" such as "0.0.0.0:3001" or "[::]:3001", got {text!r}')
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise ValueError(f'an IPv6 address goes in brackets, as in "[::1]:3001"; got {text!r}')
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f'put an IPv6 address in brackets, as in "[{host}]:{port_text}"')
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 1-65535")
    return ListenAddress(host, port)
