"""What deploy would do on a host, found by deploy's own deciding steps and changing nothing
on the server (``plan``, ``deploy --dry-run``).

The steps run through a :class:`~..remote.readonly.ReadOnlyRemote`: the probes deploy uses
to decide (marked ``reads_only``) go through; anything else would be refused, so a plan
cannot change the host even by mistake. What deploy would then *run* is shown as the same
:class:`~..shell.RemoteCommand` objects it executes (``display()``, secrets masked).
Local work is done as for a deploy: develop packages are released, distributions found.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from ..commands.context import Context
from ..errors import NotBootstrapped
from ..remote.readonly import ReadOnlyRemote
from ..shell import Account, RemoteCommand, q
from . import bootstrap, build, health, lock, releases, shipping
from .base import remote_target, state, target

NEW = "NEW"  # the id a new release would get (known only once made)


@dataclass
class DeployPlan:
    """What deploy would do on one host."""

    host: str
    locked_by: str | None = None
    bootstrap: list[str] = field(default_factory=list)
    distributions: list[tuple[str, int]] = field(default_factory=list)  # would upload
    distributions_total: int = 0
    files: list[str] = field(default_factory=list)  # cfg files that would upload
    files_total: int = 0
    diffs: dict[str, list[str]] = field(default_factory=dict)  # name -> changed lines
    build: bool = True
    layout: str = ""
    commands: list[RemoteCommand] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # what deploy does besides commands
    prune: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        if self.locked_by:
            out.append(f"LOCKED by {self.locked_by}: deploy would be refused now")
        out.append(self.layout)
        out += [f"would {b}" for b in self.bootstrap]
        if self.distributions:
            size = sum(s for _, s in self.distributions)
            out.append(f"would upload {len(self.distributions)} of "
                       f"{self.distributions_total} distributions ({_size(size)}): "
                       + ", ".join(n for n, _ in self.distributions))
        else:
            out.append(f"no distribution to upload (all {self.distributions_total} there)")
        if self.files:
            out.append(f"would upload {len(self.files)} of {self.files_total} cfg files: "
                       + ", ".join(self.files))
            for name in self.files:
                out += [f"  {name}: {line}" for line in self.diffs.get(name, [])]
        else:
            out.append(f"no cfg file changed (all {self.files_total} the same)")
        out += self.notes
        if not self.build:
            out.append("nothing changed since the last successful build: no build, "
                       "no restart")
            return out
        out.append("would build, then run:")
        out += [f"  {step}" for step in self.steps]
        if self.prune:
            out.append(f"would prune {', '.join(self.prune)}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "locked_by": self.locked_by, "layout": self.layout,
                "bootstrap": self.bootstrap,
                "distributions": [{"name": n, "size": s} for n, s in self.distributions],
                "distributions_total": self.distributions_total, "files": self.files,
                "files_total": self.files_total, "diffs": self.diffs, "build": self.build,
                "commands": [cmd.display() for cmd in self.commands], "steps": self.steps,
                "prune": self.prune, "notes": self.notes}


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


@contextmanager
def read_only(c: Context) -> Iterator[ReadOnlyRemote]:
    """The host's remote, for the duration, only reads."""
    real = c.remote
    guarded = ReadOnlyRemote(real)
    c.remote = guarded
    try:
        yield guarded
    finally:
        c.remote = real


def make(c: Context) -> DeployPlan:
    """The plan of a deploy of this host, changing nothing there."""
    with read_only(c):
        return _make(c)


def _make(c: Context) -> DeployPlan:
    s, lay = c.settings, c.settings.layout
    p = DeployPlan(c.name)
    drift = bootstrap.drift(c)
    server = releases.probe(c)
    releases.expect(c, server)
    try:
        holder = lock.read(c) if drift.bootstrapped else lock.read(c, Account.LOGIN)
    except NotBootstrapped:
        holder = None
    p.locked_by = holder.describe() if holder else None
    p.layout = _layout_line(c, server)

    # bootstrap, as predeploy would decide it
    version = s.python_version
    if not drift.bootstrapped:
        if lay.releases and server.kind == "inplace":
            p.bootstrap.append(f"take over the in-place buildout in {lay.path}: var/ and the "
                               f"buildout-cache move to {lay.home}, a venv is made there")
        else:
            p.bootstrap += ["bootstrap_users: create the group and users that are missing",
                            f"bootstrap_python: install Python {version} if missing",
                            f"bootstrap_buildout: make {lay.venv} a venv with zc.buildout"]
    else:
        if drift.needs_python(version):
            p.bootstrap.append(f"bootstrap_python: install Python {version} and "
                               + (", ".join(drift.missing_packages) or "its venv"))
        pins = bootstrap.bootstrap_pins(c)
        if drift.needs_buildout(version, bootstrap.pins_digest(pins, version)):
            p.bootstrap.append(f"bootstrap_buildout: install zc.buildout & co. in {lay.venv}")

    # distributions, as uploadeggs would decide
    built = c.packager.releases()
    found = {r.name for r in built}
    others = {n: v for n, v in shipping.remote_pins(c).items() if n not in found}
    where = target(c) if drift.bootstrapped else remote_target(c)
    files = [r.sdist for r in built]
    if where is not None:
        files = sorted(c.packager.distributions(others, where).values()) + files
    else:
        p.notes.append(f"the server has no Python {version} yet: its {len(others)} other "
                       "distributions are chosen for its platform once bootstrap_python "
                       "installed it")
    present = shipping.remote_listing(c, lay.dist) if drift.bootstrapped else set()
    p.distributions_total = len(files)
    p.distributions = [(f.name, f.stat().st_size) for f in files if f.name not in present]

    # cfg files, as uploadbuildout would decide
    cfgs = shipping.buildout_files(c)
    state(c).build_digest = shipping.build_digest(c, cfgs)
    changed = shipping.changed_files(c, cfgs) if drift.bootstrapped else sorted(cfgs)
    p.files_total = len(cfgs)
    p.files = [str(n) for n in changed]
    for name in changed:
        p.diffs[str(name)] = _diff(c, name, cfgs[name].read_text(errors="replace"),
                                   drift.bootstrapped)

    # the build and what runs around it, as the buildout command would
    p.build = not (drift.bootstrapped and build.built_already(c))
    if p.build:
        _commands(c, p, server)
    return p


def _layout_line(c: Context, server: releases.ServerLayout) -> str:
    lay = c.settings.layout
    if not lay.releases:
        return f"in-place layout: the build runs in {lay.path}"
    if server.kind == "releases" and server.current:
        return (f"release layout: current {server.current}, {len(server.releases)} "
                f"release(s) in {lay.releases_dir}, keep {c.settings.keep_releases}")
    if server.kind == "inplace":
        return f"release layout, taking over the in-place buildout in {lay.path}"
    return f"release layout: no release yet in {lay.releases_dir}"


def _diff(c: Context, name: PurePosixPath, local: str, bootstrapped: bool) -> list[str]:
    """The changed lines of a cfg file (``-`` on the server, ``+`` this deploy)."""
    remote = ""
    if bootstrapped:
        path = c.settings.layout.inputs / name
        res = c.remote.execute(RemoteCommand(f"cat {q(path)} 2>/dev/null",
                                             account=Account.BUILDOUT, reads_only=True),
                               warn=True, hide=True, echo=False)
        remote = res.stdout if res.ok else ""
    if not remote:
        return ["(new file)"]
    lines = difflib.unified_diff(remote.splitlines(), local.splitlines(), lineterm="", n=0)
    return [line for line in lines if not line.startswith(("---", "+++"))][:200]


def _commands(c: Context, p: DeployPlan, server: releases.ServerLayout) -> None:
    """What the buildout command would run, in order: descriptions and the commands."""
    s, lay = c.settings, c.settings.layout
    pre = build.user_commands(c, s.pre_commands)
    post = build.user_commands(c, s.post_commands)
    check = health.command(c)

    def run(*cmds: RemoteCommand | None) -> None:
        for cmd in cmds:
            if cmd is not None:
                p.commands.append(cmd)
                p.steps.append(cmd.display())

    def hook(name: str, cmds: list[RemoteCommand]) -> None:
        """The preswitch/postswitch hook: what plugins override it with (decided when it
        runs), and the pre-/post-commands the built-in runs."""
        for cmd in reversed(c.registry.chain(name, c.name)[1:]):
            p.steps.append(f"{name} of {cmd.origin}: {cmd.summary}")
        run(*cmds)

    owners = "setowners (root): the code to buildout-user, var/ to effective-user"
    if not lay.releases:
        cwd = str(lay.path)
        hook("preswitch", pre)
        run(build.build_command(c, cwd), build.sudo_parts_command(c, cwd))
        if build.uses_sudo(c):
            p.steps.append(owners)
        hook("postswitch", post)
    else:
        cwd = str(lay.release(NEW))
        p.steps.append(f"make release {cwd} from {lay.inputs}, var/ shared; build it while "
                       f"{server.current or 'nothing'} keeps serving:")
        run(build.build_command(c, cwd), build.sudo_parts_command(c, cwd))
        if build.uses_sudo(c):
            p.steps.append(owners)
        if server.current or server.kind == "inplace":
            hook("preswitch", pre)
        if server.kind == "inplace":
            p.steps.append(f"switch (root): {lay.current} -> releases/{NEW}; {lay.path} "
                           f"moves into {lay.releases_dir} and becomes a symlink to it")
        else:
            run(releases.switch_command(lay, NEW))
        hook("postswitch", post)
        last = "99999999-999999"  # the new release: newer than any
        now = releases.ServerLayout("releases", last, (*server.releases,
                                                       releases.ReleaseInfo(last, built="")))
        p.prune = releases.prunable(now, s.keep_releases, (last,))
    if check is not None:
        run(check)
        if lay.releases and (server.current or server.kind == "inplace"):
            p.steps.append("if it fails: preswitch, switch back, postswitch")
