"""The steps of ``deploy``: bootstrap a bare server, ship the release, run buildout there.

Layout on the server (``path`` defaults to /var/buildout/PART)::

    path/                        buildout-user:buildout-group 2750, a venv with zc.buildout
      bin/buildout               from the venv; buildout's own scripts land here too
      hostout.cfg, pinned.cfg    generated: extends the chosen buildout, pins everything
      <uploaded .cfg files and includes>
      var/                       effective-user:buildout-group 2770
    buildout-cache/              (default path/buildout-cache)
      downloads/dist/            every distribution the build needs: no index is read
      eggs/

Every step is a command of its own; ``deploy`` is predeploy, uploadeggs, uploadbuildout,
buildout, postdeploy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..commands.context import Context
from ..errors import CommandFailed, HostoutError, NotBootstrapped
from ..packaging import cfgfiles, dists, versions
from ..shell import Login, RemoteCommand, join, q

if TYPE_CHECKING:
    from ..packaging.release import Release
from . import debs, keys, system

BUILD_ENV = "PIP_NO_BUILD_ISOLATION=0"  # build shipped sdists with the venv's setuptools


class BootstrapError(HostoutError):
    """A bootstrap step failed; it can simply be rerun."""


@dataclass(frozen=True)
class Layout:
    path: PurePosixPath
    cache: PurePosixPath

    @property
    def dist(self) -> PurePosixPath:
        return self.cache / "downloads" / "dist"

    @property
    def eggs(self) -> PurePosixPath:
        return self.cache / "eggs"

    @property
    def buildout(self) -> PurePosixPath:
        return self.path / "bin" / "buildout"

    @property
    def python(self) -> PurePosixPath:
        return self.path / "bin" / "python"

    @property
    def var(self) -> PurePosixPath:
        return self.path / "var"


def layout(c: Context) -> Layout:
    s = c.settings
    cache = PurePosixPath(s.buildout_cache) if s.buildout_cache else s.path / "buildout-cache"
    if not cache.is_absolute():
        cache = s.path / cache
    return Layout(s.path, cache)


def local_dir(c: Context, *parts: str) -> Path:
    """hostout's local working directory, shared by the buildout's hosts (parts/hostout/...)."""
    d = Path(c.options_file.buildout["parts-directory"]).joinpath("hostout", *parts)
    d.mkdir(parents=True, exist_ok=True)
    return d


# -- users -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Accounts:
    login: str
    buildout: str
    effective: str
    group: str


def accounts(c: Context) -> Accounts:
    s = c.settings
    group = s.require("buildout-group")  # the seed: mandatory; checked before connecting
    login = c.connection.user
    buildout_user = s.buildout_user or login
    return Accounts(login, buildout_user, s.effective_user or buildout_user, group)


def users_script(a: Accounts, public_key: str) -> str:
    """Root shell text creating the group and users and authorising the buildout user."""
    lines = ["set -e", f"getent group {q(a.group)} >/dev/null || groupadd {q(a.group)}"]
    for user, shell in ((a.buildout, "/bin/bash"), (a.effective, "/bin/sh")):
        lines.append(f"id -u {q(user)} >/dev/null 2>&1 || "
                     f"useradd -m -s {shell} -G {q(a.group)} {q(user)}")
    for user in sorted({a.buildout, a.effective, a.login}):
        lines.append(f"usermod -a -G {q(a.group)} {q(user)}")
    ssh = '"$home/.ssh"'
    keys_file = '"$home/.ssh/authorized_keys"'
    lines += [
        f"home=$(getent passwd {q(a.buildout)} | cut -d: -f6)",
        f"install -d -m 700 -o {q(a.buildout)} {ssh}",
        f"touch {keys_file}",
        f"grep -qxF {q(public_key)} {keys_file} || printf '%s\\n' {q(public_key)} >> {keys_file}",
        f"chown {q(a.buildout)} {keys_file} && chmod 600 {keys_file}",
    ]
    return "\n".join(lines)


def bootstrap_users(c: Context) -> Accounts:
    a = accounts(c)
    key = c.settings.identity_file
    public = keys.ensure_key(key, comment=f"hostout-{c.name}")
    c.out.line(c.name, f"buildout-user {a.buildout} logs in with {key}")
    _step(c, "bootstrap_users", RemoteCommand(users_script(a, public), sudo=True))
    return a


def owners_script(a: Accounts, lay: Layout) -> str:
    """Root shell text for the seed's ownership model: code read-only to the app, var/ its."""
    p, var = q(lay.path), q(lay.var)
    return "\n".join([
        "set -e",
        f"chown -R {q(a.buildout)}:{q(a.group)} {p}",
        f"chmod -R u+rwX,g+rX,g-w,o-rwx {p}",
        f"find {p} -type d -exec chmod g+s {{}} +",
        f"if [ -d {var} ]; then chown -R {q(a.effective)}:{q(a.group)} {var}; "
        f"chmod -R u+rwX,g+rwX,o-rwx {var}; fi",
    ])


def setowners(c: Context) -> None:
    a, lay = accounts(c), layout(c)
    script = owners_script(a, lay)
    if not lay.cache.is_relative_to(lay.path):  # a buildout-cache elsewhere: the code's too
        script += f"\nchown -R {q(a.buildout)}:{q(a.group)} {q(lay.cache)}"
    _step(c, "setowners", RemoteCommand(script, sudo=True))


# -- python ------------------------------------------------------------------------------
def remote_target(c: Context, python: str | None = None,
                  via: Login = Login.LOGIN) -> dists.Target | None:
    """The platform of the server's pythonX.Y (or ``python``), or None when it has none."""
    probe = replace(system.probe_python(c.settings.python_version, python), via=via)
    res = c.remote.execute(probe, warn=True, hide=True, echo=False)
    if not res.ok:
        return None
    platform, version = res.stdout.split()
    return dists.Target(version, platform)


def bootstrap_python(c: Context) -> dists.Target:
    version = c.settings.python_version
    target = remote_target(c)
    if target is None:
        text = c.run("cat /etc/os-release", hide=True).stdout
        release = system.OsRelease.parse(text)
        c.out.line(c.name, f"installing Python {version} on {release.pretty}")
        extra = tuple(c.options.get("system-packages", "").split())
        for cmd in system.install_python(release, version, c.settings.hostos, extra):
            res = c.remote.execute(cmd, warn=True)
            if not res.ok:
                last = (res.stderr.strip().splitlines() or ["failed"])[-1].strip()
                problem = (f"bootstrap_python: {release.pretty} could not install Python "
                           f"{version} ({last})")
                if release.family != "debian" or (c.settings.hostos or "debian") != "debian":
                    raise system.UnsupportedSystem(
                        f"{problem}; set python-version to one this OS provides, or install "
                        f"python{version} with venv support yourself", host=c.name)
                ship_debs(c, release, version, extra, problem)
                break
        target = remote_target(c)
        if target is None:
            raise system.UnsupportedSystem(
                f"bootstrap_python: python{version} with venv is still missing on "
                f"{release.pretty}", host=c.name)
    c.state["target"] = target
    return target


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
            files = debs.download(packages, installed, local_dir(c, "debs"))
        except HostoutError as err:
            why = err.message
    if why is not None:
        raise system.UnsupportedSystem(
            f"{problem}; nor can hostout ship its packages ({why}): set python-version to one "
            f"this OS provides, or install python{version} with venv support yourself",
            host=c.name)
    c.out.info(f"cannot install packages itself: shipping {len(files)} Debian packages "
               "from this machine", host=c.name)
    if not files:
        return
    # a private directory (mktemp -d, 0700): nobody can swap the packages root installs
    staging = PurePosixPath(c.run("mktemp -d", hide=True).stdout.strip())
    for f in files:
        c.remote.put(f, staging / f.name)
    # apt (not dpkg -i) orders pre-dependencies; given every file, it needs no mirror
    names = " ".join(q(str(staging / f.name)) for f in files)
    _step(c, "bootstrap_python", RemoteCommand(
        f"{system.APT_ENV} apt-get install -y -q --no-install-recommends {system.APT_QUICK} "
        f"{names} && rm -rf {q(staging)}", sudo=True))


# -- buildout ----------------------------------------------------------------------------
def bootstrap_pins(c: Context) -> dict[str, str]:
    used = versions.read(c.settings.versionsfile) if c.settings.versionsfile.is_file() else {}
    env = versions.environment_versions(versions.BOOTSTRAP_DISTS)
    return {name: used.get(name) or env[name] for name in versions.BOOTSTRAP_DISTS
            if used.get(name) or name in env}


def bootstrap_buildout(c: Context) -> None:
    c.state["bootstrapped"] = True
    a, lay = accounts(c), layout(c)
    version = c.settings.python_version
    dirs = [lay.path, lay.cache, lay.cache / "downloads", lay.dist, lay.eggs]
    mkdirs = "\n".join(f"install -d -o {q(a.buildout)} -g {q(a.group)} -m 2750 {q(d)}"
                       for d in dirs)
    _step(c, "bootstrap_buildout", RemoteCommand(f"set -e\n{mkdirs}", sudo=True))
    venv = (f"test -x {q(lay.python)} || python{version} -m venv {q(lay.path)}")
    _step(c, "bootstrap_buildout", RemoteCommand(venv, via=Login.BUILDOUT))
    pins = bootstrap_pins(c)
    ship(c, pins)
    install = join([str(lay.python), "-m", "pip", "install", "-q", "--no-index",
                    "--disable-pip-version-check", "--find-links", str(lay.dist),
                    *[f"{n}=={v}" for n, v in pins.items()]])
    _step(c, "bootstrap_buildout", RemoteCommand(install, via=Login.BUILDOUT))


def is_bootstrapped(c: Context) -> bool:
    probe = RemoteCommand.argv(["test", "-x", str(layout(c).buildout)], via=Login.BUILDOUT)
    try:
        return c.remote.execute(probe, warn=True, hide=True, echo=False).ok
    except NotBootstrapped:
        return False


def _step(c: Context, step: str, cmd: RemoteCommand) -> None:
    try:
        c.remote.execute(cmd)
    except CommandFailed as err:
        raise BootstrapError(f"{step} failed: {err.message}; fix the cause and rerun "
                             f"'bin/hostout {c.name} {step}' (or deploy)",
                             host=c.name, cause=err) from err


# -- shipping distributions ----------------------------------------------------------------
def target(c: Context) -> dists.Target:
    found = c.state.get("target")
    if found is None:  # bootstrapped earlier: ask the venv, as the buildout user
        found = remote_target(c, str(layout(c).python), Login.BUILDOUT)
        if found is None:
            raise NotBootstrapped(f"python{c.settings.python_version} is missing; run "
                                  f"'bin/hostout {c.name} bootstrap' (or deploy)", host=c.name)
        c.state["target"] = found
    return found


def remote_listing(c: Context, directory: PurePosixPath) -> set[str]:
    res = c.remote.execute(RemoteCommand(f"ls -1 {q(directory)}", via=Login.BUILDOUT),
                           hide=True, echo=False)
    return set(res.stdout.split())


def upload_new(c: Context, files: list[Path], directory: PurePosixPath) -> list[Path]:
    """Upload the files whose names the server's ``directory`` lacks (names are unique)."""
    present = remote_listing(c, directory)
    new = [f for f in files if f.name not in present]
    for f in new:
        c.out.line(c.name, f"upload {f.name}", level=1)
        c.remote.put(f, directory / f.name, via=Login.BUILDOUT)
    return new


def ship(c: Context, pins: Mapping[str, str], extra: Sequence[Path] = ()) -> list[Path]:
    """Make sure the server's dist cache holds a distribution for every pin."""
    tgt = target(c)
    caches = []
    download_cache = c.options_file.buildout.get("download-cache")
    if download_cache:
        caches.append(Path(download_cache) / "dist")
    key = ("dists", tuple(sorted(pins.items())), tgt)
    files = c.shared.once(key, lambda: dists.collect(pins, local_dir(c, "dists"),
                                                     caches=caches, target=tgt))
    return upload_new(c, sorted(files.values()) + list(extra), layout(c).dist)


# -- the release ---------------------------------------------------------------------------
def develop_sources(c: Context) -> list[Path]:
    base = Path(c.options_file.buildout["directory"])
    return [(base / d).resolve() for d in c.options_file.buildout.get("develop", [])]


def releases(c: Context) -> list[Release]:
    """Release every develop package (content-hashed, rebuilt only when changed), once for
    all hosts of the invocation."""
    from ..packaging.release import release_all

    return c.shared.once("releases", lambda: release_all(develop_sources(c),
                                                         local_dir(c, "releases")))


def remote_pins(c: Context) -> dict[str, str]:
    """Everything the server's build may need: what the local build used, the chosen
    buildout's own pins (eggs only production uses), and the develop releases."""
    s = c.settings
    pins: dict[str, str] = {}
    section = c.options_file.buildout.get("versions", "versions")
    base = Path(c.options_file.buildout["directory"])
    # the deepest extended file first, so the chosen buildout's own pins win
    for sections in reversed(cfgfiles.parsed_chain(base / s.buildout).values()):
        pins.update({k: v.strip() for k, v in sections.get(section, {}).items()
                     if v.strip() and not k.endswith(("+", "-"))})
    if s.versionsfile.is_file():
        pins.update(versions.read(s.versionsfile, section))
    pins.update({r.name: r.version for r in releases(c)})
    return pins


def chosen_chain(c: Context) -> list[Path]:
    base = Path(c.options_file.buildout["directory"])
    return cfgfiles.config_chain(base / c.settings.buildout)


def uploadeggs(c: Context) -> dict[str, str]:
    built = releases(c)
    found = {r.name: r.version for r in built}
    for r in built:
        verb = "changed. Releasing" if r.rebuilt else "unchanged. Reusing"
        c.out.info(f"Develop egg {r.source.name} {verb} {r.name} = {r.version}",
                   host=c.name)
    pins = remote_pins(c)
    others = {n: v for n, v in pins.items() if n not in found}
    new = ship(c, others, extra=[r.sdist for r in built])
    c.out.info("Eggs to transport: " + ", ".join(f"{n} = {v}" for n, v in found.items())
               if found else "No develop eggs to transport", host=c.name)
    c.out.info(f"{len(new)} new distribution file(s) uploaded", level=1, host=c.name)
    return found


# -- the buildout files ----------------------------------------------------------------------
def pinned_cfg(pins: Mapping[str, str], section: str) -> str:
    return versions.render(dict(sorted(pins.items())), section).replace(
        versions.HEADER, "# Generated by collective.hostout: every version this deploy uses.\n")


def hostout_cfg(c: Context, lay: Layout) -> str:
    s = c.settings
    lines = [
        f"# Generated by collective.hostout for {c.name}: the build this server runs.",
        "[buildout]",
        f"extends = {s.buildout} pinned.cfg",
        "develop =",
        f"download-cache = {lay.cache / 'downloads'}",
        f"eggs-directory = {lay.eggs}",
        "install-from-cache = true",
        "newest = false",
    ]
    if s.parts:
        lines.append("parts = " + " ".join(s.parts))
    return "\n".join(lines) + "\n"


def sync(c: Context, files: Mapping[PurePosixPath, Path]) -> list[PurePosixPath]:
    """Upload the files whose content differs on the server; return what travelled."""
    lay = layout(c)
    names = sorted(files)
    check = f"cd {q(lay.path)} && sha256sum -- {join([str(n) for n in names])} 2>/dev/null"
    res = c.remote.execute(RemoteCommand(check, via=Login.BUILDOUT), warn=True, hide=True,
                           echo=False)
    remote = {}
    for line in res.stdout.splitlines():
        digest, _, name = line.partition("  ")
        remote[name] = digest
    changed = [n for n in names if remote.get(str(n)) != cfgfiles.sha256(files[n])]
    dirs = sorted({str(lay.path / n.parent) for n in changed if str(n.parent) != "."})
    if dirs:
        c.remote.execute(RemoteCommand(join(["mkdir", "-p", *dirs]), via=Login.BUILDOUT),
                         echo=False)
    for n in changed:
        c.out.line(c.name, f"upload {n}")
        c.remote.put(files[n], lay.path / n, via=Login.BUILDOUT)
    return changed


MARKER = ".hostout-built"  # in path: the digest of the last successful build's inputs
SUDO_INSTALLED = ".installed-sudo.cfg"  # buildout's record of the sudo-parts


def build_digest(c: Context, files: Mapping[PurePosixPath, Path]) -> str:
    """What decides the server's build: every uploaded file (pinned.cfg carries every
    version, develop releases included) and the options that drive the build step."""
    s = c.settings
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{name}\0{cfgfiles.sha256(files[name])}\n".encode())
    h.update(repr((s.pre_commands, s.post_commands, s.sudo_parts, s.parts)).encode())
    return h.hexdigest()


def uploadbuildout(c: Context) -> list[PurePosixPath]:
    base = Path(c.options_file.buildout["directory"])
    lay = layout(c)
    section = c.options_file.buildout.get("versions", "versions")
    files = {cfgfiles.remote_name(p, base): p for p in chosen_chain(c)}
    for p in cfgfiles.include_files(c.settings.include, base):
        files[cfgfiles.remote_name(p, base)] = p
    generated = local_dir(c, c.name)
    (generated / "pinned.cfg").write_text(pinned_cfg(remote_pins(c), section))
    (generated / "hostout.cfg").write_text(hostout_cfg(c, lay))
    for name in ("pinned.cfg", "hostout.cfg"):
        if PurePosixPath(name) in files:
            raise HostoutError(f"{name} in your buildout clashes with the file hostout "
                               "generates on the server; rename it", host=c.name)
        files[PurePosixPath(name)] = generated / name
    c.state["build_digest"] = build_digest(c, files)
    return sync(c, files)


def built_already(c: Context) -> bool:
    """True when the server's last successful build had exactly these inputs."""
    digest = c.state.get("build_digest")
    if digest is None:
        return False
    marker = layout(c).path / MARKER
    res = c.remote.execute(RemoteCommand(f"cat {q(marker)} 2>/dev/null", via=Login.BUILDOUT),
                           warn=True, hide=True, echo=False)
    return res.ok and res.stdout.strip() == digest


def record_build(c: Context) -> None:
    digest = c.state.get("build_digest")
    if digest is not None:
        marker = layout(c).path / MARKER
        c.remote.execute(RemoteCommand(f"printf '%s\\n' {q(digest)} > {q(marker)}",
                                       via=Login.BUILDOUT), echo=False)


def run_commands(c: Context, label: str, commands: tuple[str, ...]) -> list[str]:
    """pre-/post-commands: as root in path; failures are reported and ignored (the seed)."""
    failed = []
    for command in commands:
        res = c.remote.execute(RemoteCommand(command, cwd=str(c.path), sudo=True), warn=True)
        if not res.ok:
            failed.append(command)
            c.out.error(f"Warning: {c.name}: {label} '{command}' exited {res.exited} "
                        "(ignored)")
    return failed


def uses_sudo(c: Context) -> bool:
    """Whether this deploy needs the login user's sudo anyway (the seed: pre/post-commands,
    sudo-parts, bootstrap), or has its password: then ownership is put right every time."""
    s = c.settings
    return bool(s.pre_commands or s.post_commands or s.sudo_parts or s.password
                or c.state.get("bootstrapped"))


def buildout(c: Context, *args: str) -> None:
    lay = layout(c)
    # umask 027: what the build writes is the group's to read and nobody else's
    cmd = f"umask 027 && {BUILD_ENV} {q(lay.buildout)} -c hostout.cfg {join(args)}".rstrip()
    run_commands(c, "pre-command", c.settings.pre_commands)
    try:
        c.remote.execute(RemoteCommand(f"rm -f {q(MARKER)}", cwd=str(lay.path),
                                       via=Login.BUILDOUT), echo=False)
        c.remote.execute(RemoteCommand(cmd, cwd=str(lay.path), via=Login.BUILDOUT))
        if c.settings.sudo_parts:
            # root's parts keep their own installed file, so the buildout user's next run
            # neither uninstalls them nor touches what root made
            root = (f"{cmd} buildout:installed={SUDO_INSTALLED} "
                    f"install {join(c.settings.sudo_parts)}")
            c.remote.execute(RemoteCommand(root, cwd=str(lay.path), sudo=True))
        if uses_sudo(c):
            setowners(c)
        else:
            c.out.info("no sudo in this deploy; run 'setowners' if the app must own new "
                       "files in var/", level=2, host=c.name)
        if not args:  # `buildout install x` or `annotate` is not the whole build
            record_build(c)
    finally:
        # Even after a failed build, bring the application back up as best we can.
        run_commands(c, "post-command", c.settings.post_commands)
