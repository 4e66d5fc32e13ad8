"""Python for a Debian/Ubuntu server that cannot reach its package mirror.

When this machine runs the same release on the same architecture, its apt knows the very
packages the server needs: hostout works out the dependency closure of pythonX.Y-venv,
leaves out what the server already has, downloads the rest here and installs them there
with dpkg. Any other combination is a clear error: install Python there yourself.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from ..errors import HostoutError
from ..shell import last_line
from .system import OsRelease

DEPENDS = ["apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
           "--no-breaks", "--no-replaces", "--no-enhances"]

#: (alternatives of one dependency; each alternative lists the packages that satisfy it:
#: the package itself, or the providers of a virtual one)
Group = list[list[str]]


def local_release() -> OsRelease:
    try:
        return OsRelease.parse(Path("/etc/os-release").read_text())
    except OSError:
        return OsRelease(id="")


def _run(argv: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(argv, cwd=cwd, text=True, capture_output=True, check=False)
    except FileNotFoundError as err:
        raise HostoutError(f"{argv[0]} is not available on this machine", cause=err) from err
    if proc.returncode:
        raise HostoutError(f"{' '.join(argv[:3])} failed here: "
                           f"{last_line(proc.stderr, 'failed')}")
    return proc.stdout


def local_arch() -> str:
    return _run(["dpkg", "--print-architecture"]).strip()


def parse_depends(output: str) -> dict[str, list[Group]]:
    """``apt-cache depends`` (not recursive) -> package: its dependency groups.

    `` |Depends: a`` continues a group with the next line's alternative; ``<virtual>`` is
    followed by its providers, indented deeper.
    """
    result: dict[str, list[Group]] = {}
    groups: list[Group] = []
    continues = False
    for line in output.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            groups = result.setdefault(line.strip(), [])
            continues = False
        elif line.startswith("    "):  # a provider of the virtual package just named
            if groups:
                groups[-1][-1].append(line.strip())
        else:
            kind, _, name = line.strip().lstrip("|").partition(": ")
            if kind not in ("Depends", "PreDepends"):
                continues = False
                continue
            alternative = [] if name.startswith("<") else [name.split(":")[0]]
            if continues and groups:
                groups[-1].append(alternative)
            else:
                groups.append([alternative])
            continues = line.startswith(" |")
    return result


def closure(packages: list[str], installed: set[str],
            depends: Callable[[list[str]], dict[str, list[Group]]]) -> list[str]:
    """What must be added to a system that has ``installed`` (names and provided names) to
    install ``packages``: the first satisfiable alternative of each dependency only."""
    needed: list[str] = []
    queue = [p for p in packages if p not in installed]
    while queue:
        known = depends(queue)
        unknown = [p for p in queue if p not in known]
        if unknown:
            raise HostoutError(f"this machine's package lists have no {', '.join(unknown)}")
        needed.extend(queue)
        have = installed | set(needed)
        nxt: list[str] = []
        for pkg in queue:
            for group in known[pkg]:
                options = [name for alternative in group for name in alternative]
                if not options or any(n in have or n in nxt for n in options):
                    continue
                nxt.append(options[0])
        queue = sorted(set(nxt) - have)
    return sorted(set(needed))


def compatible(server: OsRelease, server_arch: str) -> str | None:
    """None when this machine can supply the server's packages, else why not."""
    here = local_release()
    if here.family != "debian" or (here.id, here.codename) != (server.id, server.codename):
        return f"this machine runs {here.pretty or 'something else'}, the server {server.pretty}"
    try:
        arch = local_arch()
    except HostoutError as err:
        return str(err)
    if arch != server_arch:
        return f"this machine is {arch}, the server {server_arch}"
    return None


def download(packages: list[str], installed: set[str], dest: Path) -> list[Path]:
    """The .deb files of ``packages`` and their dependencies that the server lacks
    (``installed``: its package names and the names they provide)."""
    needed = closure(packages, installed, lambda names: parse_depends(_run([*DEPENDS, *names])))
    dest.mkdir(parents=True, exist_ok=True)
    if needed:
        _run(["apt-get", "download", "-q", *needed], cwd=dest)
    files = []
    for name in needed:
        matches = sorted(dest.glob(f"{name}_*.deb"))
        if not matches:
            raise HostoutError(f"apt-get download gave no package {name}")
        files.append(matches[-1])
    return files
