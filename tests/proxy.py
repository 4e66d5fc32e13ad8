"""A TCP proxy between bin/hostout and a test host's sshd that a test can cut: the fault
tests' way to drop a connection mid-upload or mid-build, as a network does."""

from __future__ import annotations

import contextlib
import socket
import threading


class CuttableProxy:
    """Forwards 127.0.0.1:``port`` to ``target``. ``cut()`` closes every connection through
    it at once (both sides see the connection end); ``cut_after(n)`` does so once ``n`` more
    bytes went from bin/hostout to the host. After a cut the network stays down (new
    connections are dropped at once) until ``restore()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upstream = 0  # bytes from bin/hostout to the host, in all
        self.cuts = 0
        self._budget: int | None = None
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._closed = False
        self.down = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def hoststring(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            if up:
                with self._lock:
                    self.upstream += len(data)
                    if self._budget is not None:
                        self._budget -= len(data)
                        due = self._budget <= 0
                    else:
                        due = False
                if due:
                    self.cut()
                    return
            try:
                dst.sendall(data)
            except OSError:
                return

    def cut_after(self, nbytes: int) -> None:
        with self._lock:
            self._budget = nbytes

    def cut(self) -> None:
        """Drop every connection now, as a failing network or a killed process would."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
            self._budget = None
            self.cuts += 1
            self.down = True
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def restore(self) -> None:
        """The network is back: new connections go through again."""
        self.down = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()
