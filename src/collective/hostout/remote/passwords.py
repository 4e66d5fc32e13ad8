"""Login passwords: configured per host, or asked once per login user per invocation."""

from __future__ import annotations

import getpass
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config.settings import HostSettings
from ..errors import AuthError

if TYPE_CHECKING:
    from ..output import Output


class Passwords:
    """Login users' passwords: the host's configured one, else asked once per user per
    invocation (on a terminal only) and used for every host that user logs in to."""

    def __init__(self, out: Output, *, interactive: bool | None = None,
                 ask: Callable[[str], str] = getpass.getpass) -> None:
        self.out = out
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self._ask = ask
        self._known: dict[str, str] = {}  # login user -> the password given for it
        self._lock = threading.Lock()

    def configured(self, settings: HostSettings, user: str | None = None) -> str | None:
        if settings.password:
            self.out.add_secret(settings.password)
            return str(settings.password)
        return self._known.get(user or settings.user or "")

    def get(self, settings: HostSettings, user: str) -> str:
        known = self.configured(settings, user)
        if known is not None:
            return known
        if not self.interactive:
            raise AuthError(
                f"a password is needed for {user}@{settings.hoststring}: set the password "
                "option or run bin/hostout from a terminal",
                host=settings.name,
            )
        with self._lock:  # one prompt at a time, even with hosts running side by side
            if user not in self._known:
                answer = self._ask(f"Password for {user} (on {settings.name} and any other "
                                   "host without a password option): ")
                self._known[user] = answer
                self.out.add_secret(answer)
        return self._known[user]
