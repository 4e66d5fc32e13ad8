"""``fabric.contrib.console``: ``confirm``, on a terminal only."""

from __future__ import annotations

import sys
import threading

from ..errors import HostoutError
from ..legacy.current import ctx

_asking = threading.Lock()  # one question at a time, even with hosts side by side


def confirm(question: str, default: bool = True) -> bool:
    """Ask a yes/no question on the terminal; without a terminal, a one-line error (a
    command that needs an answer must not guess one)."""
    c = ctx()
    if not sys.stdin.isatty():
        raise HostoutError(f"confirm({question!r}) needs an answer and bin/hostout is not "
                           "on a terminal; run it from one", host=c.name)
    suffix = "[Y/n]" if default else "[y/N]"
    with _asking:
        while True:
            answer = input(f"[{c.name}] {question} {suffix} ").strip().lower()
            if not answer:
                return default
            if answer in ("y", "yes"):
                return True
            if answer in ("n", "no"):
                return False
