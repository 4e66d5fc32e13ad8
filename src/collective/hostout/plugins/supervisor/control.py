"""What hostout.supervisor does to a server, in one place.

The deploy hooks are :func:`before_switch` and :func:`after_switch` (the fabfile's
``preswitch`` and ``postswitch``): supervisord stops before the running buildout changes and
starts (or reloads) after it; with ``rollingrestart`` (in place only) it keeps running and
its programs are restarted one at a time afterwards.

supervisorctl runs as the buildout user (it talks to supervisord over its http server), or
as root with ``sudosupervisor``; supervisord itself runs as the effective user, or as root
with ``sudosupervisor``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from ...commands.context import Context
from ...config.settings import SAFE_PART, boolean, seconds
from ...errors import CommandFailed, ConfigError, HostoutError
from ...remote.base import Result
from ...server import system
from ...shell import Account, RemoteCommand, join, last_line, q
from ...steps import build
from ...steps.accounts import accounts


class SupervisorError(HostoutError):
    """supervisord would not stop or start, or a program would not run."""


#: supervisorctl's process states; the first three are on their way somewhere else.
MOVING = ("STARTING", "BACKOFF", "STOPPING")
STATES = (*MOVING, "RUNNING", "STOPPED", "EXITED", "FATAL", "UNKNOWN")
_STATUS = re.compile(rf"^(?P<name>\S+)\s+(?P<state>{'|'.join(STATES)})\b", re.M)
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Supervisor:
    """The plugin's options, checked (hostout 1's names)."""

    part: str  # the buildout part building supervisord: bin/<part>d, bin/<part>ctl
    as_root: bool  # sudosupervisor: supervisord runs as root, supervisorctl through sudo
    rolling: bool  # rollingrestart
    timeout: float  # seconds to wait for supervisord to stop, and for programs to start

    @classmethod
    def of(cls, options: Mapping[str, str], host: str) -> Supervisor:
        root_part = (options.get("sudosupervisor") or "").strip()
        part = root_part or (options.get("supervisor") or "").strip() or "supervisor"
        option = "sudosupervisor" if root_part else "supervisor"
        if not SAFE_PART.match(part):
            raise ConfigError(f"option {option} = {part!r} is not a buildout part name",
                              host=host)
        timeout = seconds(options, "supervisor-timeout", str(DEFAULT_TIMEOUT), host)
        return cls(part, bool(root_part),
                   boolean(options.get("rollingrestart"), "rollingrestart", host), timeout)

    def daemon(self, path: PurePosixPath) -> PurePosixPath:
        return path / "bin" / f"{self.part}d"

    def ctl(self, path: PurePosixPath) -> PurePosixPath:
        return path / "bin" / f"{self.part}ctl"


def settings(c: Context) -> Supervisor:
    return Supervisor.of(c.options, c.name)


# -- supervisorctl ----------------------------------------------------------------------------
def ctl_command(c: Context, sup: Supervisor, args: Sequence[str]) -> RemoteCommand:
    script = join([str(sup.ctl(c.path)), *args])
    if sup.as_root:
        return RemoteCommand(script, cwd=str(c.path), sudo=True)
    return RemoteCommand(script, cwd=str(c.path), account=Account.BUILDOUT)


def ctl(c: Context, sup: Supervisor, *args: str, quiet: bool = True,
        warn: bool = True) -> Result:
    """supervisorctl ARGS on the server; ``quiet``: its output only in -v and the log."""
    return c.remote.execute(ctl_command(c, sup, args), warn=warn, hide=quiet, echo=not quiet)


def interactive(c: Context, sup: Supervisor, *args: str) -> Result:
    """supervisorctl ARGS for a person: output shown; a failure is one clear line."""
    c.require_path()
    try:
        return ctl(c, sup, *args, quiet=False, warn=False)
    except CommandFailed as err:
        if err.exit_status == 127:  # the shell found no bin/<part>ctl
            raise SupervisorError(
                f"no {sup.ctl(c.path)}: is the part {sup.part} (option "
                f"{'sudosupervisor' if sup.as_root else 'supervisor'}) in the deployed "
                "buildout, and deployed?", host=c.name, cause=err) from err
        raise


def running_pid(c: Context, sup: Supervisor) -> int | None:
    """supervisord's pid, or None when it does not answer (or is not even built yet)."""
    res = ctl(c, sup, "pid")
    text = res.stdout.strip()
    return int(text) if res.ok and text.isdigit() and int(text) > 0 else None


def statuses(c: Context, sup: Supervisor) -> dict[str, str] | None:
    """Each program's state, or None while supervisord does not answer."""
    res = ctl(c, sup, "status")
    found = {m["name"]: m["state"] for m in _STATUS.finditer(res.stdout)}
    if not found and not res.ok:
        return None
    return found


# -- stopping, starting -------------------------------------------------------------------------
def stop(c: Context, sup: Supervisor) -> int | None:
    """Shut supervisord (and its programs) down and wait until it has exited. Returns the pid
    it had, or None when it was not running (a first deploy)."""
    pid = running_pid(c, sup)
    if pid is None:
        return None
    ctl(c, sup, "shutdown", warn=False)
    tries = max(1, int(sup.timeout * 2))
    gone = c.remote.execute(RemoteCommand(
        f"for i in $(seq {tries}); do [ -d /proc/{pid} ] || exit 0; sleep 0.5; done; exit 1",
        account=Account.BUILDOUT), warn=True, hide=True, echo=False)
    if not gone.ok:
        raise SupervisorError(f"supervisord (pid {pid}) still runs {sup.timeout:.0f} s after "
                              "'supervisorctl shutdown'", host=c.name)
    c.report(f"stopped supervisord (pid {pid})")
    return pid


def daemon_command(c: Context, sup: Supervisor) -> tuple[RemoteCommand, str]:
    """The command starting supervisord, and as whom it runs."""
    script = q(sup.daemon(c.path))
    if sup.as_root:
        return RemoteCommand(script, cwd=str(c.path), sudo=True), "root"
    a = accounts(c)
    if a.effective_user == a.buildout_user:
        return RemoteCommand(script, cwd=str(c.path), account=Account.BUILDOUT), a.buildout_user
    return (RemoteCommand(script, cwd=str(c.path), sudo=True, sudo_user=a.effective_user),
            a.effective_user)


def start(c: Context, sup: Supervisor) -> str:
    """Start supervisord, or reload it when it runs (a new configuration, every program
    restarted); then wait for its programs. Returns what it did."""
    if running_pid(c, sup) is not None:
        ctl(c, sup, "reload", warn=False)
        done = "reloaded supervisord"
    else:
        cmd, user = daemon_command(c, sup)
        res = c.remote.execute(cmd, warn=True, hide=True, echo=False)
        if not res.ok:
            said = last_line(res.stderr) or last_line(res.stdout) or f"exit {res.exited}"
            raise SupervisorError(f"{sup.daemon(c.path)} did not start as {user}: {said}",
                                  host=c.name)
        done = f"started supervisord as {user}"
    return f"{done}: {describe(wait_for_programs(c, sup))}"


def wait_for_programs(c: Context, sup: Supervisor) -> dict[str, str]:
    """Wait until no program is starting, backing off or stopping; a program that ends
    FATAL (or still backs off at the timeout) is an error naming it."""
    deadline = time.monotonic() + sup.timeout
    while True:
        found = statuses(c, sup)
        settled = found is not None and not any(s in MOVING for s in found.values())
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if found is None:
        raise SupervisorError(f"supervisord does not answer {sup.timeout:.0f} s after it was "
                              f"started (see its log: bin/hostout {c.name} tail)", host=c.name)
    bad = {n: s for n, s in found.items() if s in ("FATAL", "BACKOFF", "STARTING", "UNKNOWN")}
    if bad:
        names = ", ".join(f"{n} {s}" for n, s in bad.items())
        first = next(iter(bad))
        raise SupervisorError(f"not running after {sup.timeout:.0f} s: {names} (see bin/hostout "
                              f"{c.name} tail {first})", host=c.name)
    return found


def describe(found: Mapping[str, str]) -> str:
    return ", ".join(f"{n} {s}" for n, s in found.items()) or "no programs"


def rolling_restart(c: Context, sup: Supervisor) -> str:
    """supervisord keeps running: changed programs are updated (reread, update) and the
    others restarted one at a time, each running again before the next goes down."""
    if running_pid(c, sup) is None:
        return start(c, sup)
    ctl(c, sup, "reread", warn=False)
    updated = ctl(c, sup, "update", warn=False).stdout
    changed = set(re.findall(r"^(\S+?): (?:updated|added) process group", updated, re.M))
    found = statuses(c, sup) or {}
    restarted = []
    for name in found:
        if name.split(":")[0] in changed:
            continue
        res = ctl(c, sup, "restart", name)
        if not res.ok or "ERROR" in res.stdout:
            said = last_line(res.stdout) or last_line(res.stderr)
            raise SupervisorError(f"rolling restart stopped at {name}: {said}", host=c.name)
        restarted.append(name)
        wait_for_programs(c, sup)
    parts = []
    if changed:
        parts.append(f"updated {', '.join(sorted(changed))}")
    if restarted:
        parts.append(f"restarted {', '.join(restarted)} one at a time")
    state = describe(wait_for_programs(c, sup))
    return f"rolling restart: {'; '.join(parts) or 'nothing to restart'}: {state}"


# -- the deploy hook ----------------------------------------------------------------------------
def before_switch(c: Context) -> None:
    """Before the new build takes over: stop supervisord (not with rollingrestart). If it
    will need sudo to start again, sudo is tried first: a deploy that could not start the
    app again fails before it stops it."""
    sup = settings(c)
    cmd, _ = daemon_command(c, sup)
    if cmd.sudo:
        c.remote.execute(replace(cmd, script="true"), hide=True, echo=False)
    if not rolling(c, sup):
        stop(c, sup)


def after_switch(c: Context) -> None:
    """After it: start or reload supervisord, or restart its programs one at a time."""
    sup = settings(c)
    cmd, _ = daemon_command(c, sup)
    if cmd.sudo_user and not build.uses_sudo(c):
        # the build ran without sudo, so nobody gave var/ to the user supervisord runs as
        c.commands.setowners()
    c.report(rolling_restart(c, sup) if rolling(c, sup) else start(c, sup))


def rolling(c: Context, sup: Supervisor) -> bool:
    """Whether this deploy restarts programs one at a time. Not across releases: a running
    supervisord keeps the configuration of the release it started from (reread and update
    read that file again), so its programs would run the old release's code; it is stopped
    and started from the new release instead, with a warning."""
    if sup.rolling and c.settings.layout.releases:
        if not c.state(_Warned).rolling:
            c.state(_Warned).rolling = True
            c.warn("rollingrestart applies in place only (releases = false): supervisord was "
                   "restarted from the new release")
        return False
    return sup.rolling


@dataclass
class _Warned:
    rolling: bool = False


# -- start on boot ------------------------------------------------------------------------------
BOOT_PROBE = ("if [ -d /run/systemd/system ]; then echo systemd; "
              "elif command -v crontab >/dev/null 2>&1; then echo cron; else echo none; fi")


def unit_name(c: Context, sup: Supervisor) -> str:
    return f"hostout-{c.name}-{sup.part}.service"


def boot_user(c: Context, sup: Supervisor) -> str:
    return "root" if sup.as_root else accounts(c).effective_user


def unit_text(c: Context, sup: Supervisor) -> str:
    path = c.path
    return "\n".join([
        "[Unit]",
        f"Description=supervisord of {path} (hostout {c.name})",
        "After=network.target",
        "",
        "[Service]",
        "Type=forking",
        f"User={boot_user(c, sup)}",
        f"WorkingDirectory={path}",
        f"ExecStart={sup.daemon(path)}",
        f"ExecStop={sup.ctl(path)} shutdown",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


def cron_mark(c: Context, sup: Supervisor) -> str:
    return f"# hostout {c.name} {sup.part}"


def cron_line(c: Context, sup: Supervisor) -> str:
    return f"@reboot cd {q(c.path)} && {q(sup.daemon(c.path))} {cron_mark(c, sup)}"


def _crontab_edit(c: Context, sup: Supervisor, add: str | None) -> RemoteCommand:
    """Rewrite the boot user's crontab without hostout's line for this supervisord, then
    with ``add``: run as that user (crontab edits the caller's own table)."""
    mark = cron_mark(c, sup)
    lines = ["set -e", 'tmp=$(mktemp)',
             f'crontab -l 2>/dev/null | grep -vF -- {q(mark)} > "$tmp" || true']
    if add:
        lines.append(f"printf '%s\\n' {q(add)} >> \"$tmp\"")
    lines += ['crontab "$tmp"', 'rm -f "$tmp"']
    user = boot_user(c, sup)
    return RemoteCommand("\n".join(lines), sudo=True,
                         sudo_user=None if user == "root" else user)


def install_boot(c: Context, sup: Supervisor) -> str:
    """Start supervisord on boot: a systemd unit where systemd runs, else an @reboot line in
    the crontab of the user it runs as (cron is installed first when missing)."""
    c.require_path()
    method = c.remote.execute(RemoteCommand(BOOT_PROBE), hide=True, echo=False).stdout.strip()
    if method == "systemd":
        unit = unit_name(c, sup)
        target = PurePosixPath("/etc/systemd/system") / unit
        c.remote.execute(RemoteCommand(
            f"set -e\nprintf '%s' {q(unit_text(c, sup))} > {q(target)}\n"
            f"systemctl daemon-reload\nsystemctl enable {q(unit)}", sudo=True))
        return f"systemd starts supervisord on boot ({unit}, as {boot_user(c, sup)})"
    installed = ""
    if method != "cron":
        release = system.OsRelease.parse(c.run("cat /etc/os-release", hide=True).stdout)
        for cmd in system.install_packages(release, ("cron",), c.settings.hostos):
            c.remote.execute(cmd)
        installed = " (installed cron: no systemd here)"
    c.remote.execute(_crontab_edit(c, sup, cron_line(c, sup)))
    return (f"cron starts supervisord on boot (@reboot in {boot_user(c, sup)}'s "
            f"crontab){installed}")


def remove_boot(c: Context, sup: Supervisor) -> str:
    unit = unit_name(c, sup)
    target = PurePosixPath("/etc/systemd/system") / unit
    c.remote.execute(RemoteCommand(
        f"if [ -e {q(target)} ]; then systemctl disable {q(unit)} >/dev/null 2>&1 || true; "
        f"rm -f {q(target)}; systemctl daemon-reload 2>/dev/null || true; fi", sudo=True))
    has_cron = c.remote.execute(RemoteCommand("command -v crontab"), warn=True, hide=True,
                                echo=False).ok
    if has_cron:
        c.remote.execute(_crontab_edit(c, sup, None))
    return "supervisord is no longer started on boot"
