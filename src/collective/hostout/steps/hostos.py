"""Which OS a server runs, and hostout 1's per-OS commands.

hostout 1 ran ``bootstrap_python_<hostos>`` (and ``bootstrap_users_<hostos>``,
``bootstrap_buildout_<hostos>``) instead of the generic command when a plugin defined one,
e.g. ``bootstrap_python_ubuntu`` from hostout.ubuntu. hostout 2 does the same: the names
tried are ``hostos`` when set, else the server's os-release ID, its ID_LIKE entries and its
family (``ubuntu``, ``debian``; ``rocky``, ``rhel``, ``centos``, ``fedora``, ``redhat``).
A per-OS command may call the generic one (``api.env.hostout.bootstrap_python()``) for the
standard work; that call runs the generic command, not the per-OS one again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..commands.context import Context
from ..errors import UnsupportedSystem
from ..server.system import OsRelease
from .base import remote_target, state

__all__ = ["HostOs", "candidates", "detect", "dispatch", "offers", "release", "remote_target",
           "require_python"]


@dataclass
class HostOs:
    """Per host: the server's os-release once read, and the per-OS commands running."""

    release: OsRelease | None = None
    dispatching: set[str] = field(default_factory=set)


def release(c: Context) -> OsRelease:
    st = c.state(HostOs)
    if st.release is None:
        text = c.run("cat /etc/os-release", hide=True, warn=True).stdout
        st.release = OsRelease.parse(text)
    return st.release


def detect(c: Context) -> str:
    """``hostos`` when set, else the server's os-release ID (``debian``, ``ubuntu``...),
    else its family."""
    if c.settings.hostos:
        return c.settings.hostos
    found = release(c)
    return found.id or found.family


def candidates(c: Context) -> list[str]:
    """The OS names tried for per-OS commands, most specific first."""
    if c.settings.hostos:
        names = [c.settings.hostos, OsRelease(c.settings.hostos.lower()).family]
    else:
        found = release(c)
        names = [found.id, *found.like, found.family]
    seen: list[str] = []
    for name in names:
        name = name.lower().replace("-", "_").replace(".", "_")
        if name and name not in seen:
            seen.append(name)
    return seen


def offers(c: Context, base: str) -> bool:
    """Whether any plugin or fabfile defines a ``<base>_<something>`` command."""
    return any(name.startswith(f"{base}_") for name in c.registry.names())


def dispatch(c: Context, base: str, needed: Callable[[], bool] | None = None) -> str | None:
    """Run ``<base>_<os>`` if some plugin or fabfile defines one for this server (and
    ``needed()`` says the work is needed); its name, or None when the generic command should
    do the work."""
    prefix = f"{base}_"
    if not offers(c, base):
        return None  # nothing to choose from: no need to ask the server
    st = c.state(HostOs)
    if base in st.dispatching:
        return None  # the per-OS command asked for the generic one
    if needed is not None and not needed():
        return None
    for name in candidates(c):
        command = prefix + name
        if command in c.registry:
            st.dispatching.add(base)
            try:
                c.call(command)
            finally:
                st.dispatching.discard(base)
            return command
    return None


def require_python(c: Context, command: str) -> None:
    """After a per-OS bootstrap_python: the Python the buildout needs is there."""
    version = c.settings.python_version
    found = remote_target(c)
    if found is None:
        raise UnsupportedSystem(
            f"{command} ran, but python{version} with venv support is still missing; make "
            f"it install python{version} (and its venv module), or let it call "
            "api.env.hostout.bootstrap_python() for hostout's own install", host=c.name)
    state(c).target = found
