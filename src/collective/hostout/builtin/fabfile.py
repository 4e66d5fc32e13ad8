"""The built-in commands of every host (the seed's list). Plugins override any of them and
reach the original with ``c.super()``. Each is a thin wrapper over :mod:`..steps`."""

from __future__ import annotations

from ..commands.context import Context
from ..commands.registry import command
from ..remote.base import Result
from ..shell import RemoteCommand
from ..steps import accounts as _accounts
from ..steps import bootstrap as _bootstrap
from ..steps import build as _build
from ..steps import shipping as _shipping


@command
def run(c: Context, *cmd: str) -> Result:
    """Execute cmd on remote as the buildout user, in the buildout directory"""
    return c.buildout_run(" ".join(cmd))


@command
def sudo(c: Context, *cmd: str) -> Result:
    """Execute cmd on remote as root, through the login user's sudo"""
    script = " ".join(cmd)
    return c.sudo(RemoteCommand(script, cwd=str(c.path), cwd_optional=True, sudo=True))


@command
def deploy(c: Context) -> None:
    """predeploy, uploadeggs, uploadbuildout, buildout and then postdeploy"""
    c.commands.predeploy()
    c.commands.uploadeggs()
    c.commands.uploadbuildout()
    if _build.built_already(c):
        c.out.info("nothing changed since the last successful build; not rebuilding "
                   f"(bin/hostout {c.name} buildout forces it)", host=c.name)
    else:
        c.commands.buildout()
    c.commands.postdeploy()


@command
def predeploy(c: Context) -> None:
    """Install buildout and its dependencies if needed. Hookpoint for plugins"""
    if not _bootstrap.is_bootstrapped(c):
        c.out.info(f"No {c.settings.layout.buildout_script}: bootstrapping", host=c.name)
        c.commands.bootstrap()


@command
def bootstrap(c: Context) -> None:
    """Install python and users needed to run buildout"""
    c.commands.bootstrap_users()
    c.commands.bootstrap_python()
    c.commands.bootstrap_buildout()


@command
def bootstrap_users(c: Context) -> None:
    """create buildout and the effective user and allow hostout access"""
    _accounts.bootstrap_users(c)


@command
def bootstrap_python(c: Context) -> None:
    """Install the python-version this buildout needs with the OS's package manager"""
    _bootstrap.bootstrap_python(c)


@command
def bootstrap_buildout(c: Context) -> None:
    """Make path a venv with zc.buildout and setuptools pinned as the local buildout's"""
    _bootstrap.bootstrap_buildout(c)


@command
def uploadeggs(c: Context) -> dict[str, str]:
    """Any develop eggs are released as eggs and uploaded to the server"""
    return _shipping.uploadeggs(c)


@command
def uploadbuildout(c: Context) -> None:
    """Upload buildout pinned to local picked versions + uploaded eggs"""
    _shipping.uploadbuildout(c)


@command
def buildout(c: Context, *args: str) -> None:
    """Run the buildout on the remote server"""
    _build.run_buildout(c, *args)


@command
def postdeploy(c: Context) -> None:
    """Perform any final plugin tasks"""


@command
def setowners(c: Context) -> None:
    """Ensure ownership and permissions are correct on buildout and cache"""
    _accounts.setowners(c)
