"""hostout.supervisor: supervisord stopped before a new build takes over and started (or
reloaded) after it, and supervisorctl's short commands (status, start, stop, restart, tail,
supervisorctl, supervisorboot). Shipped with hostout under hostout 1's plugin name, so
``extends = hostout.supervisor`` keeps working.

The logic is in :mod:`.control`; :mod:`.fabfile` holds the commands and the one hook.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from .control import Supervisor


class Recipe:
    """Checks the plugin's options when bin/buildout runs, and gives ``supervisor`` its
    default as hostout 1's recipe did (for fabfiles that read ``api.env.supervisor``)."""

    def __init__(self, buildout: Any, name: str, options: MutableMapping[str, str]) -> None:
        settings = Supervisor.of(options, name)  # a bad value fails bin/buildout, not a deploy
        if not settings.as_root:
            options.setdefault("supervisor", settings.part)

    def install(self) -> list[str]:
        return []

    update = install


__all__ = ["Recipe", "Supervisor"]
