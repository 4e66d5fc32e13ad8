"""Releases on the server: each deploy that changes anything builds a new release directory
while the current one keeps serving; then the ``current`` symlink is switched atomically.

``path`` is a symlink to ``path.hostout/current``, which names ``releases/ID``; ``var/``,
the venv and the buildout-cache are shared (see :class:`~..config.settings.Layout`). A
release directory holds:

* the cfg files of its build (copied from ``staging/``, where uploadbuildout put them) and
  what buildout made (``bin/``, ``parts/``, ``develop-eggs/``, ``.installed.cfg``);
* ``var -> ../../var``;
* ``.hostout-release.json``: when, by whom, from where, the develop packages' versions and
  the digest of every pinned version;
* ``.hostout-built``: the digest of the build's inputs, once the build succeeded (what an
  unchanged deploy compares), or ``.hostout-failed``: why it did not (or why it was rolled
  back).

Release ids are the UTC time the build started, ``20261207-101522`` (``-2``... if taken).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from ..commands.context import Context
from ..config.settings import Layout
from ..errors import HostoutError, LayoutError, NotBootstrapped, RollbackError
from ..shell import Account, RemoteCommand, q
from .accounts import accounts
from .history import machine, utc, who

META = ".hostout-release.json"
BUILT = ".hostout-built"  # the same marker name as the in-place layout's
FAILED = ".hostout-failed"
#: A release id hostout makes, or that a user may name.
RELEASE_ID = re.compile(r"^\d{8}-\d{6}(-\d+)?$")

#: The atomic switch: a new symlink beside ``current``, renamed over it (rename(2)).
SWITCH_PY = "\n".join([
    "import os, sys",
    "home, target = sys.argv[1], sys.argv[2]",
    "tmp = os.path.join(home, '.current.%d' % os.getpid())",
    "os.symlink(target, tmp)",
    "os.replace(tmp, os.path.join(home, 'current'))",
])


def sort_key(release_id: str) -> tuple[str, int]:
    """Releases in the order they were made (``-10`` after ``-9``); other names first."""
    parts = release_id.split("-")
    if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
        return ("", 0)
    n = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 1
    return (parts[0] + parts[1], n)


def new_id(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y%m%d-%H%M%S")


@dataclass(frozen=True)
class ReleaseInfo:
    """One release directory, as the server has it."""

    id: str
    meta: Mapping[str, Any] = field(default_factory=dict)
    built: str | None = None  # the build's digest: it succeeded
    failed: str | None = None  # why it failed, or was rolled back

    @property
    def ok(self) -> bool:
        """A release that can be current: built, and not failed or rolled back."""
        return self.built is not None and self.failed is None

    @property
    def status(self) -> str:
        if self.failed is not None:
            return "failed"
        return "ok" if self.built is not None else "incomplete"

    @property
    def develop(self) -> dict[str, str]:
        return dict(self.meta.get("develop") or {})


@dataclass(frozen=True)
class ServerLayout:
    """What is at ``path`` on the server: ``releases`` (a symlink), ``inplace`` (a real
    directory: the in-place layout), or ``none``; and the releases there."""

    kind: str
    current: str | None = None
    releases: tuple[ReleaseInfo, ...] = ()  # oldest first
    inplace_built_at: float | None = None  # the in-place build's time (for a takeover)
    link: str | None = None  # where the path symlink points

    def get(self, release_id: str) -> ReleaseInfo | None:
        return next((r for r in self.releases if r.id == release_id), None)

    @property
    def previous(self) -> ReleaseInfo | None:
        """The newest good release older than the current one: where rollback goes."""
        if self.current is None:
            return None
        older = [r for r in self.releases
                 if r.ok and sort_key(r.id) < sort_key(self.current)]
        return older[-1] if older else None

    def ids(self) -> str:
        return ", ".join(r.id for r in self.releases) or "none"


def probe(c: Context) -> ServerLayout:
    """One read-only look at path and path.hostout (as the buildout user; before bootstrap
    as the login user)."""
    lay = c.settings.layout
    path, home = q(lay.path), q(lay.home)
    script = "\n".join([
        f"if [ -L {path} ]; then echo kind releases; echo \"link $(readlink {path})\"",
        f"elif [ -d {path} ]; then echo kind inplace; [ -f {path}/{BUILT} ] && "
        f"echo \"inplace-time $(stat -c %Y {path}/{BUILT})\"",
        "else echo kind none; fi",
        f"[ -L {home}/current ] && echo \"current $(readlink {home}/current)\"",
        f"if [ -d {home}/releases ]; then for d in {home}/releases/*/; do",
        "  [ -d \"$d\" ] || continue",
        "  id=${d%/}; id=${id##*/}; echo \"release $id\"",
        f"  [ -f \"$d{META}\" ] && printf 'meta %s %s\\n' \"$id\" "
        f"\"$(head -c 8000 \"$d{META}\" | tr -d '\\n')\"",
        f"  [ -f \"$d{BUILT}\" ] && echo \"built $id $(head -c 100 \"$d{BUILT}\")\"",
        f"  [ -f \"$d{FAILED}\" ] && echo \"failed $id $(head -c 300 \"$d{FAILED}\" | "
        "tr '\\n' ' ')\"",
        "done; fi",
        "true",
    ])
    cmd = RemoteCommand(script, account=Account.BUILDOUT, reads_only=True,
                        label=f"look at {lay.path} and the releases in {lay.releases_dir}")
    try:
        res = c.remote.execute(cmd, hide=True, echo=False)
    except NotBootstrapped:
        res = c.remote.execute(replace(cmd, account=Account.LOGIN), hide=True, echo=False)
    return parse_probe(res.stdout)


def parse_probe(text: str) -> ServerLayout:
    kind, current, built_at, link = "none", None, None, None
    found: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        word, _, rest = line.partition(" ")
        if word == "kind":
            kind = rest.strip()
        elif word == "link":
            link = rest.strip()
        elif word == "current":
            current = PurePosixPath(rest.strip()).name or None
        elif word == "inplace-time" and rest.strip().isdigit():
            built_at = float(rest.strip())
        elif word == "release":
            found.setdefault(rest.strip(), {})
        elif word in ("meta", "built", "failed"):
            rid, _, value = rest.partition(" ")
            entry = found.setdefault(rid, {})
            if word == "meta":
                try:
                    entry["meta"] = json.loads(value)
                except ValueError:
                    entry["meta"] = {}
            else:
                entry[word] = value.strip()
    releases = tuple(ReleaseInfo(rid, v.get("meta") or {}, v.get("built"), v.get("failed"))
                     for rid, v in sorted(found.items(), key=lambda kv: sort_key(kv[0])))
    return ServerLayout(kind, current, releases, built_at, link)


def expect(c: Context, server: ServerLayout) -> None:
    """A LayoutError when the server's layout cannot be used as the options say."""
    lay = c.settings.layout
    ours = (f"{lay.home.name}/current", str(lay.current))
    if server.kind == "releases" and server.link is not None and server.link not in ours:
        raise LayoutError(f"{lay.path} is a symlink to {server.link}, not to {ours[0]}: "
                          "hostout does not replace a symlink it did not make", host=c.name)
    if server.kind == "releases" and not c.settings.releases:
        raise LayoutError(f"{c.settings.path} is a symlink to a release (the release "
                          "layout), but this host part says releases = false; remove that "
                          "option to keep deploying releases", host=c.name)


# -- what a release records --------------------------------------------------------------------
def versions_digest(pins: Mapping[str, str]) -> str:
    """A short digest of every pinned version (the history's ``versions``)."""
    text = "\n".join(f"{n.lower()}=={v}" for n, v in sorted(pins.items(),
                                                           key=lambda kv: kv[0].lower()))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def metadata(c: Context, pins: Mapping[str, str], digest: str | None) -> dict[str, Any]:
    develop = {r.name: r.version for r in c.packager.releases()}
    return {"created": utc(time.time()), "by": who(), "from": machine(),
            "develop": develop, "versions": versions_digest(pins), "digest": digest}


# -- making one --------------------------------------------------------------------------------
def create(c: Context, meta: Mapping[str, Any]) -> str:
    """A new release directory with the staged cfg files and var/; its id (the time now,
    ``-2``... when that is taken)."""
    lay = c.settings.layout
    proposed = new_id(time.time())
    script = "\n".join([
        "set -e",
        "umask 027",
        f"cd {q(lay.releases_dir)}",
        f"base={proposed}; id=$base; n=1",
        "while ! mkdir \"$id\" 2>/dev/null; do n=$((n+1)); id=\"$base-$n\"; "
        "[ \"$n\" -lt 50 ]; done",
        "cd \"$id\"",
        f"cp -pR {q(lay.inputs)}/. .",
        "ln -s ../../var var",
        f"printf '%s\\n' {q(json.dumps(dict(meta), sort_keys=True))} > {META}",
        "echo \"release $id\"",
    ])
    res = c.remote.execute(RemoteCommand(script, account=Account.BUILDOUT,
                                         label=f"make release {proposed} in {lay.releases_dir}"
                                               f" from {lay.inputs}"), hide=True, echo=False)
    made = [line.split()[1] for line in res.stdout.splitlines()
            if line.startswith("release ") and RELEASE_ID.match(line.split()[1])]
    return made[-1] if made else proposed


def mark_failed(c: Context, release_id: str, why: str) -> None:
    """Best effort: the release says why it is not one to switch to (a connection that is
    gone leaves it incomplete instead, which pruning treats the same)."""
    path = c.settings.layout.release(release_id) / FAILED
    with contextlib.suppress(HostoutError):
        c.remote.execute(RemoteCommand(f"printf '%s\\n' {q(' '.join(why.split())[:300])} > "
                                       f"{q(path)}", account=Account.BUILDOUT),
                         warn=True, hide=True, echo=False)


def switch_command(lay: Layout, release_id: str) -> RemoteCommand:
    """``current`` -> ``releases/ID``, atomically, as the buildout user."""
    cmd = RemoteCommand.argv([str(lay.python), "-c", SWITCH_PY, str(lay.home),
                              f"releases/{release_id}"], account=Account.BUILDOUT)
    return replace(cmd, label=f"ln -s releases/{release_id} {lay.home}/.current.PID && "
                              f"rename it to {lay.current}  # atomic")


def switch(c: Context, release_id: str) -> None:
    c.remote.execute(switch_command(c.settings.layout, release_id), echo=False)


# -- taking over the in-place layout -----------------------------------------------------------
def takeover_prepare(c: Context) -> list[str]:
    """Before the first release of a server deployed in place: ``path.hostout`` is made, and
    path's var/ and buildout-cache move there, with a symlink left in their place so that
    the running buildout (and its scripts' paths) keep working until the switch. Root;
    repeatable. What it moved."""
    a, lay = accounts(c), c.settings.layout
    inplace = replace(c.settings, releases=False).layout
    path, home = q(lay.path), q(lay.home)
    bo, grp, app = q(a.buildout_user), q(a.group), q(a.effective_user)
    lines = [
        "set -e",
        f"[ -d {path} ] && [ ! -L {path} ] || exit 0",
        f"install -d -o {bo} -g {grp} -m 2750 {home} {q(lay.releases_dir)} {q(lay.inputs)}",
        f"if [ -d {path}/var ] && [ ! -L {path}/var ] && [ ! -e {q(lay.var)} ]; then",
        f"  mv {path}/var {q(lay.var)} && ln -s {q(lay.var)} {path}/var && echo moved var/",
        "fi",
    ]
    if inplace.cache != lay.cache and inplace.cache.is_relative_to(lay.path):
        old, new = q(inplace.cache), q(lay.cache)
        lines += [
            f"if [ -d {old} ] && [ ! -L {old} ] && [ ! -e {new} ]; then",
            f"  mv {old} {new} && ln -s {new} {old} && echo moved {q(inplace.cache.name)}/",
            "fi",
        ]
    lines.append(f"[ -d {q(lay.var)} ] || install -d -o {app} -g {grp} -m 2770 {q(lay.var)}")
    res = c.remote.execute(RemoteCommand("\n".join(lines), sudo=True,
                                         label=f"make {lay.home}; move var/ and the "
                                               f"buildout-cache of {lay.path} there"),
                           hide=True, echo=False)
    return [line.removeprefix("moved ") for line in res.stdout.splitlines()
            if line.startswith("moved ")]


def takeover_switch(c: Context, release_id: str, old_id: str, old_meta: Mapping[str, Any]
                    ) -> None:
    """The first switch of a server deployed in place: ``current`` names the new release,
    the in-place directory becomes release ``old_id`` (so it can be rolled back to), and
    ``path`` becomes the symlink. path is missing for the instant between the rename and
    the symlink (the app is stopped then: this runs after pre-commands). Root."""
    a, lay = accounts(c), c.settings.layout
    path = q(lay.path)
    old = q(lay.release(old_id))
    link = f"{lay.home.name}/current"
    script = "\n".join([
        "set -e",
        f"cd {q(lay.home)}",
        f"{q(lay.python)} -c {q(SWITCH_PY)} {q(lay.home)} {q('releases/' + release_id)}",
        f"chown -h {q(a.buildout_user)}:{q(a.group)} current",
        f"if [ -d {path} ] && [ ! -L {path} ]; then",
        f"  mv {path} {old}",
        f"  ln -s {q(link)} {path}",
        f"  [ -f {old}/{META} ] || printf '%s\\n' {q(json.dumps(dict(old_meta)))} > "
        f"{old}/{META}",
        f"  chown -h {q(a.buildout_user)}:{q(a.group)} {old}/{META} {path}",
        "fi",
        f"[ -L {path} ] || ln -s {q(link)} {path}",
    ])
    c.remote.execute(RemoteCommand(script, sudo=True, label=(
        f"switch {lay.current} to releases/{release_id}; move {lay.path} to {old} and make "
        f"it a symlink to {link}")), echo=False)


def takeover_id(server: ServerLayout, new_release: str) -> str:
    """The id of the in-place build as a release: the time it was built (older than the
    new release, whatever the clocks say)."""
    stamp = server.inplace_built_at or time.time()
    found = new_id(stamp)
    if sort_key(found) >= sort_key(new_release):
        found = new_id(0)
    return found


# -- pruning -----------------------------------------------------------------------------------
def prunable(server: ServerLayout, keep: int, protect: tuple[str | None, ...] = ()
             ) -> list[str]:
    """The releases to remove: all but the newest ``keep`` good ones, never the current or
    the previous one (nor ``protect``); failed and incomplete ones go too."""
    good = [r.id for r in server.releases if r.ok]
    kept = set(good[-keep:]) | {server.current, *protect}
    if server.previous is not None:
        kept.add(server.previous.id)
    return [r.id for r in server.releases if r.id not in kept]


#: Run on the server: remove the releases no process uses (cwd, exe, root, memory maps
#: where readable; command lines everywhere); say which ones are kept and why.
PRUNE_PY = r"""
import json, os, re, shutil, sys
wanted = {rid: os.path.realpath(p) for rid, p in json.loads(sys.argv[1]).items()}
mine, pid = set(), os.getpid()
while pid > 1:  # this script and the shells that started it name the releases too
    mine.add(pid)
    try:
        with open('/proc/%d/stat' % pid) as f:
            pid = int(f.read().rsplit(')', 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        break
pattern = {rid: re.compile(re.escape(real) + r'(/|\s|$)') for rid, real in wanted.items()}
users = {}
for entry in os.listdir('/proc'):
    if not entry.isdigit() or int(entry) in mine:
        continue
    seen = []
    for link in ('cwd', 'exe', 'root'):
        try:
            seen.append(os.readlink('/proc/%s/%s' % (entry, link)))
        except OSError:
            pass
    try:
        with open('/proc/%s/cmdline' % entry, 'rb') as f:
            cmd = f.read().replace(b'\0', b' ').decode('utf-8', 'replace').strip()
    except OSError:
        cmd = ''
    try:
        with open('/proc/%s/maps' % entry) as f:
            seen += [line.split(None, 5)[-1].strip() for line in f if '/' in line]
    except OSError:
        pass
    for rid, real in wanted.items():
        if rid not in users and (pattern[rid].search(cmd) or any(
                p == real or p.startswith(real + '/') for p in seen)):
            users[rid] = 'pid %s (%s)' % (entry, ' '.join(cmd.split())[:60] or '?')
for rid, real in sorted(wanted.items()):
    if rid in users:
        print('in-use', rid, users[rid])
        continue
    try:
        shutil.rmtree(real)
        print('removed', rid)
    except OSError as err:
        print('failed', rid, err)
"""


@dataclass(frozen=True)
class Pruned:
    removed: tuple[str, ...] = ()
    in_use: tuple[str, ...] = ()  # "ID pid N (cmd)"
    failed: tuple[str, ...] = ()


def prune(c: Context, server: ServerLayout, protect: tuple[str | None, ...] = ()) -> Pruned:
    """Remove what :func:`prunable` names, except releases a running process uses."""
    lay = c.settings.layout
    doomed = prunable(server, c.settings.keep_releases, protect)
    if not doomed:
        return Pruned()
    arg = json.dumps({rid: str(lay.release(rid)) for rid in doomed})
    cmd = RemoteCommand.argv([str(lay.python), "-c", PRUNE_PY, arg], account=Account.BUILDOUT)
    res = c.remote.execute(replace(cmd, label=f"remove {', '.join(doomed)} unless in use"),
                           warn=True, hide=True, echo=False)
    found: dict[str, list[str]] = {"removed": [], "in-use": [], "failed": []}
    for line in res.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in found:
            found[word].append(rest)
    return Pruned(tuple(found["removed"]), tuple(found["in-use"]), tuple(found["failed"]))


# -- choosing one ------------------------------------------------------------------------------
def choose(c: Context, server: ServerLayout, wanted: str | None) -> ReleaseInfo:
    """The release a rollback goes to: ``wanted``, or the previous one; RollbackError
    (one line, nothing changed) when there is none to go to."""
    if not c.settings.releases:
        raise LayoutError("rollback needs releases; this host deploys in place "
                          "(releases = false)", host=c.name)
    expect(c, server)
    if server.kind != "releases" or server.current is None:
        raise RollbackError(f"no releases on {c.settings.path} yet: deploy first",
                            host=c.name)
    if wanted is None:
        found = server.previous
        if found is None:
            raise RollbackError(f"no release before the current {server.current} to roll "
                                f"back to (releases: {server.ids()})", host=c.name)
        return found
    if not RELEASE_ID.match(wanted):
        raise RollbackError(f"{wanted!r} is not a release id such as 20261207-101522 "
                            f"(releases: {server.ids()})", host=c.name)
    found = server.get(wanted)
    if found is None:
        raise RollbackError(f"no release {wanted} (pruned, or never made; releases: "
                            f"{server.ids()})", host=c.name)
    if not found.ok:
        raise RollbackError(f"release {wanted} is {found.status}"
                            + (f" ({found.failed})" if found.failed else "")
                            + ": not one to roll back to", host=c.name)
    if found.id == server.current:
        raise RollbackError(f"{wanted} is the current release already", host=c.name)
    return found
