"""A remote that only reads: what ``plan`` (``deploy --dry-run``) runs deploy's deciding
steps through, so that a plan cannot change the host even by mistake.

Commands marked ``reads_only`` (probes: ``cat``, ``ls``, ``sha256sum``, ``readlink``...) go
through to the real remote; any other command, and every ``put``, is refused with
:class:`WriteRefused`, which is a bug in hostout (or a plugin), never a user error.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from ..shell import Account, RemoteCommand
from .base import Remote, Result


class WriteRefused(RuntimeError):
    """A plan tried to change the host: a bug, shown with its traceback."""


class ReadOnlyRemote:
    """Wraps a :class:`~.base.Remote`; lets through only what reads."""

    def __init__(self, inner: Remote) -> None:
        self.inner = inner
        self.refused: list[str] = []  # what was refused, for tests and the error

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def login_user(self) -> str:
        return self.inner.login_user

    def execute(self, cmd: RemoteCommand, *, warn: bool = False, hide: bool = False,
                echo: bool = True) -> Result:
        if not cmd.reads_only:
            self.refused.append(cmd.display())
            raise WriteRefused(f"{self.name}: a plan may only read, refused: {cmd.display()}")
        return self.inner.execute(cmd, warn=warn, hide=hide, echo=echo)

    def put(self, local: str | Path, remote: str | PurePosixPath, *,
            account: Account = Account.LOGIN, mode: int | None = None) -> None:
        self.refused.append(f"put {remote}")
        raise WriteRefused(f"{self.name}: a plan may only read, refused to upload {remote}")

    def get(self, remote: str | PurePosixPath, local: str | Path, *,
            account: Account = Account.LOGIN) -> None:
        self.inner.get(remote, local, account=account)

    def close(self) -> None:
        """The wrapped remote belongs to the invocation: it is closed there, not here."""
