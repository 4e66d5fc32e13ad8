"""Built-in commands hostout 1 had besides deploy's, for plugins that call them
(``api.env.hostout.install_bootscript(...)``) and for people: boot scripts, the server's OS,
commands that escalate, ownership."""

from __future__ import annotations

from pathlib import PurePosixPath

from ..commands.context import Context
from ..commands.registry import command
from ..errors import CommandFailed, NotBootstrapped
from ..legacy import operations as _ops
from ..legacy.users import asbuildoutuser as _asbuildoutuser
from ..remote.base import Result
from ..shell import Account, RemoteCommand, q
from ..steps import bootscripts as _bootscripts
from ..steps import hostos as _hostos


@command
def install_bootscript(c: Context, startcmd: str, stopcmd: str, prefname: str = "") -> str:
    """Start the buildout on boot: startcmd/stopcmd run as root in path"""
    name = _bootscripts.name_for(c, prefname)
    how = _bootscripts.install(c, name, startcmd, stopcmd)
    way = f"systemd unit {name}.service" if how == "systemd" else "root's crontab, @reboot"
    c.report(f"{name} starts on boot ({way})")
    return name


@command
def uninstall_bootscript(c: Context, prefname: str = "") -> None:
    """Remove a boot script installed by install_bootscript (or hostout 1)"""
    name = _bootscripts.name_for(c, prefname)
    _bootscripts.uninstall(c, name)
    c.report(f"{name} no longer starts on boot")


@command
def bootscript_list(c: Context) -> list[str]:
    """Lists the buildout boot scripts installed on the host"""
    found = _bootscripts.listing(c)
    for name, how in found:
        c.out.line(c.name, f"{name} ({how})")
    if not found:
        c.out.line(c.name, "no boot scripts")
    return [name for name, _ in found]


@command
def detecthostos(c: Context) -> str:
    """The server's OS (hostos, else its os-release ID), e.g. debian or ubuntu"""
    found = _hostos.detect(c).lower()
    c.out.line(c.name, f"Detected hostos = {found}")
    return found


@command
def runescalatable(c: Context, *cmd: str) -> Result:
    """Run cmd in path as the buildout user, else the login user, else root"""
    script = " ".join(cmd)
    same = (c.settings.buildout_user or c.remote.login_user) == c.remote.login_user
    for account in (Account.LOGIN,) if same else (Account.BUILDOUT, Account.LOGIN):
        attempt = RemoteCommand(script, cwd=str(c.path), cwd_optional=True, account=account)
        try:  # a failed attempt's output is in the log (and shown with -v) only
            res = c.remote.execute(attempt, warn=True, hide=True)
        except NotBootstrapped:
            continue  # the buildout user cannot log in yet: escalate
        if res.ok:
            for line in res.stdout.splitlines():
                c.out.output(c.name, line)
            return res
    return c.sudo(RemoteCommand(script, cwd=str(c.path), cwd_optional=True, sudo=True))


def _flag(value: object) -> bool:
    return str(value).strip().lower() not in ("", "0", "false", "no", "off", "none")


@command
def requireOwnership(c: Context, file: str, user: str | None = None,
                     group: str | None = None, recursive: object = False) -> Result:
    """Make user (and/or group) own file, escalating as runescalatable does"""
    if user and group:
        owner, fmt = f"{user}:{group}", "%U:%G"
    elif user or group:
        owner, fmt = (user or f":{group}"), ("%U" if user else "%G")
    else:
        raise CommandFailed("requireOwnership needs a user or a group", host=c.name)
    want = owner.lstrip(":")
    script = (f'[ "$(stat -c {q(fmt)} {q(file)})" = {q(want)} ] || '
              f"chown {'-R ' if _flag(recursive) else ''}{q(owner)} {q(file)}")
    return c.call("runescalatable", script)


@command
def put(c: Context, file: str, target: str | None = None) -> list[str]:
    """Upload a file or directory (recursively) into the remote buildout folder"""
    c.require_path()
    where = PurePosixPath(target) if target else PurePosixPath(file).parent
    with _asbuildoutuser(), c.cd(str(c.path)):
        if str(where) != ".":
            c.run(f"mkdir -p {q(str(where))}", account=Account.BUILDOUT, hide=True)
        return list(_ops.put(file, f"{where}/"))


@command
def get(c: Context, file: str, target: str | None = None) -> list[str]:
    """Download a file or directory from the remote buildout folder"""
    with _asbuildoutuser(), c.cd(str(c.path)):
        return list(_ops.get(file, target or file))
