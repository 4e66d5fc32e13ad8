"""A fake host for unit tests: records every command and file, answers from a script.

    remote = RecordingRemote("host1")
    remote.respond(r"^test -x .*/bin/buildout", exited=1)     # not bootstrapped yet
    remote.respond(r"sysconfig.get_platform", stdout="linux-x86_64 3.11\\n")
    ...                                                        # run a command with it
    assert remote.scripts(Account.BUILDOUT)[0].startswith("python3.11 -m venv")

Answers are matched by regular expression against the command's script, the newest
``respond`` first; an unmatched command succeeds with no output. Plugin authors can test
their commands' orchestration with it too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import CommandFailed
from ..shell import Account, RemoteCommand
from .base import Result, failure_message


@dataclass(frozen=True)
class Call:
    """One thing a step asked of the host."""

    kind: str  # "run", "put" or "get"
    account: Account
    script: str = ""  # run: the command's script
    cwd: str | None = None
    sudo: bool = False
    sudo_user: str | None = None
    path: str = ""  # put/get: the remote path
    network: bool = False  # run: marked as downloading (it gets the tunnel's proxy)

    @property
    def who(self) -> str:
        """As whom it ran: ``root``, a sudo user, ``login`` or ``buildout``."""
        if self.sudo:
            return self.sudo_user or "root"
        return self.account.value


@dataclass
class _Answer:
    pattern: re.Pattern[str]
    stdout: str
    stderr: str
    exited: int
    times: int | None  # None: every time


@dataclass
class RecordingRemote:
    """A :class:`~collective.hostout.remote.base.Remote` that only records."""

    name: str = "host1"
    login: str = "deploy"
    calls: list[Call] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # what was put, by remote path
    closed: bool = False
    key_login: bool = True  # False: stands in for a container (no key for the buildout user)
    _answers: list[_Answer] = field(default_factory=list)

    @property
    def login_user(self) -> str:
        return self.login

    def respond(self, pattern: str, *, stdout: str = "", stderr: str = "", exited: int = 0,
                times: int | None = None) -> None:
        """Answer commands whose script matches ``pattern`` (``times`` times, or always)."""
        self._answers.insert(0, _Answer(re.compile(pattern, re.M), stdout, stderr, exited,
                                        times))

    def execute(self, cmd: RemoteCommand, *, warn: bool = False, hide: bool = False,
                echo: bool = True) -> Result:
        self.calls.append(Call("run", cmd.account, cmd.script, cmd.cwd, cmd.sudo,
                               cmd.sudo_user, network=cmd.network))
        result = Result(cmd, "", "", 0)
        for answer in self._answers:
            if answer.times != 0 and answer.pattern.search(cmd.script):
                if answer.times is not None:
                    answer.times -= 1
                result = Result(cmd, answer.stdout, answer.stderr, answer.exited)
                break
        if not result.ok and not warn:
            raise CommandFailed(failure_message(cmd, result.exited, result.stderr),
                                host=self.name, exit_status=result.exited,
                                stderr=result.stderr)
        return result

    def put(self, local: str | Path, remote: str | PurePosixPath, *,
            account: Account = Account.LOGIN, mode: int | None = None) -> None:
        self.calls.append(Call("put", account, path=str(remote)))
        self.files[str(remote)] = Path(local).read_bytes()

    def get(self, remote: str | PurePosixPath, local: str | Path, *,
            account: Account = Account.LOGIN) -> None:
        self.calls.append(Call("get", account, path=str(remote)))
        if str(remote) not in self.files:
            raise CommandFailed(f"no file {remote} on {self.name}", host=self.name)
        Path(local).write_bytes(self.files[str(remote)])

    def close(self) -> None:
        self.closed = True

    # -- reading what happened -----------------------------------------------------------
    def scripts(self, account: Account | None = None) -> list[str]:
        """The scripts run (as ``account``'s login, if given), in order."""
        return [c.script for c in self.calls
                if c.kind == "run" and (account is None or c.account is account)]

    def ran(self, pattern: str) -> list[Call]:
        """The commands whose script matches ``pattern``."""
        found = re.compile(pattern, re.M)
        return [c for c in self.calls if c.kind == "run" and found.search(c.script)]
