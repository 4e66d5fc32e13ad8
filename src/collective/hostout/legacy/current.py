"""The running command's context, and what the legacy layer keeps per host in it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..commands.context import Context, current
from ..errors import HostoutError
from ..shell import Account


def ctx() -> Context:
    """The context of the command running in this thread."""
    try:
        return current.get()
    except LookupError:
        raise HostoutError(
            "collective.hostout.api is only usable inside a command run by bin/hostout"
        ) from None


@dataclass
class LegacyState:
    """Per host: as whom ``api.run`` logs in, and what Fabric 1's context managers set."""

    #: ``asbuildoutuser()`` blocks, innermost last; below them ``base`` (``env.user``).
    accounts: list[Account] = field(default_factory=list)
    base: Account = Account.LOGIN
    prefixes: list[str] = field(default_factory=list)  # ``with prefix(...)``

    @property
    def account(self) -> Account:
        return self.accounts[-1] if self.accounts else self.base


def state(c: Context | None = None) -> LegacyState:
    return (c or ctx()).state(LegacyState)


def login_user(c: Context) -> str:
    return c.settings.user or c.remote.login_user


def buildout_user(c: Context) -> str:
    return c.settings.buildout_user or login_user(c)


def user_of(c: Context, account: Account) -> str:
    return buildout_user(c) if account is Account.BUILDOUT else login_user(c)
