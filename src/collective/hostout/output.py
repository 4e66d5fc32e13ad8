"""Terminal output: host-prefixed whole lines, secrets masked, one lock for all hosts."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console
from rich.markup import escape

from .shell import mask

QUIET, NORMAL, VERBOSE = 0, 1, 2


@dataclass
class Output:
    """Where everything hostout prints goes. One per invocation; thread safe."""

    verbosity: int = NORMAL
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    secrets: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.console = Console(file=self.stream, highlight=False, soft_wrap=True)
        self.err_console = Console(file=self.err, highlight=False, soft_wrap=True)

    def add_secret(self, secret: str | None) -> None:
        if secret:
            self.secrets.add(secret)

    def _emit(self, console: Console, text: str, style: str | None = None) -> None:
        text = mask(text, self.secrets)
        with self._lock:
            console.print(escape(text), style=style)

    def line(self, host: str | None, text: str, *, level: int = NORMAL) -> None:
        """One line of hostout's own narration, e.g. ``[host1] run: pwd``."""
        if self.verbosity >= level:
            self._emit(self.console, f"[{host}] {text}" if host else text, style="cyan")

    def info(self, text: str, *, level: int = NORMAL) -> None:
        if self.verbosity >= level:
            self._emit(self.console, f"Hostout: {text}", style="bold")

    def output(self, host: str, text: str, *, stderr: bool = False) -> None:
        """A line a remote command printed; shown at every verbosity."""
        self._emit(self.console, f"[{host}] {'err' if stderr else 'out'}: {text}")

    def error(self, text: str) -> None:
        self._emit(self.err_console, text, style="bold red")

    def plain(self, lines: Iterable[str]) -> None:
        for text in lines:
            self._emit(self.console, text)

    def host_stream(self, host: str, *, stderr: bool = False, drop: str = "") -> HostStream:
        return HostStream(self, host, stderr, drop)


class HostStream:
    """A file-like sink for a remote command's output: buffers bytes into whole lines."""

    def __init__(self, out: Output, host: str, stderr: bool, drop: str = "") -> None:
        self.out, self.host, self.stderr, self.drop = out, host, stderr, drop
        self._partial = ""
        self.captured: list[str] = []

    def write(self, data: str) -> int:
        text = self._partial + data
        *complete, self._partial = text.split("\n")
        for line in complete:
            self._line(line)
        return len(data)

    def _line(self, line: str) -> None:
        line = line.rstrip("\r")
        if self.drop:
            line = line.replace(self.drop, "").strip() if self.drop in line else line
            if not line:
                return
        self.captured.append(line)
        self.out.output(self.host, line, stderr=self.stderr)

    def flush(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""

    def isatty(self) -> bool:
        return False
