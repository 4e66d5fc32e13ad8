"""The history of a server: every deploy, rollback, buildout, bootstrap and unlock, appended
as one JSON line to ``path.hostout/history.jsonl`` on the server (who, from where, when,
what, the release, the versions digest, the result, how long).

Lines are appended with ``>>`` under the lock's guard, so runs never interleave; the file is
only ever appended to. ``history`` prints it (``--json``: the lines as they are).
"""

from __future__ import annotations

import getpass
import json
import socket
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..commands.context import Context
from ..shell import Account, RemoteCommand, q


def who() -> str:
    """The local user running hostout (for the lock and the history)."""
    try:
        return _printable(getpass.getuser())
    except (KeyError, OSError):  # no passwd entry (a container)
        return "unknown"


def machine() -> str:
    """This machine's name (for the lock and the history)."""
    return _printable(socket.gethostname()) or "unknown"


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable() and not ch.isspace())[:64]


def utc(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class HistoryEntry:
    """One line of a server's history."""

    command: str  # deploy, rollback, buildout, bootstrap, unlock
    host: str
    who: str = field(default_factory=who)
    origin: str = field(default_factory=machine)  # "from": the machine it ran from
    started: float = field(default_factory=time.time)
    result: str = "ok"  # ok, unchanged, failed, rolled back, interrupted, refused
    release: str | None = None  # the release current afterwards (release layout)
    previous: str | None = None  # the release current before
    versions: str | None = None  # digest of every pinned version of the build
    develop: dict[str, str] = field(default_factory=dict)  # develop packages and versions
    seconds: float | None = None
    error: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = utc(data.pop("started"))
        data["from"] = data.pop("origin")
        return {k: v for k, v in data.items() if v not in (None, {}, "")}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryEntry:
        started = data.get("time", "")
        try:
            stamp = datetime.strptime(started, "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=UTC).timestamp()
        except ValueError:
            stamp = 0.0
        return cls(command=str(data.get("command", "?")), host=str(data.get("host", "")),
                   who=str(data.get("who", "?")), origin=str(data.get("from", "?")),
                   started=stamp, result=str(data.get("result", "?")),
                   release=data.get("release"), previous=data.get("previous"),
                   versions=data.get("versions"), develop=dict(data.get("develop") or {}),
                   seconds=data.get("seconds"), error=data.get("error"),
                   note=data.get("note"))

    def line(self) -> str:
        """One line for people."""
        when = datetime.fromtimestamp(self.started).strftime("%Y-%m-%d %H:%M:%S")
        what = [when, f"{self.command:<9}", f"{self.result:<11}"]
        if self.release:
            moved = self.previous and self.previous != self.release
            what.append(self.release + (f" (was {self.previous})" if moved else ""))
        what.append(f"{self.who}@{self.origin}")
        if self.develop:
            what.append(", ".join(f"{n} {v}" for n, v in sorted(self.develop.items())))
        if self.versions:
            what.append(f"versions {self.versions}")
        if self.seconds is not None:
            what.append(f"{self.seconds:.1f} s")
        for extra in (self.note, self.error):
            if extra:
                what.append(extra)
        return "  ".join(what)


def append_line(entry: HistoryEntry) -> str:
    """Shell text appending ``entry`` to history.jsonl (run in the state directory)."""
    return f"printf '%s\\n' {q(entry.to_json())} >> history.jsonl"


def read(c: Context, last: int | None = None) -> list[HistoryEntry]:
    """The server's history, oldest first (the ``last`` entries only, if given)."""
    path = c.settings.layout.history
    tail = f"tail -n {int(last)} {q(path)}" if last else f"cat {q(path)}"
    cmd = RemoteCommand(f"if [ -r {q(path)} ]; then {tail}; fi", account=Account.BUILDOUT,
                        reads_only=True)
    res = c.remote.execute(cmd, hide=True, echo=False)
    return list(parse(res.stdout.splitlines()))


def parse(lines: Iterable[str]) -> Iterable[HistoryEntry]:
    for text in lines:
        try:
            data = json.loads(text)
        except ValueError:
            continue  # a line cut short by a full disk, say: skipped, not fatal
        if isinstance(data, dict):
            yield HistoryEntry.from_dict(data)
