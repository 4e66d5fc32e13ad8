"""hostout.cloud: the host's VM made, listed, started, stopped and destroyed through Apache
Libcloud (any of its compute providers), and ``podman`` for this machine's throwaway hosts.
Shipped with hostout under hostout 1's plugin name (``extends = hostout.cloud``).

``bin/hostout host1 create deploy``: create makes the VM (or finds it), waits until it runs
and answers SSH, and records where it is (see :mod:`collective.hostout.config.records`), so
deploy, and every later command, goes there. :mod:`.control` does the work, :mod:`.fabfile`
holds the commands.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from ...errors import ConfigError
from .options import CloudOptions

#: What bin/hostout needs besides collective.hostout (the recipe adds it to its eggs).
REQUIRES = ("apache-libcloud",)
MISSING_LIBCLOUD = ("hostout.cloud needs Apache Libcloud: pip install "
                    "'collective.hostout[cloud]' (into the Python that runs buildout)")


class Recipe:
    """Checks the options when bin/buildout runs; hostout 1's ``key`` (the provider's
    credential when ``hosttype`` is used) must not be taken for the identity file."""

    def __init__(self, buildout: Any, name: str, options: MutableMapping[str, str]) -> None:
        try:
            import libcloud  # noqa: F401
        except ImportError:
            raise ConfigError(MISSING_LIBCLOUD, host=name) from None
        CloudOptions.of(options, name)
        if options.get("hosttype", "").strip() and options.get("key", "").strip():
            options.setdefault("identity-file", f"{name}_key")

    def install(self) -> list[str]:
        return []

    update = install


__all__ = ["REQUIRES", "CloudOptions", "Recipe"]
