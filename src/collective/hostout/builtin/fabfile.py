"""The built-in commands of every host."""

from __future__ import annotations

from ..commands.context import Context
from ..commands.registry import command
from ..remote.connection import Result
from ..shell import RemoteCommand


@command
def run(c: Context, *cmd: str) -> Result:
    """Execute cmd on remote as the buildout user, in the buildout directory"""
    return c.buildout_run(" ".join(cmd))


@command
def sudo(c: Context, *cmd: str) -> Result:
    """Execute cmd on remote as root, through the login user's sudo"""
    script = " ".join(cmd)
    return c.sudo(RemoteCommand(script, cwd=str(c.path), cwd_optional=True, sudo=True))
