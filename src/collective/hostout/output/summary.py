"""The summary after a run: one row per host.

On a terminal the summary table comes from :mod:`.live` (rich); piped output gets plain
text, so logs and CI stay greppable (and rich is not even imported).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..status import HostOutcome, Status

if TYPE_CHECKING:
    from .console import Output


def label(status: Status) -> str:
    """How the summary shows a result: a failure shouts."""
    return "FAILED" if status is Status.FAILED else status.value


# -- the summary ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SummaryRow:
    host: str
    commands: str
    status: Status
    error: str  # one line, empty when ok
    seconds: float

    @property
    def result(self) -> str:
        return label(self.status)


def summary_rows(outcomes: Sequence[HostOutcome]) -> list[SummaryRow]:
    """One row per host, in the plan's host order."""
    rows = []
    for o in outcomes:
        names = " ".join(o.completed + ([o.failed_command] if o.failed_command else []))
        if o.status is not Status.OK:
            names = f"{names} ({len(o.completed)}/{len(o.commands)} ok)".lstrip()
        rows.append(SummaryRow(o.host, names, o.status, o.error_line, round(o.seconds, 2)))
    return rows


def summary_title(rows: Sequence[SummaryRow]) -> str:
    failed = sum(r.status is Status.FAILED for r in rows)
    skipped = sum(r.status is Status.SKIPPED for r in rows)
    ok = len(rows) - failed - skipped
    parts = [f"{ok} ok"] + [f"{failed} FAILED"] * bool(failed) + [f"{skipped} skipped"] * bool(
        skipped)
    return f"Summary: {len(rows)} hosts, " + ", ".join(parts)


def plain_summary(rows: Sequence[SummaryRow]) -> list[str]:
    """The summary as aligned text lines (for pipes and logs)."""
    head = ("host", "commands", "result", "seconds", "error")
    cells = [(r.host, r.commands, label(r.status), f"{r.seconds:.2f}", r.error) for r in rows]
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(4)]
    lines = [summary_title(rows)]
    for row in [head, *cells]:
        text = "  ".join(
            (cell.rjust(w) if i == 3 else cell.ljust(w)) for i, (cell, w) in
            enumerate(zip(row[:4], widths, strict=True))
        )
        lines.append(f"{text}  {row[4]}".rstrip())
    return lines


def print_summary(out: Output, outcomes: Sequence[HostOutcome]) -> None:
    """The summary on stdout: a table on a terminal, plain lines otherwise."""
    rows = [SummaryRow(r.host, out.mask(r.commands), r.status, out.mask(r.error), r.seconds)
            for r in summary_rows(outcomes)]
    if out.is_terminal:
        from .live import table_summary

        out.show(table_summary(rows))
    else:
        out.plain(plain_summary(rows))


def rollout_lines(outcomes: Sequence[HostOutcome], resume: str) -> list[str]:
    """After a rolling deploy (``--batch``) that did not deploy every host: which hosts were
    deployed, which failed, which were not started, and the command that resumes."""
    groups = {status: [o.host for o in outcomes if o.status is status]
              for status in (Status.OK, Status.FAILED, Status.SKIPPED)}
    said = [f"{len(groups[Status.OK])} deployed", f"{len(groups[Status.FAILED])} failed",
            f"{len(groups[Status.SKIPPED])} not started"]
    lines = ["Rollout stopped: " + ", ".join(said)]
    for status, label in ((Status.OK, "deployed"), (Status.FAILED, "failed"),
                          (Status.SKIPPED, "not started")):
        if groups[status]:
            lines.append(f"  {label}: {' '.join(groups[status])}")
    lines.append(f"Resume with: {resume}")
    return lines
