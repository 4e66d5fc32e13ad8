"""Python and the buildout venv on the server (bootstrap_python, bootstrap_buildout).

Python comes from the OS's package manager (see :mod:`collective.hostout.server.system`); a
Debian/Ubuntu server that cannot reach its mirror gets Debian packages shipped from here
when this machine runs the same release and architecture. ``path`` then becomes a venv with
zc.buildout and its companions at exactly this machine's versions, installed from shipped
files only.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import PurePosixPath

from ..commands.context import Context
from ..errors import HostoutError, LayoutError, NotBootstrapped, UnsupportedSystem
from ..packaging import dists, versions
from ..server import debs, system
from ..shell import Account, RemoteCommand, join, last_line, q
from .accounts import accounts
from .base import remote_target, run_step, state
from .shipping import ship


def bootstrap_python(c: Context) -> dists.Target:
    version = c.settings.python_version
    found = remote_target(c)
    if found is not None:
        install_missing_packages(c)
    else:
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


def install_missing_packages(c: Context) -> None:
    """system-packages added since the last bootstrap: installed now."""
    wanted = c.settings.system_packages
    if not wanted:
        return
    res = c.remote.execute(RemoteCommand(system.missing_packages(wanted)), hide=True,
                           echo=False)
    missing = tuple(line.removeprefix(system.MISSING) for line in res.stdout.splitlines()
                    if line.startswith(system.MISSING))
    if not missing:
        return
    began = time.monotonic()
    release = system.OsRelease.parse(c.run("cat /etc/os-release", hide=True).stdout)
    for cmd in system.install_packages(release, missing, c.settings.hostos):
        run_step(c, "bootstrap_python", cmd)
    c.report(f"installed system packages {', '.join(missing)} "
             f"({time.monotonic() - began:.1f} s)")


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


#: In path: what bootstrap_buildout last installed (the pins' digest), so a changed
#: zc.buildout, setuptools... is installed on the next deploy.
BOOTSTRAP_MARKER = ".hostout-bootstrap"


def pins_digest(pins: dict[str, str], version: str) -> str:
    text = "\n".join([f"python {version}", *(f"{n}=={v}" for n, v in sorted(pins.items()))])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def layout_dirs(c: Context) -> list[PurePosixPath]:
    """The directories bootstrap makes for the buildout user (besides var/ and the venv)."""
    lay = c.settings.layout
    if lay.releases:
        return [lay.home, lay.releases_dir, lay.inputs, lay.cache, lay.downloads, lay.dist,
                lay.eggs]
    return [lay.path, lay.cache, lay.downloads, lay.dist, lay.eggs, lay.home]


def bootstrap_buildout(c: Context) -> None:
    lay = c.settings.layout
    version = c.settings.python_version
    dirs = layout_dirs(c)
    checks = [f"test -d {q(d)}" for d in dirs]
    if lay.releases:
        checks += [f"test -d {q(lay.var)}", f"test -L {q(lay.path)}"]
    probe = "\n".join([
        f"if [ -L {q(lay.path)} ]; then echo path-symlink; "
        f"elif [ -d {q(lay.path)} ]; then echo path-dir; fi",
        f"{' && '.join(checks)} && echo have",
        "true",
    ])
    try:
        found = c.remote.execute(RemoteCommand(probe, account=Account.BUILDOUT, reads_only=True),
                                 hide=True, echo=False).stdout.split()
    except NotBootstrapped:  # the buildout user cannot log in: the login user looks
        found = c.remote.execute(RemoteCommand(probe, reads_only=True), hide=True,
                                 echo=False).stdout.split()
    if "path-symlink" in found and not lay.releases:
        raise LayoutError(f"{lay.path} is a symlink to a release (the release layout), but "
                          "this host part says releases = false; remove that option to keep "
                          "deploying releases", host=c.name)
    state(c).bootstrapped = True
    if lay.releases and "path-dir" in found:
        from .releases import takeover_prepare

        moved = takeover_prepare(c)
        c.report(f"taking over the in-place buildout in {lay.path}: releases from now on in "
                 f"{lay.releases_dir}" + (f" (moved {', '.join(moved)} to {lay.home}, with "
                                          "symlinks left behind)" if moved else ""))
        found.remove("path-dir")
    if "have" not in found:  # only a first bootstrap (or a missing directory) needs root
        a = accounts(c)
        mkdirs = [f"install -d -o {q(a.buildout_user)} -g {q(a.group)} -m 2750 {q(d)}"
                  for d in dirs]
        if lay.releases:
            mkdirs += [
                f"install -d -o {q(a.effective_user)} -g {q(a.group)} -m 2770 {q(lay.var)}",
                # path is where the running buildout is: the current release
                f"[ -e {q(lay.path)} ] || [ -L {q(lay.path)} ] || "
                f"ln -s {q(lay.home.name + '/current')} {q(lay.path)}",
            ]
        run_step(c, "bootstrap_buildout", RemoteCommand("set -e\n" + "\n".join(mkdirs),
                                                        sudo=True))
    # A venv of another Python (python-version changed): its interpreter links are
    # replaced in place; the buildout, var/ and the caches stay.
    bindir = q(lay.venv / "bin")
    venv = "\n".join([
        f"if [ -x {q(lay.python)} ] && ! {q(lay.python)} -c {q(_is_version(version))}; then",
        f"  rm -f {bindir}/python {bindir}/python3 {bindir}/python3.*",
        f"  echo {q(REMADE)}",
        "fi",
        f"test -x {q(lay.python)} || python{version} -m venv {q(lay.venv)}",
    ])
    made = run_step(c, "bootstrap_buildout", RemoteCommand(venv, account=Account.BUILDOUT))
    pins = bootstrap_pins(c)
    ship(c, pins)
    install = join([str(lay.python), "-m", "pip", "install", "-q", "--no-index",
                    "--disable-pip-version-check", "--find-links", str(lay.dist),
                    *[f"{n}=={v}" for n, v in pins.items()]])
    run_step(c, "bootstrap_buildout", RemoteCommand(install, account=Account.BUILDOUT))
    marker = lay.venv / BOOTSTRAP_MARKER
    c.remote.execute(RemoteCommand(f"printf '%s\\n' {q(pins_digest(pins, version))} > "
                                   f"{q(marker)}", account=Account.BUILDOUT), echo=False)
    names = [f"{n} {v}" for n, v in pins.items()]
    what = ("now runs Python" if REMADE in made.stdout else "is a Python")
    c.report(f"{lay.venv} {what} {version} venv with " + ", ".join(names[:2])
             + (f" and {len(names) - 2} more" if len(names) > 2 else ""))


REMADE = "hostout: venv remade"


def _is_version(version: str) -> str:
    major, minor = version.split(".")
    return f"import sys; sys.exit(sys.version_info[:2] != ({major}, {minor}))"


@dataclass(frozen=True)
class Drift:
    """How the server's bootstrap differs from what the options ask for now."""

    bootstrapped: bool  # the venv's bin/buildout exists
    venv_python: str | None  # the X.Y the venv runs
    missing_packages: tuple[str, ...]  # system-packages not installed
    pins_digest: str | None  # what bootstrap_buildout last installed
    path_kind: str | None = None  # "symlink" (release layout), "dir" (in place) or None

    def needs_python(self, version: str) -> bool:
        return bool(self.missing_packages) or self.venv_python != version

    def needs_buildout(self, version: str, digest: str) -> bool:
        return self.venv_python != version or self.pins_digest != digest


def drift(c: Context) -> Drift:
    """One probe, as the buildout user: is path bootstrapped, with which Python, are
    system-packages installed, and which bootstrap pins did it get."""
    lay = c.settings.layout
    script = "\n".join([
        f"test -x {q(lay.buildout_script)} && echo bootstrapped",
        f"{q(lay.python)} -c {q(VENV_PYTHON)} 2>/dev/null",
        f"cat {q(lay.venv / BOOTSTRAP_MARKER)} 2>/dev/null | sed 's/^/bootstrap-pins /'",
        system.missing_packages(c.settings.system_packages),
        f"if [ -L {q(lay.path)} ]; then echo path symlink; "
        f"elif [ -d {q(lay.path)} ]; then echo path dir; fi",
        "true",
    ])
    try:
        res = c.remote.execute(RemoteCommand(script, account=Account.BUILDOUT,
                                             reads_only=True, label="look at the venv, its "
                                             f"Python, system packages and {lay.path}"),
                               warn=True, hide=True, echo=False)
    except NotBootstrapped:  # the buildout user cannot log in yet
        return Drift(False, None, (), None)
    found: dict[str, str] = {}
    missing = []
    for line in res.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if line.startswith(system.MISSING):
            missing.append(line.removeprefix(system.MISSING))
        else:
            found[word] = rest.strip()
    return Drift("bootstrapped" in found, found.get("venv-python"), tuple(missing),
                 found.get("bootstrap-pins"), found.get("path"))


VENV_PYTHON = "import sys; print('venv-python %d.%d' % sys.version_info[:2])"
