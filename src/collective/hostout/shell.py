"""Shell commands as data.

Commands are built from argument lists with :func:`shlex.quote`, carry where and as whom they
run, and know which secrets to mask, so a dry run, a log line and a test all read the same
object that the remote layer executes.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

MASK = "****"


def q(value: object) -> str:
    return shlex.quote(str(value))


def join(argv: Sequence[object]) -> str:
    """One shell word per argument, each quoted."""
    return " ".join(q(a) for a in argv)


def mask(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class Login(Enum):
    """Which account's connection a command uses."""

    LOGIN = "login"  # the sudo-capable ``user``
    BUILDOUT = "buildout"  # the ``buildout-user``, by key once bootstrapped


@dataclass(frozen=True)
class RemoteCommand:
    """A command for a host: ``script`` is shell text whose arguments are already quoted."""

    script: str
    cwd: str | None = None
    cwd_optional: bool = False  # run in cwd if it exists, else in the login directory
    sudo: bool = False
    sudo_user: str | None = None  # with sudo, run as this user instead of root
    via: Login = Login.LOGIN
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def argv(cls, argv: Sequence[object], **kwargs: object) -> RemoteCommand:
        return cls(join(argv), **kwargs)  # type: ignore[arg-type]

    def inside(self, cwd: str | None) -> RemoteCommand:
        return replace(self, cwd=cwd)

    @property
    def body(self) -> str:
        """The shell text, with its working directory, as the remote shell gets it."""
        if not self.cwd:
            return self.script
        if self.cwd_optional:
            return f"cd {q(self.cwd)} 2>/dev/null; {self.script}"
        return f"cd {q(self.cwd)} && {self.script}"

    @property
    def wire(self) -> str:
        """Exactly what is sent over SSH (without the sudo password, which goes to stdin)."""
        if not self.sudo:
            return self.body
        user = ["-u", self.sudo_user] if self.sudo_user else []
        return join(["sudo", "-S", "-p", SUDO_PROMPT, "-H", *user, "--", "sh", "-c", self.body])

    def display(self) -> str:
        """What hostout prints for this command: the body, secrets masked."""
        who = f"sudo -u {self.sudo_user}" if self.sudo and self.sudo_user else "sudo"
        prefix = f"{who}: " if self.sudo else "run: "
        return prefix + mask(self.body, self.secrets)


#: The prompt hostout asks sudo to print, so the password is only ever sent to this prompt.
SUDO_PROMPT = "[hostout] sudo password:"
