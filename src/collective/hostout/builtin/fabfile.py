"""The built-in commands of every host (the seed's list). Plugins override any of them and
reach the original with ``c.super()``. Each is a thin wrapper over :mod:`..steps`.

Deploy's steps are quiet: each says what it did in one line (``c.report``); the commands
they run and their output show with ``-v`` and are always in the kept log."""

from __future__ import annotations

from ..commands.context import Context
from ..commands.registry import command
from ..errors import ConfigError
from ..images import compose as _compose
from ..remote.base import Result
from ..shell import RemoteCommand
from ..steps import accounts as _accounts
from ..steps import bootstrap as _bootstrap
from ..steps import build as _build
from ..steps import hostos as _hostos
from ..steps import shipping as _shipping


@command
def run(c: Context, *cmd: str) -> Result:
    """Execute cmd on remote as the buildout user, in the buildout directory"""
    return c.buildout_run(" ".join(cmd), network=True)  # ad hoc: may download (tunnel)


@command
def sudo(c: Context, *cmd: str) -> Result:
    """Execute cmd on remote as root, through the login user's sudo"""
    script = " ".join(cmd)
    return c.sudo(RemoteCommand(script, cwd=str(c.path), cwd_optional=True, sudo=True,
                                network=True))


@command(quiet=True)
def deploy(c: Context) -> None:
    """predeploy, uploadeggs, uploadbuildout, buildout and then postdeploy"""
    c.commands.predeploy()
    c.commands.uploadeggs()
    c.commands.uploadbuildout()
    if _build.built_already(c):
        c.report("nothing changed since the last successful build; not rebuilding "
                 f"(bin/hostout {c.name} buildout forces it)")
    else:
        c.commands.buildout()
    c.commands.postdeploy()


@command(quiet=True)
def predeploy(c: Context) -> None:
    """Install buildout and its dependencies if needed. Hookpoint for plugins"""
    # first: a cfg that does not build here stops the deploy before anything is uploaded
    _shipping.resolution(c)
    drift = _bootstrap.drift(c)
    if not drift.bootstrapped:
        c.report(f"no {c.settings.layout.buildout_script} yet: bootstrapping")
        c.commands.bootstrap()
        return
    # bootstrap follows the options: a changed python-version or system-packages, or new
    # versions of zc.buildout & co. here, are applied now
    version = c.settings.python_version
    if drift.needs_python(version):
        c.commands.bootstrap_python()
    digest = _bootstrap.pins_digest(_bootstrap.bootstrap_pins(c), version)
    if drift.needs_buildout(version, digest):
        c.commands.bootstrap_buildout()


@command(quiet=True)
def bootstrap(c: Context) -> None:
    """Install python and users needed to run buildout"""
    c.commands.bootstrap_users()
    c.commands.bootstrap_python()
    c.commands.bootstrap_buildout()


@command(quiet=True)
def bootstrap_users(c: Context) -> None:
    """create buildout and the effective user and allow hostout access"""
    if _hostos.dispatch(c, "bootstrap_users"):  # a plugin's bootstrap_users_<hostos>
        return
    _accounts.bootstrap_users(c)


@command(quiet=True)
def bootstrap_python(c: Context) -> None:
    """Install the python-version this buildout needs with the OS's package manager"""
    # a plugin's bootstrap_python_<hostos>, as in hostout 1 when the Python is missing
    chosen = _hostos.dispatch(c, "bootstrap_python",
                              needed=lambda: _hostos.remote_target(c) is None)
    if chosen:
        _hostos.require_python(c, chosen)
        _bootstrap.install_missing_packages(c)
        return
    _bootstrap.bootstrap_python(c)


@command(quiet=True)
def bootstrap_buildout(c: Context) -> None:
    """Make path a venv with zc.buildout and setuptools pinned as the local buildout's"""
    if _hostos.dispatch(c, "bootstrap_buildout"):  # a plugin's bootstrap_buildout_<hostos>
        return
    _bootstrap.bootstrap_buildout(c)


@command(quiet=True)
def uploadeggs(c: Context) -> dict[str, str]:
    """Any develop eggs are released as eggs and uploaded to the server"""
    return _shipping.uploadeggs(c)


@command(quiet=True)
def uploadbuildout(c: Context) -> None:
    """Upload buildout pinned to local picked versions + uploaded eggs"""
    _shipping.uploadbuildout(c)


@command(quiet=True)
def buildout(c: Context, *args: str) -> None:
    """Run the buildout on the remote server"""
    _build.run_buildout(c, *args)


@command(quiet=True)
def postdeploy(c: Context) -> None:
    """Perform any final plugin tasks"""


@command(quiet=True)
def setowners(c: Context) -> None:
    """Ensure ownership and permissions are correct on buildout and cache"""
    a = _accounts.setowners(c)
    c.report(f"code {a.buildout_user}:{a.group}, read-only to the group; var/ "
             f"{a.effective_user}:{a.group}")


@command(quiet=True)
def docker(c: Context) -> str:
    """Build this part's image (hostout/PART) with the deploy's steps, layer by layer"""
    try:
        from ..images import build as _images
    except ImportError as err:
        if err.name != "docker":
            raise
        raise ConfigError("the docker command needs the docker package: pip install "
                          "'collective.hostout[docker]'", host=c.name) from None
    return _images.docker(c).reference


@command(quiet=True)
def compose(c: Context, file: str = "docker-compose.yml") -> str:
    """Write docker-compose.yml running these parts' images (podman-compose / docker compose)"""
    return str(_compose.compose(c, file))
