"""Boot scripts: start a buildout's service when the server boots (hostout 1's
``install_bootscript``).

Each is a root-owned shell script ``/etc/hostout/bootscripts/NAME`` (``start``, ``stop``,
``restart``) that runs the given commands as root in the buildout's ``path``, started on
boot by a systemd unit ``NAME.service`` (``Type=forking``, ``RemainAfterExit``: the
commands may start daemons and return, as an init script's did) where systemd runs, else
by an ``@reboot`` line in root's crontab. A server with neither is told so in one line.
Installing again replaces the script; uninstalling removes every trace, including a
hostout 1 ``/etc/init.d/NAME`` script.
"""

from __future__ import annotations

import re

from ..commands.context import Context
from ..errors import ConfigError, UnsupportedSystem
from ..shell import RemoteCommand, q

DIRECTORY = "/etc/hostout/bootscripts"
UNITS = "/etc/systemd/system"
#: The comment ending a crontab line hostout manages: ``# hostout:NAME``.
CRON_MARK = "# hostout:"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def name_for(c: Context, prefname: str = "") -> str:
    """``buildout-<prefname or part name>``, as hostout 1 named them."""
    name = f"buildout-{prefname or c.name}"
    if not SAFE_NAME.match(name):
        raise ConfigError(f"boot script name {name!r}: use letters, digits and ._- only",
                          host=c.name)
    return name


def script(name: str, path: str, start: str, stop: str) -> str:
    """The boot script: ``start``/``stop`` are shell text run as root in ``path``."""
    return "\n".join([
        "#!/bin/sh",
        f"# {name}: made by hostout install_bootscript; bin/hostout HOST "
        "uninstall_bootscript removes it",
        f"cd {q(path)} || exit 1",
        'case "$1" in',
        f"  start)\n{start}\n    ;;",
        f"  stop)\n{stop}\n    ;;",
        '  restart)\n    "$0" stop\n    "$0" start\n    ;;',
        '  *)\n    echo "usage: $0 start|stop|restart" >&2\n    exit 2\n    ;;',
        "esac",
        "",
    ])


def unit(name: str, path: str) -> str:
    """A systemd unit running the boot script as an init script would be run."""
    return "\n".join([
        "[Unit]",
        f"Description=buildout in {path} ({name}, installed by hostout)",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=forking",
        "RemainAfterExit=yes",
        "GuessMainPID=no",
        f"ExecStart={DIRECTORY}/{name} start",
        f"ExecStop={DIRECTORY}/{name} stop",
        "TimeoutSec=300",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


#: Prints how the server starts things on boot: systemd, cron or none.
DETECT = ("if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then "
          "echo systemd; elif command -v crontab >/dev/null 2>&1; then echo cron; "
          "else echo none; fi")


def install_script(name: str, path: str, start: str, stop: str, how: str) -> str:
    """Root shell text installing boot script ``name`` the ``how`` way (systemd, cron)."""
    target = f"{DIRECTORY}/{name}"
    lines = [
        "set -e",
        f"install -d -m 755 {q(DIRECTORY)}",
        f"printf '%s' {q(script(name, path, start, stop))} > {q(target)}.new",
        f"chmod 755 {q(target)}.new && mv -f {q(target)}.new {q(target)}",
    ]
    if how == "systemd":
        lines += [
            f"printf '%s' {q(unit(name, path))} > {q(f'{UNITS}/{name}.service')}",
            "systemctl daemon-reload",
            f"systemctl enable {q(name + '.service')}",
        ]
    else:
        line = f"@reboot {target} start {CRON_MARK}{name}"
        lines.append(f"{{ crontab -l 2>/dev/null | grep -vF {q(CRON_MARK + name)} || true; "
                     f"printf '%s\\n' {q(line)}; }} | crontab -")
    return "\n".join(lines)


def uninstall_script(name: str) -> str:
    """Root shell text removing boot script ``name`` however it was installed, hostout 1's
    /etc/init.d script included."""
    service = f"{name}.service"
    initd = f"/etc/init.d/{name}"
    return "\n".join([
        f"if [ -f {q(f'{UNITS}/{service}')} ]; then",
        f"  systemctl disable {q(service)} >/dev/null 2>&1 || true",
        f"  rm -f {q(f'{UNITS}/{service}')}",
        "  systemctl daemon-reload >/dev/null 2>&1 || true",
        "fi",
        f"if command -v crontab >/dev/null 2>&1 && crontab -l 2>/dev/null | "
        f"grep -qF {q(CRON_MARK + name)}; then",
        f"  crontab -l | grep -vF {q(CRON_MARK + name)} | crontab -",
        "fi",
        f"if [ -f {q(initd)} ]; then",
        f"  (command -v update-rc.d >/dev/null && update-rc.d -f {q(name)} remove) || "
        f"(command -v chkconfig >/dev/null && chkconfig --del {q(name)}) || true",
        f"  rm -f {q(initd)}",
        "fi",
        f"rm -f {q(f'{DIRECTORY}/{name}')}",
    ])


#: Lists ``NAME how`` for each boot script on the server.
LIST = "\n".join([
    f"for f in {DIRECTORY}/*; do",
    '  [ -f "$f" ] || continue',
    '  n=$(basename "$f")',
    f'  if [ -f "{UNITS}/$n.service" ]; then echo "$n systemd";',
    f'  elif crontab -l 2>/dev/null | grep -qF "{CRON_MARK}$n"; then echo "$n cron";',
    '  else echo "$n not-started-on-boot"; fi',
    "done",
    'for f in /etc/init.d/buildout-*; do [ -f "$f" ] && echo "$(basename "$f") init.d"; done',
    "true",
])


def install(c: Context, name: str, start: str, stop: str) -> str:
    """Install boot script ``name``; how it is started on boot (systemd or cron)."""
    how = c.remote.execute(RemoteCommand(DETECT), hide=True, echo=False).stdout.strip()
    if how not in ("systemd", "cron"):
        raise UnsupportedSystem(
            "install_bootscript: this server has neither systemd nor cron to start things "
            "on boot; install cron (system-packages = cron) and rerun", host=c.name)
    c.sudo(RemoteCommand(install_script(name, str(c.path), start, stop, how), sudo=True))
    return how


def uninstall(c: Context, name: str) -> None:
    c.sudo(RemoteCommand(uninstall_script(name), sudo=True))


def listing(c: Context) -> list[tuple[str, str]]:
    """(name, how it starts on boot) of every boot script on the server."""
    out = c.sudo(RemoteCommand(LIST, sudo=True), hide=True).stdout
    return [tuple(line.split(" ", 1)) for line in out.splitlines() if " " in line]  # type: ignore[misc]
