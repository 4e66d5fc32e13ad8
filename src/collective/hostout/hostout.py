"""hostout 1's ``collective.hostout.hostout`` for ported plugins: ``buildoutuser`` (a
decorator), ``asbuildoutuser`` and ``assudouser`` (context managers) and ``HostOut`` (the
class of ``api.env.hostout``). See :mod:`collective.hostout.legacy`."""

from __future__ import annotations

from .legacy.handle import HostoutHandle as HostOut
from .legacy.users import asbuildoutuser, assudouser, buildoutuser

__all__ = ["HostOut", "asbuildoutuser", "assudouser", "buildoutuser"]
