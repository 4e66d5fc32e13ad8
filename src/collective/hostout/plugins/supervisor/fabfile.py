"""The commands of hostout.supervisor (``extends = hostout.supervisor``).

The one deploy hook is the ``buildout`` override: supervisord stops before the build and
starts (or reloads) after it, where the pre- and post-commands run
(:func:`.control.around_switch`).
"""

from __future__ import annotations

from ...commands.context import Context
from ...commands.registry import command
from ...errors import UsageError
from ...remote.base import Result
from . import control


@command(quiet=True)
def buildout(c: Context, *args: str) -> None:
    """Run the buildout on the remote server, supervisord stopped meanwhile (hostout.supervisor)"""
    with control.around_switch(c):
        c.super(*args)


@command
def supervisorctl(c: Context, *args: str) -> Result:
    """Runs remote supervisorctl with the given arguments (default: status)"""
    return control.interactive(c, control.settings(c), *(args or ("status",)))


@command
def status(c: Context, *programs: str) -> Result:
    """supervisorctl status [program...]"""
    return control.interactive(c, control.settings(c), "status", *programs)


@command
def start(c: Context, *programs: str) -> Result:
    """supervisorctl start [program...] (default: all)"""
    return control.interactive(c, control.settings(c), "start", *(programs or ("all",)))


@command
def stop(c: Context, *programs: str) -> Result:
    """supervisorctl stop [program...] (default: all)"""
    return control.interactive(c, control.settings(c), "stop", *(programs or ("all",)))


@command
def restart(c: Context, *programs: str) -> Result:
    """supervisorctl restart [program...] (default: all)"""
    return control.interactive(c, control.settings(c), "restart", *(programs or ("all",)))


@command
def tail(c: Context, *args: str) -> Result:
    """supervisorctl tail [-f] program [stdout|stderr] (no program: supervisord's own log)"""
    if not [a for a in args if not a.startswith("-")]:
        return control.interactive(c, control.settings(c), "maintail", *args)
    return control.interactive(c, control.settings(c), "tail", *args)


@command(quiet=True)
def supervisorstartup(c: Context) -> None:
    """Start the supervisor daemon (reload it if it runs) and wait for its programs"""
    c.require_path()
    c.report(control.start(c, control.settings(c)))


@command(quiet=True)
def supervisorshutdown(c: Context) -> None:
    """Shutdown the supervisor daemon and its programs"""
    c.require_path()
    if control.stop(c, control.settings(c)) is None:
        c.report("supervisord was not running")


@command(quiet=True)
def supervisorboot(c: Context, action: str = "on") -> None:
    """Start supervisor on boot: systemd where it runs, else an @reboot crontab ('off' undoes)"""
    sup = control.settings(c)
    if action == "on":
        c.report(control.install_boot(c, sup))
    elif action == "off":
        c.report(control.remove_boot(c, sup))
    else:
        raise UsageError(f"supervisorboot takes on or off, not {action!r}", host=c.name)
