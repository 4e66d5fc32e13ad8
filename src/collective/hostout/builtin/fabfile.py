"""The built-in commands of every host (the seed's list). Plugins override any of them and
reach the original with ``c.super()``. Each is a thin wrapper over :mod:`..steps`.

Deploy's steps are quiet: each says what it did in one line (``c.report``); the commands
they run and their output show with ``-v`` and are always in the kept log."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ..commands.context import Context
from ..commands.registry import command
from ..errors import ConfigError, LayoutError, UsageError
from ..images import compose as _compose
from ..remote.base import Result
from ..shell import RemoteCommand
from ..steps import accounts as _accounts
from ..steps import bootstrap as _bootstrap
from ..steps import build as _build
from ..steps import health as _health
from ..steps import history as _history
from ..steps import hostos as _hostos
from ..steps import lock as _lock
from ..steps import plan as _plan
from ..steps import releases as _releases
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
    _accounts.accounts(c)  # a missing buildout-group: one line, before anything is locked
    _shipping.resolution(c)  # a cfg that does not build here: one line, before connecting
    with _lock.locked(c, "deploy"):
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
    if drift.path_kind == "symlink" and not c.settings.releases:
        raise LayoutError(f"{c.settings.path} is a symlink to a release (the release "
                          "layout), but this host part says releases = false; remove that "
                          "option to keep deploying releases", host=c.name)
    if not drift.bootstrapped:
        if not (drift.path_kind == "dir" and c.settings.releases):
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
    _accounts.accounts(c)  # a missing buildout-group: one line, before anything is locked
    with _lock.locked(c, "bootstrap"):
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
    """Run the buildout on the remote server (a new release, switched to once built)"""
    with _lock.locked(c, "buildout"):
        _build.run_buildout(c, *args)


@command(quiet=True)
def postdeploy(c: Context) -> None:
    """Perform any final plugin tasks"""


@command(quiet=True)
def preswitch(c: Context) -> None:
    """Hook point just before the running buildout changes (a new release, a rollback, an
    in-place build): runs pre-commands"""
    _build.run_commands(c, "pre-command", c.settings.pre_commands)


@command(quiet=True)
def postswitch(c: Context) -> None:
    """Hook point just after it changed (after a failed in-place build too): runs
    post-commands (and warns when they left the app running as root)"""
    _build.run_commands(c, "post-command", c.settings.post_commands)
    if c.settings.post_commands:
        _build.warn_root_processes(c)


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


# -- releases, the lock, history, plan ----------------------------------------------------------
@command(quiet=True)
def rollback(c: Context, release: str | None = None) -> str:
    """Back to the previous release (or RELEASE): pre-commands, switch, post-commands"""
    # bad input (no such release...) is one line, before anything is locked or changed
    _releases.choose(c, _releases.probe(c), release)
    with _lock.locked(c, "rollback"):
        return _build.rollback(c, release)


@command(quiet=True)
def releases(c: Context, *args: str) -> list[dict[str, object]]:
    """List the releases on the server: id, when, who, develop versions (--json)"""
    as_json = _flags(c, "releases", args, ("--json",))[0]
    server = _releases.probe(c)
    _releases.expect(c, server)
    if server.kind != "releases":
        raise LayoutError(f"no releases on {c.settings.path}" + (
            " (releases = false: it deploys in place)" if not c.settings.releases else
            ": nothing deployed yet" if server.kind == "none" else
            " yet: the next deploy takes the in-place buildout over"), host=c.name)
    rows: list[dict[str, object]] = []
    lines = []
    for r in server.releases:
        by, origin = r.meta.get("by") or "?", r.meta.get("from")
        rows.append({"host": c.name, "id": r.id, "current": r.id == server.current,
                     "created": r.meta.get("created"), "by": by, "from": origin,
                     "develop": r.develop, "versions": r.meta.get("versions"),
                     "status": r.status, "failed": r.failed})
        who = f"{by}@{origin}" if origin else by
        develop = ", ".join(f"{n} {v}" for n, v in sorted(r.develop.items())) or "-"
        cells = ["*" if r.id == server.current else " ", r.id, _local(r.meta.get("created")),
                 f"{who:<24}", f"{r.status:<10}", develop]
        if r.failed:
            cells.append(f"({r.failed})")
        lines.append(f"[{c.name}] " + "  ".join(cells).rstrip())
    if as_json or c.out.json:
        c.out.plain([json.dumps(row, sort_keys=True) for row in rows])
    else:
        c.out.plain(lines or [f"[{c.name}] no releases"])
    return rows


@command(quiet=True)
def history(c: Context, *args: str) -> list[dict[str, object]]:
    """Print the server's history of deploys, rollbacks and failures (-n N, --json)"""
    as_json, last = _flags(c, "history", args, ("--json", "-n"))
    entries = _history.read(c, None if last == "all" else int(last or 20))
    if as_json or c.out.json:
        c.out.plain([e.to_json() for e in entries])
    else:
        c.out.plain([f"[{c.name}] {e.line()}" for e in entries]
                    or [f"[{c.name}] no history yet"])
    return [e.to_dict() for e in entries]


@command(quiet=True)
def unlock(c: Context) -> None:
    """Remove the server's deploy lock, whoever holds it"""
    record = _lock.unlock(c)
    c.out.plain([f"[{c.name}] " + (f"removed the lock of {record.describe()}" if record
                                   else "not locked")])


@command(quiet=True)
def plan(c: Context) -> dict[str, object]:
    """What deploy would do, changing nothing on the server (deploy --dry-run)"""
    found = _plan.make(c)
    if c.out.json:
        c.out.plain([json.dumps(found.to_dict(), sort_keys=True)])
    else:
        c.out.plain([f"[{c.name}] plan: {line}" for line in found.lines()])
    return found.to_dict()


@command(quiet=True)
def healthcheck(c: Context) -> str:
    """Run the health check (the healthcheck option) until it passes or times out"""
    if c.settings.healthcheck is None:
        raise UsageError("no healthcheck option for this host", host=c.name)
    found = _build.check_health(c)
    assert found is not None
    c.report(f"{_health.what(c)}: {found.answer} after {found.seconds:.1f} s")
    return found.answer


def _flags(c: Context, name: str, args: tuple[str, ...], known: tuple[str, ...]
           ) -> tuple[bool, str | None]:
    """``--json`` and ``-n N`` of the listing commands."""
    as_json, count = False, None
    words = list(args)
    while words:
        word = words.pop(0)
        if word == "--json" and "--json" in known:
            as_json = True
        elif word == "-n" and "-n" in known and words and (
                words[0].isdigit() or words[0] == "all"):
            count = words.pop(0)
        else:
            usage = " ".join(f"[{k} N]" if k == "-n" else f"[{k}]" for k in known)
            raise UsageError(f"{name} takes: {name} {usage} (not {word!r})", host=c.name)
    return as_json, count


def _local(stamp: object) -> str:
    """An ISO UTC time as local time, for people."""
    try:
        when = datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return f"{'?':<19}"
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")
