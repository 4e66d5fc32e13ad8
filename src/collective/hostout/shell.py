"""Shell commands as data.

Commands are built from argument lists with :func:`shlex.quote`, say as which account and
where they run, and know which secrets to mask, so a dry run, a log line and a test all read
the same object that a :class:`~collective.hostout.remote.base.Remote` executes.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

MASK = "****"


def q(value: object) -> str:
    return shlex.quote(str(value))


def join(argv: Sequence[object]) -> str:
    """One shell word per argument, each quoted."""
    return " ".join(q(a) for a in argv)


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``****``, longest secret first."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def last_line(text: str, default: str = "") -> str:
    """The last non-blank line of ``text``, stripped (what a failed command said last)."""
    return next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), default)


class Account(Enum):
    """Which account a command logs in as on the host.

    ``LOGIN`` is the sudo-capable ``user`` (root itself in a container); ``BUILDOUT`` the
    ``buildout-user``, which over SSH logs in with its own key once bootstrapped. Root, or
    any other user, is reached from ``LOGIN`` with ``sudo``/``sudo_user``.
    """

    LOGIN = "login"
    BUILDOUT = "buildout"


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class RemoteCommand:
    """A command for a host: ``script`` is shell text whose arguments are already quoted."""

    script: str
    cwd: str | None = None
    cwd_optional: bool = False  # run in cwd if it exists, else in the login directory
    sudo: bool = False  # as root (or sudo_user) through the login user's sudo
    sudo_user: str | None = None
    account: Account = Account.LOGIN
    env: tuple[tuple[str, str], ...] = ()  # exported for the script
    secrets: tuple[str, ...] = field(default=(), repr=False)
    # it downloads (package managers, builds): with ``tunnel = true`` it runs with hostout's
    # proxy in its environment, open for that command only
    network: bool = False

    def __post_init__(self) -> None:
        for name, _ in self.env:
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"not an environment variable name: {name!r}")

    @classmethod
    def argv(cls, argv: Sequence[object], **kwargs: object) -> RemoteCommand:
        return cls(join(argv), **kwargs)  # type: ignore[arg-type]

    @property
    def body(self) -> str:
        """The shell text as the remote shell gets it: working directory, environment, script."""
        script = self.script
        if self.env:
            exports = " ".join(f"{name}={q(value)}" for name, value in self.env)
            script = f"export {exports} && {script}"
        if not self.cwd:
            return script
        if self.cwd_optional:
            return f"cd {q(self.cwd)} 2>/dev/null; {script}"
        return f"cd {q(self.cwd)} && {script}"

    def display(self) -> str:
        """What hostout prints for this command: the body, secrets masked."""
        who = f"sudo -u {self.sudo_user}" if self.sudo and self.sudo_user else "sudo"
        prefix = f"{who}: " if self.sudo else "run: "
        return prefix + mask(self.body, self.secrets)
