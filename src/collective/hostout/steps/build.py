"""The remote build: pre-commands, bin/buildout as the buildout user, sudo-parts as root,
ownership, post-commands (the ``buildout`` command), and the marker that lets an unchanged
deploy skip it."""

from __future__ import annotations

import re
import time

from ..commands.context import Context
from ..shell import Account, RemoteCommand, join, q
from .accounts import setowners
from .base import state
from .shipping import BUILD_ENV

MARKER = ".hostout-built"  # in path: the digest of the last successful build's inputs
SUDO_INSTALLED = ".installed-sudo.cfg"  # buildout's record of the sudo-parts


def built_already(c: Context) -> bool:
    """True when the server's last successful build had exactly these inputs."""
    digest = state(c).build_digest
    if digest is None:
        return False
    marker = c.settings.layout.path / MARKER
    res = c.remote.execute(RemoteCommand(f"cat {q(marker)} 2>/dev/null",
                                         account=Account.BUILDOUT),
                           warn=True, hide=True, echo=False)
    return res.ok and res.stdout.strip() == digest


def record_build(c: Context) -> None:
    digest = state(c).build_digest
    if digest is not None:
        marker = c.settings.layout.path / MARKER
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


def run_commands(c: Context, label: str, commands: tuple[str, ...]) -> list[str]:
    """pre-/post-commands: as root in path; failures are reported and ignored (the seed)."""
    failed = []
    for command in commands:
        res = c.remote.execute(RemoteCommand(command, cwd=str(c.path), sudo=True), warn=True)
        if not res.ok:
            failed.append(command)
            c.warn(f"{label} '{command}' exited {res.exited} (ignored)")
    return failed


def uses_sudo(c: Context) -> bool:
    """Whether this deploy needs the login user's sudo anyway (the seed: pre/post-commands,
    sudo-parts, bootstrap), or has its password: then ownership is put right every time."""
    s = c.settings
    return bool(s.pre_commands or s.post_commands or s.sudo_parts or s.password
                or state(c).bootstrapped)


def run_buildout(c: Context, *args: str) -> None:
    lay = c.settings.layout
    # umask 027: what the build writes is the group's to read and nobody else's
    script = f"umask 027 && {q(lay.buildout_script)} -c hostout.cfg {join(args)}".rstrip()
    run_commands(c, "pre-command", c.settings.pre_commands)
    try:
        c.remote.execute(RemoteCommand(f"rm -f {q(MARKER)}", cwd=str(lay.path),
                                       account=Account.BUILDOUT), echo=False)
        began = time.monotonic()
        result = c.remote.execute(RemoteCommand(script, cwd=str(lay.path), env=BUILD_ENV,
                                                account=Account.BUILDOUT, network=True))
        c.report(build_summary(result.stdout + result.stderr, time.monotonic() - began))
        if c.settings.sudo_parts:
            # root's parts keep their own installed file, so the buildout user's next run
            # neither uninstalls them nor touches what root made
            root = (f"{script} buildout:installed={SUDO_INSTALLED} "
                    f"install {join(c.settings.sudo_parts)}")
            c.remote.execute(RemoteCommand(root, cwd=str(lay.path), env=BUILD_ENV, sudo=True,
                                           network=True))
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
