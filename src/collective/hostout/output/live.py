"""The rich side of many hosts: a live view while they run, the summary table after.

Imported only when a terminal shows them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..status import Status
from .summary import SummaryRow, label, summary_title

WAITING, RUNNING, OK, FAILED, SKIPPED = (Status.WAITING, Status.RUNNING, Status.OK,
                                         Status.FAILED, Status.SKIPPED)
_STYLE = {WAITING: "dim", RUNNING: "yellow", OK: "green", FAILED: "bold red", SKIPPED: "dim"}
_ORDER = {RUNNING: 0, FAILED: 1, WAITING: 2, SKIPPED: 3, OK: 4}


@dataclass
class _HostState:
    status: Status = WAITING
    command: str = ""
    since: float = 0.0  # monotonic time the host started
    ended: float = 0.0


class LiveView:
    """Hosts, their state and current command, redrawn a few times a second."""

    def __init__(self, hosts: Sequence[str], console: Console,
                 mask: Callable[[str], str] = str) -> None:
        self.console = console
        self._mask = mask
        self._states = {host: _HostState() for host in hosts}
        self._order = {host: i for i, host in enumerate(hosts)}
        self._lock = threading.Lock()
        self._live = Live(console=console, get_renderable=self.render, transient=True,
                          refresh_per_second=4, redirect_stdout=False, redirect_stderr=False)

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Take the view off the screen (e.g. while a password is asked)."""
        self._live.stop()
        try:
            yield
        finally:
            self._live.start()

    def started(self, host: str, command: str) -> None:
        command = self._mask(command)  # here, not in render(): that runs under rich's lock
        with self._lock:
            state = self._states[host]
            if state.status == WAITING:
                state.since = time.monotonic()
            state.status, state.command = RUNNING, command

    def finished(self, host: str, status: Status, error: str = "") -> None:
        error = self._mask(error)
        with self._lock:
            state = self._states[host]
            state.status, state.command, state.ended = status, error, time.monotonic()

    def render(self) -> RenderableType:
        now = time.monotonic()
        with self._lock:
            states = {h: _HostState(s.status, s.command, s.since, s.ended)
                      for h, s in self._states.items()}
        counts = {status: 0 for status in _ORDER}
        for state in states.values():
            counts[state.status] += 1
        done = counts[OK] + counts[FAILED] + counts[SKIPPED]
        header = Text(f"hostout: {done}/{len(states)} hosts done", style="bold")
        for status in (RUNNING, WAITING, OK, FAILED, SKIPPED):
            if counts[status]:
                header.append(f" · {counts[status]} {status}", style=_STYLE[status])
        room = max(1, self.console.size.height - 4)
        shown = sorted(states, key=lambda h: (_ORDER[states[h].status], self._order[h]))[:room]
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column("host", style="bold")
        table.add_column("state")
        table.add_column("command")
        table.add_column("seconds", justify="right")
        for host in shown:
            state = states[host]
            started = state.status != WAITING and state.since
            seconds = ((state.ended or now) - state.since) if started else None
            table.add_row(host, Text(state.status, style=_STYLE[state.status]),
                          state.command,
                          f"{seconds:.1f}" if seconds is not None else "")
        return Group(header, table)



def table_summary(rows: Sequence[SummaryRow]) -> Table:
    table = Table(title=summary_title(rows), title_justify="left")
    table.add_column("host", style="bold")
    table.add_column("commands")
    table.add_column("result")
    table.add_column("seconds", justify="right")
    table.add_column("error", overflow="fold")
    for r in rows:
        table.add_row(r.host, r.commands, Text(label(r.status), style=_STYLE[r.status]),
                      f"{r.seconds:.2f}",
                      r.error)
    return table
