"""Terminal output: host-prefixed whole lines, secrets masked, one lock for all hosts.

Three forms, chosen once per invocation:

* plain lines (piped, or ``--serial`` on a terminal without a live view): every line a
  remote command prints comes out whole, prefixed ``[host] out:`` (or ``err:``);
* on a terminal with several hosts, the same lines scroll above a live view of the hosts
  and their current command (:mod:`.live`);
* ``--json``: one JSON object per line on stdout for every event (a command's start, each
  line of its output, its end) and nothing else there; narration goes to stderr.

Secrets (passwords) are masked in all of them, before any text is formatted.
"""

from __future__ import annotations

import getpass
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from json import dumps
from typing import TYPE_CHECKING, Any, TextIO

from ..shell import mask
from ..status import Status

if TYPE_CHECKING:
    from rich.console import Console

QUIET, NORMAL, VERBOSE = 0, 1, 2

#: The ``event`` field of a ``--json`` record.
START, OUTPUT, REPORT, END = "start", "output", "report", "end"


@dataclass
class Output:
    """Where everything hostout prints goes. One per invocation; thread safe."""

    verbosity: int = NORMAL
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    secrets: set[str] = field(default_factory=set)
    json: bool = False
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        self._commands: dict[str, str] = {}  # host -> the plan command it is running
        self._view: Any = None  # a live.LiveView while one is shown

    # -- secrets ---------------------------------------------------------------------------
    def add_secret(self, secret: str | None) -> None:
        if secret:
            with self._lock:
                self.secrets.add(str(secret))

    def mask(self, text: str) -> str:
        with self._lock:  # hosts add their passwords while others print
            return mask(text, self.secrets)

    # -- lines -----------------------------------------------------------------------------
    @cached_property
    def is_terminal(self) -> bool:
        return _isatty(self.stream)

    @cached_property
    def err_is_terminal(self) -> bool:
        return _isatty(self.err)

    @cached_property
    def console(self) -> Console:
        """Rich, for a terminal only: piped output is plain text (and rich stays unimported,
        which saves a tenth of the start-up time)."""
        from rich.console import Console

        return Console(file=self.stream, highlight=False, soft_wrap=True)

    @cached_property
    def err_console(self) -> Console:
        from rich.console import Console

        return Console(file=self.err, highlight=False, soft_wrap=True)

    def _emit(self, to_err: bool, text: str, style: str | None = None) -> None:
        with self._lock:
            text = mask(text, self.secrets)
            if self.err_is_terminal if to_err else self.is_terminal:
                from rich.markup import escape

                (self.err_console if to_err else self.console).print(escape(text), style=style)
            else:
                stream = self.err if to_err else self.stream
                stream.write(text + "\n")
                stream.flush()

    def line(self, host: str | None, text: str, *, level: int = NORMAL) -> None:
        """One line of hostout's own narration, e.g. ``[host1] run: pwd``."""
        if self.verbosity >= level:
            self._emit(self.json, f"[{host}] {text}" if host else text, style="cyan")

    def info(self, text: str, *, level: int = NORMAL, host: str | None = None) -> None:
        if self.verbosity >= level:
            prefix = f"[{host}] " if host else ""
            self._emit(self.json, f"{prefix}Hostout: {text}", style="bold")

    def report(self, host: str, command: str, text: str) -> None:
        """What a step did, for people: ``[host1] uploadeggs: 1 of 12 dists changed``."""
        if self.json:
            self.event(host, command or None, REPORT, report=text)
        elif self.verbosity >= NORMAL:
            self._emit(False, f"[{host}] {command}: {text}" if command else f"[{host}] {text}",
                       style="green")

    def output(self, host: str, text: str, *, stderr: bool = False) -> None:
        """A line a remote command printed; shown at every verbosity."""
        if self.json:
            self.event(host, self.current_command(host), OUTPUT, output=text,
                       stream="stderr" if stderr else "stdout")
            return
        self._emit(False, f"[{host}] {'err' if stderr else 'out'}: {text}")

    def error(self, text: str) -> None:
        self._emit(True, text, style="bold red")

    def plain(self, lines: Iterable[str]) -> None:
        for text in lines:
            self._emit(False, text)

    def show(self, renderable: Any) -> None:
        """A rich renderable (e.g. the summary table) on stdout; its text is not masked."""
        with self._lock:
            self.console.print(renderable)

    def host_stream(self, host: str, *, stderr: bool = False, drop: str = "") -> HostStream:
        return HostStream(self, host, stderr, drop)

    def ask_secret(self, prompt: str) -> str:
        """Ask for a password on the terminal, with any live view paused meanwhile."""
        view = self._view
        with view.paused() if view is not None else nullcontext():
            answer = getpass.getpass(prompt)
        self.add_secret(answer)
        return answer

    # -- events ----------------------------------------------------------------------------
    def event(self, host: str, command: str | None, event: str, **fields: Any) -> None:
        """One ``--json`` record: host, command, event, time and ``fields`` (all masked)."""
        if not self.json:
            return
        record: dict[str, Any] = {"host": host, "command": command, "event": event,
                                  "time": time.time(), **fields}
        with self._lock:
            text = dumps({k: mask(v, self.secrets) if isinstance(v, str) else v
                               for k, v in record.items()})
            self.stream.write(text + "\n")
            self.stream.flush()

    def current_command(self, host: str) -> str | None:
        with self._lock:
            return self._commands.get(host)

    def command_started(self, host: str, command: str) -> None:
        with self._lock:
            self._commands[host] = command
        self.event(host, command, START)
        if self._view is not None:
            self._view.started(host, command)

    def command_ended(self, host: str, command: str, *, error: str | None = None,
                      seconds: float = 0.0) -> None:
        status = Status.FAILED if error is not None else Status.OK
        fields: dict[str, Any] = {"status": status.value,
                                  "seconds": round(seconds, 3)}
        if error is not None:
            fields["error"] = error
        self.event(host, command, END, **fields)
        with self._lock:
            self._commands.pop(host, None)

    def host_finished(self, host: str, status: Status, error: str = "") -> None:
        if self._view is not None:
            self._view.finished(host, status, error)

    @contextmanager
    def progress(self, hosts: Sequence[str]) -> Iterator[None]:
        """A live view of ``hosts`` while the block runs: on a terminal, for 2+ hosts."""
        if self.json or not self.is_terminal or len(hosts) < 2:
            yield
            return
        from .live import LiveView  # rich only when it is shown

        view = LiveView(hosts, self.console, self.mask)
        with view:
            self._view = view
            try:
                yield
            finally:
                self._view = None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or closed
        return False


class HostStream:
    """A file-like sink for a remote command's output: buffers bytes into whole lines."""

    def __init__(self, out: Output, host: str, stderr: bool, drop: str = "") -> None:
        self.out, self.host, self.stderr, self.drop = out, host, stderr, drop
        self._partial = ""

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
        self.out.output(self.host, line, stderr=self.stderr)

    def flush(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""

    def isatty(self) -> bool:
        return False
