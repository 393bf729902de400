"""Free loopback ports for the testbed's servers and the tests' own."""

from __future__ import annotations

import socket


def free_ports(n: int) -> list[int]:
    """`n` distinct ports free on 127.0.0.1 right now (all bound at once, then released, so
    none is picked twice). Another process can still take one before it is used: callers
    that start a server on it retry on "address already in use" where that matters."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def free_port() -> int:
    return free_ports(1)[0]
