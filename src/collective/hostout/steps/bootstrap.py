"""Python and the buildout venv on the server (bootstrap_python, bootstrap_buildout).

Python comes from the OS's package manager (see :mod:`collective.hostout.server.system`); a
Debian/Ubuntu server that cannot reach its mirror gets Debian packages shipped from here
when this machine runs the same release and architecture. ``path`` then becomes a venv with
zc.buildout and its companions at exactly this machine's versions, installed from shipped
files only.
"""

from __future__ import annotations

import time
from pathlib import PurePosixPath

from ..commands.context import Context
from ..errors import HostoutError, NotBootstrapped, UnsupportedSystem
from ..packaging import dists, versions
from ..server import debs, system
from ..shell import Account, RemoteCommand, join, last_line, q
from .accounts import accounts
from .base import remote_target, run_step, state
from .shipping import ship


def bootstrap_python(c: Context) -> dists.Target:
    version = c.settings.python_version
    found = remote_target(c)
    if found is None:
        began = time.monotonic()
        text = c.run("cat /etc/os-release", hide=True).stdout
        release = system.OsRelease.parse(text)
        c.out.line(c.name, f"installing Python {version} on {release.pretty}")
        extra = c.settings.system_packages
        for cmd in system.install_python(release, version, c.settings.hostos, extra):
            res = c.remote.execute(cmd, warn=True)
            if not res.ok:
                problem = (f"bootstrap_python: {release.pretty} could not install Python "
                           f"{version} ({last_line(res.stderr, 'failed')})")
                if release.family != "debian" or (c.settings.hostos or "debian") != "debian":
                    raise UnsupportedSystem(
                        f"{problem}; set python-version to one this OS provides, or install "
                        f"python{version} with venv support yourself", host=c.name)
                ship_debs(c, release, version, extra, problem)
                break
        found = remote_target(c)
        if found is None:
            raise UnsupportedSystem(
                f"bootstrap_python: python{version} with venv is still missing on "
                f"{release.pretty}", host=c.name)
        more = f" and {', '.join(extra)}" if extra else ""
        c.report(f"installed Python {found.python_version}{more} on {release.pretty} "
                 f"({time.monotonic() - began:.1f} s)")
    state(c).target = found
    return found


def ship_debs(c: Context, release: system.OsRelease, version: str, extra: tuple[str, ...],
              problem: str) -> None:
    """The server's apt failed (no mirror, say): install Python from packages shipped from
    here, when this machine runs the same release on the same architecture."""
    arch = c.run("dpkg --print-architecture", hide=True).stdout.strip()
    why = debs.compatible(release, arch)
    if why is None:
        listing = c.run(join(["dpkg-query", "-W", "-f", "${Package} ${Provides}\\n"]),
                        hide=True).stdout
        installed = {word.split(":")[0] for word in listing.replace(",", " ").split()
                     if not word.startswith(("(", "="))}
        packages = [f"python{version}", f"python{version}-venv", "ca-certificates", *extra]
        try:
            files = debs.download(packages, installed, c.facts.work_dir("debs"))
        except HostoutError as err:
            why = err.message
    if why is not None:
        raise UnsupportedSystem(
            f"{problem}; nor can hostout ship its packages ({why}): set python-version to one "
            f"this OS provides, or install python{version} with venv support yourself",
            host=c.name)
    c.report(f"the server's apt cannot install packages itself: shipping {len(files)} "
             "Debian packages from this machine")
    if not files:
        return
    # a private directory (mktemp -d, 0700): nobody can swap the packages root installs
    staging = PurePosixPath(c.run("mktemp -d", hide=True).stdout.strip())
    for f in files:
        c.remote.put(f, staging / f.name)
    # apt (not dpkg -i) orders pre-dependencies; given every file, it needs no mirror
    names = " ".join(q(str(staging / f.name)) for f in files)
    run_step(c, "bootstrap_python", RemoteCommand(
        f"{system.APT_ENV} apt-get install -y -q --no-install-recommends {system.APT_QUICK} "
        f"{names} && rm -rf {q(staging)}", sudo=True))


def bootstrap_pins(c: Context) -> dict[str, str]:
    """zc.buildout and its companions at the versions the local build used (else this
    machine's)."""
    path = c.settings.versionsfile
    used = versions.read(path, c.facts.versions_section) if path.is_file() else {}
    env = versions.environment_versions(versions.BOOTSTRAP_DISTS)
    return {name: used.get(name) or env[name] for name in versions.BOOTSTRAP_DISTS
            if used.get(name) or name in env}


def bootstrap_buildout(c: Context) -> None:
    state(c).bootstrapped = True
    a, lay = accounts(c), c.settings.layout
    version = c.settings.python_version
    dirs = [lay.path, lay.cache, lay.downloads, lay.dist, lay.eggs]
    mkdirs = "\n".join(f"install -d -o {q(a.buildout_user)} -g {q(a.group)} -m 2750 {q(d)}"
                       for d in dirs)
    run_step(c, "bootstrap_buildout", RemoteCommand(f"set -e\n{mkdirs}", sudo=True))
    venv = f"test -x {q(lay.python)} || python{version} -m venv {q(lay.path)}"
    run_step(c, "bootstrap_buildout", RemoteCommand(venv, account=Account.BUILDOUT))
    pins = bootstrap_pins(c)
    ship(c, pins)
    install = join([str(lay.python), "-m", "pip", "install", "-q", "--no-index",
                    "--disable-pip-version-check", "--find-links", str(lay.dist),
                    *[f"{n}=={v}" for n, v in pins.items()]])
    run_step(c, "bootstrap_buildout", RemoteCommand(install, account=Account.BUILDOUT))
    names = [f"{n} {v}" for n, v in pins.items()]
    c.report(f"{lay.path} is a Python {version} venv with " + ", ".join(names[:2])
             + (f" and {len(names) - 2} more" if len(names) > 2 else ""))


def is_bootstrapped(c: Context) -> bool:
    probe = RemoteCommand.argv(["test", "-x", str(c.settings.layout.buildout_script)],
                               account=Account.BUILDOUT)
    try:
        return c.remote.execute(probe, warn=True, hide=True, echo=False).ok
    except NotBootstrapped:
        return False
