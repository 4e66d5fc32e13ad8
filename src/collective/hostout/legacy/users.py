"""hostout 1's ``collective.hostout.hostout``: run as the buildout user.

``with asbuildoutuser():`` makes ``api.run``, ``api.put`` and ``api.get`` log in as the
buildout user (with its key, made by bootstrap_users) until the block ends; ``@buildoutuser``
does the same for a whole command, which stays a command. ``api.sudo`` always goes through
the login user's sudo: the buildout user has no sudo rights of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ..shell import Account
from .current import state

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _as(account: Account) -> Iterator[None]:
    st = state()
    st.accounts.append(account)
    try:
        yield
    finally:
        st.accounts.pop()


def asbuildoutuser() -> Any:
    """In this block, run/put/get log in as the buildout user."""
    return _as(Account.BUILDOUT)


def assudouser() -> Any:
    """In this block, run/put/get log in as the login (sudo-capable) user."""
    return _as(Account.LOGIN)


def buildoutuser(func: F) -> F:
    """The decorated command runs as the buildout user (see :func:`asbuildoutuser`). It is
    still found as a command: the wrapper keeps the function's name, module and signature."""

    @functools.wraps(func)
    def as_buildout_user(*args: Any, **kwargs: Any) -> Any:
        with asbuildoutuser():
            return func(*args, **kwargs)

    return as_buildout_user  # type: ignore[return-value]
