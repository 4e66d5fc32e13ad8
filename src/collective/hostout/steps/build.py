"""The remote build (the ``buildout`` command), in either layout, and the marker that lets an
unchanged deploy skip it.

Release layout (``releases = true``): a new release directory is made from the staged cfg
files and built while the current release keeps serving; only when the build succeeded:
pre-commands (in the current release), the atomic switch, post-commands (in the new one),
the health check (a failure switches back), and pruning of old releases. A failed build
never stops, switches or restarts anything.

In-place layout (``releases = false``): pre-commands, ``bin/buildout`` in ``path``,
post-commands (even after a failed build, to bring the app back), the health check.

Either way the build runs *tethered* to its SSH connection: if the connection goes (Ctrl-C,
a killed bin/hostout, a cut network), the build's process group is stopped within a second
instead of running on unseen.
"""

from __future__ import annotations

import re
import time

from ..commands.context import Context
from ..errors import HealthCheckFailed, HostoutError
from ..shell import Account, RemoteCommand, join, q
from . import health, lock, releases
from .accounts import setowners
from .base import state
from .shipping import BUILD_ENV, remote_pins

MARKER = releases.BUILT  # in path (in place) or the release: the digest of its inputs
SUDO_INSTALLED = ".installed-sudo.cfg"  # buildout's record of the sudo-parts


def tethered(script: str) -> str:
    """Shell text running ``script`` in a process group of its own that is stopped if this
    command's SSH connection goes away (when there is no sshd above it: plainly)."""
    return "\n".join([
        lock.SESSION_SH,
        "sess=$(session)",
        "if [ -z \"$sess\" ] || ! command -v setsid >/dev/null 2>&1; then",
        f"  {script}",
        "  exit $?",
        "fi",
        f"setsid sh -c {q(script)} &",
        "child=$!",
        "set -- $sess",
        "( while kill -0 \"$child\" 2>/dev/null; do",
        "    if [ ! -d \"/proc/$1\" ]; then kill -TERM -- \"-$child\" 2>/dev/null; exit; fi",
        "    sleep 1",
        "  done ) &",
        "watch=$!",
        "wait \"$child\"; rc=$?",
        "kill \"$watch\" 2>/dev/null",
        "exit $rc",
    ])


# -- the unchanged deploy ----------------------------------------------------------------------
def built_already(c: Context) -> bool:
    """True when the server's current build had exactly these inputs."""
    digest = state(c).build_digest
    if digest is None:
        return False
    lay = c.settings.layout
    where = lay.current if lay.releases else lay.path
    script = (f"echo \"current $(readlink {q(lay.current)} 2>/dev/null)\"; "
              f"echo \"built $(cat {q(where / MARKER)} 2>/dev/null)\"")
    res = c.remote.execute(RemoteCommand(script, account=Account.BUILDOUT, reads_only=True),
                           warn=True, hide=True, echo=False)
    said: dict[str, str] = dict(line.partition(" ")[::2] for line in res.stdout.splitlines())
    same = res.ok and said.get("built", "").strip() == digest
    held = lock.held(c)
    if same and held is not None:
        current = said.get("current", "").strip()
        held.entry.release = held.entry.previous = current.rsplit("/", 1)[-1] or None
        held.entry.result = "unchanged"
        held.entry.versions = releases.versions_digest(remote_pins(c))
        held.entry.develop = {r.name: r.version for r in c.packager.releases()}
    return same


def record_build(c: Context, where: str | None = None) -> None:
    digest = state(c).build_digest
    if digest is not None:
        marker = f"{where or c.settings.layout.path}/{MARKER}"
        c.remote.execute(RemoteCommand(f"printf '%s\\n' {q(digest)} > {q(marker)}",
                                       account=Account.BUILDOUT), echo=False)


_PART = re.compile(r"^(Installing|Updating|Uninstalling) ([^ ]+)\.$", re.M)


def build_summary(output: str, seconds: float) -> str:
    """``installed demo, pasterini; updated supervisor (4.1 s)`` from buildout's output."""
    done: dict[str, list[str]] = {}
    for verb, part in _PART.findall(output):
        names = done.setdefault(verb, [])
        if part not in names:
            names.append(part)
    words = {"Installing": "installed", "Updating": "updated", "Uninstalling": "removed"}
    said = [f"{words[verb]} {', '.join(parts)}" for verb, parts in done.items()]
    return f"{'; '.join(said) or 'nothing to do'} ({seconds:.1f} s)"


# -- the commands, as data (deploy runs them; plan shows them) ---------------------------------
def user_commands(c: Context, commands: tuple[str, ...], cwd: str | None = None
                  ) -> list[RemoteCommand]:
    """pre-/post-commands: as root, in path (the running buildout)."""
    return [RemoteCommand(command, cwd=cwd or str(c.path), sudo=True) for command in commands]


def build_command(c: Context, cwd: str, *args: str) -> RemoteCommand:
    lay = c.settings.layout
    # umask 027: what the build writes is the group's to read and nobody else's
    script = f"{q(lay.buildout_script)} -c hostout.cfg {join(args)}".rstrip()
    return RemoteCommand(f"umask 027 && {tethered(script)}", cwd=cwd, env=BUILD_ENV,
                         account=Account.BUILDOUT, network=True,
                         label=f"umask 027 && {script}  # stopped if the connection goes")


def sudo_parts_command(c: Context, cwd: str) -> RemoteCommand | None:
    """root's parts keep their own installed file, so the buildout user's next run neither
    uninstalls them nor touches what root made."""
    if not c.settings.sudo_parts:
        return None
    lay = c.settings.layout
    script = (f"umask 027 && {q(lay.buildout_script)} -c hostout.cfg "
              f"buildout:installed={SUDO_INSTALLED} install {join(c.settings.sudo_parts)}")
    return RemoteCommand(script, cwd=cwd, env=BUILD_ENV, sudo=True, network=True)


def run_commands(c: Context, label: str, commands: tuple[str, ...],
                 cwd: str | None = None) -> list[str]:
    """pre-/post-commands: failures are reported, listed in the summary and ignored (the
    seed)."""
    failed = []
    for cmd in user_commands(c, commands, cwd):
        res = c.remote.execute(cmd, warn=True)
        if not res.ok:
            failed.append(cmd.script)
            c.warn(f"{label} '{cmd.script}' exited {res.exited} (ignored)")
    return failed


def root_processes(c: Context) -> list[str]:
    """The command lines of processes running as root from this buildout (their command
    line names ``path``, or ``path.hostout`` where releases live): post-commands run as root
    (the seed), so an app they start (``bin/supervisord``) runs as root too, unless it drops
    to its own user. Read from /proc by the login user (no ps on a minimal server)."""
    script = (f"for d in /proc/[0-9]*; do [ \"$(stat -c %u \"$d\" 2>/dev/null)\" = 0 ] || "
              "continue; a=$(tr '\\0' ' ' < \"$d/cmdline\" 2>/dev/null); "
              f"case \"$a\" in *{q(str(c.path))}*) printf '%s\\n' \"$a\";; esac; done; true")
    res = c.remote.execute(RemoteCommand(script, reads_only=True, label="root processes "
                                         f"from {c.path}"), warn=True, hide=True, echo=False)
    return [line.strip() for line in res.stdout.splitlines() if line.strip()]


def warn_root_processes(c: Context) -> None:
    """A warning for each app process that post-commands left running as root: the app
    should run as the effective user (never root), which cannot change the code it runs."""
    found = root_processes(c)
    if found:
        user = c.settings.effective_user or c.remote.login_user
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        c.warn(f"runs as root: {found[0]}{more}; start the app as {user} instead (e.g. "
               "extends = hostout.supervisor, or 'sudo -u USER' in post-commands)")


def uses_sudo(c: Context) -> bool:
    """Whether this deploy needs the login user's sudo anyway (the seed: pre/post-commands,
    sudo-parts, bootstrap), or has its password: then ownership is put right every time."""
    s = c.settings
    return bool(s.pre_commands or s.post_commands or s.sudo_parts or s.password
                or state(c).bootstrapped)


def _build(c: Context, cwd: str, *args: str) -> str:
    """bin/buildout, the sudo-parts, ownership; a one-line summary."""
    began = time.monotonic()
    result = c.remote.execute(build_command(c, cwd, *args))
    summary = build_summary(result.stdout + result.stderr, time.monotonic() - began)
    root = sudo_parts_command(c, cwd)
    if root is not None and not args:  # `buildout install x` is not the whole build
        c.remote.execute(root)
    if uses_sudo(c):
        setowners(c, code=cwd if c.settings.layout.releases and not args else None)
    else:
        c.out.info("no sudo in this deploy; run 'setowners' if the app must own new "
                   "files in var/", level=2, host=c.name)
    return summary


# -- the buildout command ----------------------------------------------------------------------
def run_buildout(c: Context, *args: str) -> None:
    """The whole build of a new release (release layout, no arguments), or buildout in path
    (in place; or with arguments, e.g. ``buildout -N install part``, in the current
    release)."""
    if c.settings.layout.releases and not args:
        build_release(c)
    else:
        build_in_place(c, *args)


def build_in_place(c: Context, *args: str) -> None:
    lay = c.settings.layout
    with lock.critical(c):
        c.commands.preswitch()
        try:
            if not args:
                c.remote.execute(RemoteCommand(f"rm -f {q(MARKER)}", cwd=str(lay.path),
                                               account=Account.BUILDOUT), echo=False)
            c.report(_build(c, str(lay.path), *args))
            if not args:  # `buildout install x` or `annotate` is not the whole build
                record_build(c)
        except BaseException:
            # Even after a failed build, bring the application back up as best we can; the
            # build's error is the one reported.
            try:
                c.commands.postswitch()
            except HostoutError as err:
                c.warn(f"after the failed build, postswitch: {err.message}")
            raise
        c.commands.postswitch()
    if not args:
        check_health(c)


def check_health(c: Context) -> health.Health | None:
    """Wait for the health check; HealthCheckFailed naming the last answer."""
    lock.checkpoint(c)
    found = health.wait(c)
    if found is not None and not found.ok:
        raise HealthCheckFailed(_unhealthy(c, found), host=c.name)
    return found


def _unhealthy(c: Context, found: health.Health) -> str:
    return (f"health check {health.what(c)} failed for {c.settings.healthcheck_timeout:g} s;"
            f" last answer: {found.answer}")


def build_release(c: Context) -> str:
    """Build a new release beside the current one, then switch to it; its id."""
    lay = c.settings.layout
    server = releases.probe(c)
    releases.expect(c, server)
    pins = remote_pins(c)
    meta = releases.metadata(c, pins, state(c).build_digest)
    held = lock.held(c)
    takeover = server.kind == "inplace"
    if held is not None:
        held.entry.previous = server.current
        held.entry.versions = meta["versions"]
        held.entry.develop = dict(meta["develop"])
    lock.checkpoint(c)
    rid = releases.create(c, meta)
    if held is not None:
        held.entry.release = rid
    cwd = str(lay.release(rid))
    try:
        summary = _build(c, cwd)
        record_build(c, cwd)
    except HostoutError as err:
        releases.mark_failed(c, rid, f"build failed: {err.message}")
        raise
    old_id = releases.takeover_id(server, rid) if takeover else None
    previous = old_id or server.current
    switched = False
    try:
        with lock.critical(c):
            if server.current is not None or takeover:
                c.commands.preswitch()
            if old_id is not None:
                releases.takeover_switch(c, rid, old_id, {
                    "created": releases.utc(server.inplace_built_at or 0),
                    "by": "(in place)",
                    "note": "the in-place buildout, taken over by the first release"})
            else:
                releases.switch(c, rid)
            switched = True
            c.commands.postswitch()
    except HostoutError as err:
        if not switched:  # built, never current: not one to roll back to either
            releases.mark_failed(c, rid, f"not switched to: {err.message}")
            raise
        # the new release could not be brought up (a plugin's start failed): as unhealthy
        _roll_back(c, rid, previous, f"postswitch failed: {err.message}",
                   f"postswitch failed: {err.message}")
    said = [f"release {rid}: {summary}",
            f"switched from {previous}" if previous else "now current"]
    if old_id is not None:
        said[-1] = f"took over the in-place buildout (now release {old_id})"
    lock.checkpoint(c)
    found = health.wait(c)
    if found is not None:
        if not found.ok:
            _roll_back(c, rid, previous, _unhealthy(c, found),
                       f"health check failed: {found.answer}")
        said.append(f"healthy: {found.answer} after {found.seconds:.1f} s")
    made = releases.ReleaseInfo(rid, meta, built=state(c).build_digest)
    known = [r for r in server.releases if r.id != rid]
    if old_id is not None:
        known.append(releases.ReleaseInfo(old_id, {}, built="in place"))
    now = releases.ServerLayout("releases", rid, tuple(sorted(
        [*known, made], key=lambda r: releases.sort_key(r.id))))
    said += _pruned(c, releases.prune(c, now, protect=(rid,)))
    c.report("; ".join(said))
    return rid


def _roll_back(c: Context, rid: str, previous: str | None, problem: str, why: str) -> None:
    """The new release failed its health check, or could not be brought up (postswitch
    failed): back to the previous one (preswitch, switch, postswitch), and say so in the
    error. ``problem`` is the error's text, ``why`` the failed release's note."""
    if previous is None:
        raise HealthCheckFailed(f"{problem}; no previous release to roll back to: {rid} "
                                "stays current", host=c.name)
    with lock.critical(c):
        c.commands.preswitch()
        releases.switch(c, previous)
        c.commands.postswitch()
    releases.mark_failed(c, rid, f"{why}; rolled back")
    held = lock.held(c)
    if held is not None:
        held.entry.result = "rolled back"
    again = health.wait(c)
    back = ("" if again is None else f", which answers {again.answer}" if again.ok
            else f", which fails the health check too: {again.answer}")
    raise HealthCheckFailed(f"{problem}; rolled back to {previous}{back} (release {rid} is "
                            "kept, marked failed)", host=c.name)


def _pruned(c: Context, pruned: releases.Pruned) -> list[str]:
    said = []
    if pruned.removed:
        said.append(f"pruned {', '.join(pruned.removed)}")
    for busy in pruned.in_use:
        rid, _, why = busy.partition(" ")
        said.append(f"kept {rid}: in use by {why}")
    for failure in pruned.failed:
        c.warn(f"could not prune release {failure}")
    return said


# -- rollback ----------------------------------------------------------------------------------
def rollback(c: Context, wanted: str | None = None) -> str:
    """Back to the previous (or the named) release: pre-commands, switch, post-commands,
    the health check; no build. The release now current."""
    server = releases.probe(c)
    target = releases.choose(c, server, wanted)
    held = lock.held(c)
    if held is not None:
        held.entry.previous = server.current
        held.entry.release = target.id
        held.entry.versions = target.meta.get("versions")
        held.entry.develop = target.develop
    began = time.monotonic()
    with lock.critical(c):
        c.commands.preswitch()
        releases.switch(c, target.id)
        c.commands.postswitch()
    said = f"{target.id} is current (was {server.current}), {time.monotonic() - began:.1f} s"
    found = check_health(c)
    if found is not None:
        said += f"; healthy: {found.answer} after {found.seconds:.1f} s"
    c.report(said)
    return target.id
