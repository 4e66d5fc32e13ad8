"""``tunnel = true``: a server that reaches nothing outside downloads through this machine.

For the duration of one command, the SSH connection that runs it asks the server to listen
on ``127.0.0.1:PORT`` (paramiko remote port forwarding, the port chosen by the server) and
to forward what connects there back here, where :class:`.proxy.HttpProxy` serves it. The
command gets the proxy in its environment (``http_proxy``, ``https_proxy`` and their
upper-case forms, ``no_proxy`` for the server itself), inside the shell sudo runs, so sudo's
``env_reset`` cannot drop it. Afterwards the forward is cancelled and every connection made
through it closed: no port is left open on the server, and nothing listens here at all.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator

import paramiko

from ...errors import ConnectError
from .proxy import USER, HttpProxy, this_machines_proxy

LISTEN = "127.0.0.1"  # on the server: only its own processes reach the proxy


def proxy_env(port: int, token: str) -> tuple[tuple[str, str], ...]:
    url = f"http://{USER}:{token}@{LISTEN}:{port}"
    local = "localhost,127.0.0.1,::1"
    return (("http_proxy", url), ("https_proxy", url), ("HTTP_PROXY", url),
            ("HTTPS_PROXY", url), ("no_proxy", local), ("NO_PROXY", local))


class Tunnel:
    """One forward of the server's port to a proxy here, while a command runs."""

    def __init__(self, transport: paramiko.Transport, log: Callable[[str], None]) -> None:
        self.transport = transport
        self.token = secrets.token_urlsafe(18)
        self.proxy = HttpProxy(self.token, log=log, upstream=this_machines_proxy)
        self.port: int | None = None
        self._open: set[paramiko.Channel] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def open(self) -> int:
        try:
            self.port = self.transport.request_port_forward(LISTEN, 0, handler=self._accept)
        except paramiko.SSHException as err:
            raise ConnectError(
                f"tunnel = true, but the server refused to forward a port back ({err}): "
                "allow it in its sshd_config (AllowTcpForwarding yes or remote)",
                cause=err) from None
        return self.port

    def _accept(self, channel: paramiko.Channel, origin: tuple[str, int],
                server: tuple[str, int]) -> None:
        # called in paramiko's transport thread: serve elsewhere
        with self._lock:
            self._open.add(channel)
        thread = threading.Thread(target=self._serve, args=(channel,), daemon=True,
                                  name="hostout-tunnel")
        self._threads.append(thread)
        thread.start()

    def _serve(self, channel: paramiko.Channel) -> None:
        try:
            self.proxy.serve(channel)
        finally:
            with self._lock:
                self._open.discard(channel)

    def close(self) -> None:
        if self.port is not None:
            with contextlib.suppress(Exception):
                self.transport.cancel_port_forward(LISTEN, self.port)
            self.port = None
        with self._lock:
            left = list(self._open)
        for channel in left:
            with contextlib.suppress(Exception):
                channel.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def summary(self) -> str:
        """``12 requests: mirror.example (10), index.example (2)``."""
        hosts = Counter(_host_of(r) for r in self.proxy.requests)
        listed = ", ".join(f"{h} ({n})" for h, n in hosts.most_common())
        return f"{len(self.proxy.requests)} requests: {listed}" if hosts else "no requests"


def _host_of(request: str) -> str:
    method, _, target = request.partition(" ")
    if method == "CONNECT":
        return target.rsplit(":", 1)[0]
    return target.split("/")[2].split(":")[0] if "://" in target else target


@contextlib.contextmanager
def opened(transport: paramiko.Transport, log: Callable[[str], None]) -> Iterator[Tunnel]:
    tunnel = Tunnel(transport, log)
    tunnel.open()
    try:
        yield tunnel
    finally:
        tunnel.close()
