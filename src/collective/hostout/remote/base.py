"""The remote seam: all that commands and deploy steps know about a host.

A :class:`Remote` runs :class:`~collective.hostout.shell.RemoteCommand` objects as an
account, copies files both ways and hangs up. Implementations:

* :mod:`.ssh` -- a server over SSH (Fabric 3 / paramiko; the only code importing them);
* :mod:`.container` -- a container through the Docker Engine API (``hostout docker``);
* :mod:`.recording` -- a fake that records what it is asked, for unit tests.

Lifecycle: a remote is made per host per invocation, connects lazily on first use, may be
used from its host's thread only, and is closed once (``close()``, or as a context manager).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol, runtime_checkable

from ..shell import Account, RemoteCommand


@dataclass(frozen=True)
class Result:
    """What a remote command left behind."""

    command: RemoteCommand
    stdout: str
    stderr: str
    exited: int

    @property
    def ok(self) -> bool:
        return self.exited == 0


@runtime_checkable
class Remote(Protocol):
    """One host, as steps see it."""

    name: str  # the host part's name
    #: True where ``Account.BUILDOUT`` logs in with the buildout user's own key (SSH), which
    #: bootstrap_users then authorises; False where the remote switches user itself (a
    #: container).
    key_login: bool

    @property
    def login_user(self) -> str:
        """The account ``Account.LOGIN`` is (ssh_config or the local user may decide it)."""
        ...

    def execute(self, cmd: RemoteCommand, *, warn: bool = False, hide: bool = False,
                echo: bool = True) -> Result:
        """Run ``cmd``; a non-zero exit raises CommandFailed unless ``warn``. ``hide`` keeps
        its output off the screen (it still goes to the log), ``echo`` prints the command."""
        ...

    def put(self, local: str | Path, remote: str | PurePosixPath, *,
            account: Account = Account.LOGIN, mode: int | None = None) -> None:
        """Upload a file: to a temporary name, then renamed, so a reader never sees a
        truncated file at ``remote``."""
        ...

    def get(self, remote: str | PurePosixPath, local: str | Path, *,
            account: Account = Account.LOGIN) -> None:
        """Download a file."""
        ...

    def close(self) -> None:
        """Hang up; the remote may not be used afterwards."""
        ...


def failure_message(cmd: RemoteCommand, exited: int, stderr: str) -> str:
    """The one-line CommandFailed message every implementation gives."""
    from ..shell import last_line

    last = last_line(stderr)
    return f"'{cmd.display()}' exited {exited}" + (f": {last}" if last else "")
