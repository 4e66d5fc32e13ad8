"""Everything hostout prints: whole host-prefixed lines, secrets masked, one lock for all hosts.

What a person sees depends on the verbosity and on whether the host is inside a *quiet*
command (deploy's built-in steps, ``@command(quiet=True)``):

=====================================  =======  ======  ========
what                                    ``-q``  default   ``-v``
=====================================  =======  ======  ========
errors, warnings, the summary            yes     yes      yes
what a step did (``c.report``)           no      yes      yes
commands run, narration, outside quiet   no      yes      yes
their output, outside quiet              yes     yes      yes
commands run and output, inside quiet    no      no       yes
=====================================  =======  ======  ========

When a command inside a quiet step fails, the last lines it printed come with the error
(``failure_tail``). Everything, at every verbosity, goes to the kept log with timestamps
(``open_log``), masked like the screen. ``--json`` prints one JSON object per event on
stdout (a command's start and end, each line of output, each report) and narration on
stderr. On a terminal with several hosts the lines scroll above a live view of each host's
current step (:mod:`.live`).

Secrets are masked everywhere before any text is formatted; a secret equal to a name hostout
prints anyway (a user, group or host name) is not a secret, and is not masked.
"""

from __future__ import annotations

import getpass
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from json import dumps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..shell import mask
from ..status import Status

if TYPE_CHECKING:
    from rich.console import Console

QUIET, NORMAL, VERBOSE = 0, 1, 2
LOG_ONLY = 9  # a level no verbosity reaches: the kept log only

#: The ``event`` field of a ``--json`` record.
START, OUTPUT, REPORT, END, FINISHED = "start", "output", "report", "end", "finished"

#: How many lines of a failed command come with its error.
TAIL_LINES = 30
#: How many logs of earlier runs ``open_log`` keeps beside the new one.
KEEP_LOGS = 30


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
        self._steps: dict[str, list[str]] = {}  # host -> its stack of running commands
        self._quiet: dict[str, int] = {}  # host -> depth of quiet commands it is inside
        self._public: set[str] = set()  # names printed anyway: never masked
        self._view: Any = None  # a live.LiveView while one is shown
        self._log: TextIO | None = None
        self.log_path: Path | None = None

    # -- secrets ---------------------------------------------------------------------------
    def add_secret(self, secret: str | None) -> None:
        if secret:
            with self._lock:
                self.secrets.add(str(secret))

    def add_public(self, *names: str | None) -> None:
        """Names hostout prints anyway (users, groups, hosts): a secret equal to one of them
        is no secret, and masking it would hide every mention of that name."""
        with self._lock:
            self._public.update(n for n in names if n)

    def mask(self, text: str) -> str:
        with self._lock:  # hosts add their passwords while others print
            return mask(text, self.secrets - self._public)

    # -- the kept log ----------------------------------------------------------------------
    def open_log(self, directory: Path, name: str) -> Path:
        """Keep everything of this run in ``directory/<time>-<name>.log`` (0600, masked),
        and only the newest KEEP_LOGS logs there."""
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:80]
        path = directory / f"{stamp}-{safe}.log"
        n = 1
        while path.exists():
            n += 1
            path = directory / f"{stamp}-{safe}-{n}.log"
        fh = path.open("x", encoding="utf-8")
        path.chmod(0o600)
        for old in sorted(directory.glob("*.log"))[:-KEEP_LOGS]:
            old.unlink(missing_ok=True)
        with self._lock:
            self._log, self.log_path = fh, path
        return path

    def close_log(self) -> None:
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    def _to_log(self, text: str) -> None:
        """One masked line in the kept log (caller holds the lock)."""
        if self._log is not None:
            stamp = datetime.now().isoformat(timespec="milliseconds")
            self._log.write(f"{stamp} {mask(text, self.secrets - self._public)}\n")
            self._log.flush()

    # -- screens ---------------------------------------------------------------------------
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

    def _emit(self, to_err: bool, text: str, style: str | None = None, *,
              show: bool = True) -> None:
        """Log ``text``; print it too when ``show``."""
        with self._lock:
            text = mask(text, self.secrets - self._public)
            self._to_log(text)
            if not show:
                return
            if self.err_is_terminal if to_err else self.is_terminal:
                from rich.markup import escape

                (self.err_console if to_err else self.console).print(escape(text), style=style)
            else:
                stream = self.err if to_err else self.stream
                stream.write(text + "\n")
                stream.flush()

    def _narration_level(self, host: str | None, level: int) -> int:
        """Inside a quiet command, narration is for -v only."""
        if host is not None and self._quiet.get(host):
            return max(level, VERBOSE)
        return level

    # -- what hostout says -------------------------------------------------------------------
    def line(self, host: str | None, text: str, *, level: int = NORMAL) -> None:
        """One line of hostout's own narration, e.g. ``[host1] run: pwd``."""
        show = self.verbosity >= self._narration_level(host, level)
        self._emit(self.json, f"[{host}] {text}" if host else text, style="cyan", show=show)

    def info(self, text: str, *, level: int = NORMAL, host: str | None = None) -> None:
        show = self.verbosity >= self._narration_level(host, level)
        prefix = f"[{host}] " if host else ""
        self._emit(self.json, f"{prefix}Hostout: {text}", style="bold", show=show)

    def report(self, host: str, command: str, text: str) -> None:
        """What a step did, for people: ``[host1] uploadeggs: 1 of 12 dists changed``."""
        self.event(host, command or None, REPORT, report=text)
        line = f"[{host}] {command}: {text}" if command else f"[{host}] {text}"
        self._emit(False, line, style="green", show=not self.json and self.verbosity >= NORMAL)

    def output(self, host: str, text: str, *, stderr: bool = False, show: bool = True) -> None:
        """A line a remote (or local) command printed. Outside quiet commands it shows at
        every verbosity; inside them with -v only. Hidden lines still go to the log."""
        show = show and (not self._quiet.get(host) or self.verbosity >= VERBOSE)
        if self.json:
            with self._lock:
                self._to_log(f"[{host}] {'err' if stderr else 'out'}: {text}")
            if show:
                self.event(host, self.current_command(host), OUTPUT, output=text,
                           stream="stderr" if stderr else "stdout")
            return
        self._emit(False, f"[{host}] {'err' if stderr else 'out'}: {text}", show=show)

    def error(self, text: str) -> None:
        self._emit(True, text, style="bold red")

    def plain(self, lines: Iterable[str]) -> None:
        for text in lines:
            self._emit(False, text)

    def show(self, renderable: Any) -> None:
        """A rich renderable (e.g. the summary table) on stdout; its text is not masked."""
        with self._lock:
            self.console.print(renderable)

    def failure_tail(self, host: str, lines: Sequence[str], shown: bool) -> None:
        """The last lines a failed command printed, unless they were on screen already."""
        if shown or not lines:
            return
        for text in lines:
            self._emit(True, f"[{host}] | {text}")

    def host_stream(self, host: str, *, stderr: bool = False, drop: str = "",
                    show: bool = True, tail: deque[str] | None = None) -> HostStream:
        return HostStream(self, host, stderr, drop, show=show, tail=tail)

    def ask_secret(self, prompt: str) -> str:
        """Ask for a password on the terminal, with any live view paused meanwhile."""
        view = self._view
        with view.paused() if view is not None else nullcontext():
            answer = getpass.getpass(prompt)
        self.add_secret(answer)
        return answer

    def ask(self, prompt: str) -> str:
        """Ask a question on the terminal (e.g. to confirm a destroy), live view paused."""
        view = self._view
        with view.paused() if view is not None else nullcontext():
            with self._lock:
                self._to_log(prompt)
            return input(prompt)

    def shows_output(self, host: str) -> bool:
        """Whether a command's output reaches the screen for ``host`` now."""
        return not self.json and (not self._quiet.get(host) or self.verbosity >= VERBOSE)

    # -- commands and steps ------------------------------------------------------------------
    @contextmanager
    def step(self, host: str, name: str, *, quiet: bool = False) -> Iterator[None]:
        """A command running on ``host`` (nested in the plan's command, maybe): the live
        view shows it; inside a quiet one, narration and output are for -v only."""
        with self._lock:
            stack = self._steps.setdefault(host, [])
            stack.append(name)
            if quiet:
                self._quiet[host] = self._quiet.get(host, 0) + 1
            where = " > ".join(stack)
        self._to_log_locked(f"[{host}] step {where}")
        if self._view is not None:
            self._view.started(host, where)
        try:
            yield
        finally:
            with self._lock:
                stack.pop()
                if quiet:
                    self._quiet[host] -= 1
                where = " > ".join(stack)
            if self._view is not None and where:
                self._view.started(host, where)

    def _to_log_locked(self, text: str) -> None:
        with self._lock:
            self._to_log(text)

    def event(self, host: str, command: str | None, event: str, **fields: Any) -> None:
        """One ``--json`` record: host, command, event, time and ``fields`` (all masked)."""
        if not self.json:
            return
        record: dict[str, Any] = {"host": host, "command": command, "event": event,
                                  "time": time.time(), **fields}
        with self._lock:
            secrets = self.secrets - self._public
            text = dumps({k: _masked(v, secrets) for k, v in record.items()})
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
        self._to_log_locked(f"[{host}] {command}: {status.value} in {seconds:.2f} s"
                            + (f": {error}" if error else ""))
        with self._lock:
            self._commands.pop(host, None)

    def host_finished(self, host: str, status: Status, error: str = "",
                      warnings: Sequence[str] = ()) -> None:
        self.event(host, None, FINISHED, status=status.value, error=error,
                   warnings=list(warnings))
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


def _masked(value: Any, secrets: set[str]) -> Any:
    if isinstance(value, str):
        return mask(value, secrets)
    if isinstance(value, list):
        return [_masked(v, secrets) for v in value]
    return value


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or closed
        return False


class HostStream:
    """A file-like sink for a command's output: whole lines only, however the bytes arrive.

    invoke calls ``flush()`` after every write; a line is only ever emitted when its newline
    has arrived, or at ``finish()`` when the command has ended. ``tail`` (shared by a
    command's two streams) keeps its last lines for the error, should it fail.
    """

    def __init__(self, out: Output, host: str, stderr: bool, drop: str = "", *,
                 show: bool = True, tail: deque[str] | None = None) -> None:
        self.out, self.host, self.stderr, self.drop = out, host, stderr, drop
        self.show = show
        self.tail = tail if tail is not None else deque(maxlen=TAIL_LINES)
        self._partial = ""

    def write(self, data: str) -> int:
        text = self._partial + data
        *complete, self._partial = text.split("\n")
        for line in complete:
            self._line(line)
        return len(data)

    def _line(self, line: str) -> None:
        line = line.rstrip("\r")
        if "\r" in line:  # a progress bar redrawn in place: its last state
            line = line.rsplit("\r", 1)[-1]
        if self.drop:
            line = line.replace(self.drop, "").strip() if self.drop in line else line
            if not line:
                return
        self.tail.append(line)
        self.out.output(self.host, line, stderr=self.stderr, show=self.show)

    def flush(self) -> None:
        """Nothing: a partial line waits for its end (see the class docstring)."""

    def finish(self) -> None:
        """The command ended: emit what is left of its last line."""
        if self._partial:
            self._line(self._partial)
            self._partial = ""

    def isatty(self) -> bool:
        return False
