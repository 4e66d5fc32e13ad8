"""How a host is doing, and how its share of an invocation went: below runner and output."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from .errors import HostoutError


class Status(StrEnum):
    """A host's state in an invocation; the value is what --json and the summary print."""

    WAITING = "waiting"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # not started, or stopped early (--fail-fast, a failed batch)


@dataclass
class HostOutcome:
    """How one host's share of the plan went."""

    host: str
    commands: tuple[str, ...]
    error: HostoutError | None = None
    seconds: float = 0.0
    results: list[object] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)  # commands that ran to the end
    failed_command: str | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. a failed post-command

    @property
    def status(self) -> Status:
        if self.error is not None:
            return Status.FAILED
        return Status.OK if len(self.completed) == len(self.commands) else Status.SKIPPED

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def error_line(self) -> str:
        """The error on one line, without the host (which goes beside it)."""
        return " ".join(self.error.message.split()) if self.error is not None else ""
