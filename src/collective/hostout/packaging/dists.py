"""Distribution files for pinned versions, so a server builds without any package index.

Every ``name = version`` the local buildout used is matched to a wheel or sdist: first in the
local caches (buildout's download-cache, hostout's own dist cache), then with one
``pip download`` for whatever is missing. The server gets them in its download cache and
builds with ``install-from-cache``: no index is read, so the find-links full-index scan
cannot happen, and a server with no way out deploys as well as one with.

When the server's Python or platform differs from this machine's, pure-Python wheels and
sdists still serve; binary wheels are downloaded for the server's platform tags, and a
package that has none is an error naming it (build it on a machine like the server).
"""

from __future__ import annotations

import platform as _platform
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.tags import parse_tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from ..errors import DistributionError
from ..shell import last_line

SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tgz")


@dataclass(frozen=True)
class Target:
    """The Python a server runs: ``3.11`` on ``linux-x86_64``."""

    python_version: str
    platform: str
    # 3.11.2: decides environment markers (python_full_version), not which wheels fit
    python_full: str = field(default="", compare=False)

    @classmethod
    def local(cls) -> Target:
        return cls(f"{sys.version_info.major}.{sys.version_info.minor}",
                   sysconfig.get_platform(), python_full=_platform.python_version())

    def markers(self) -> dict[str, str]:
        """The environment markers that differ on this target from this machine's Python
        (``python_full_version`` 3.11.2 against 3.11.7 decides e.g. redis's need of
        async-timeout); empty when they are the same."""
        here = Target.local()
        found = {}
        if self.python_full and self.python_full != here.python_full:
            found["python_full_version"] = self.python_full
        if self.python_version != here.python_version:
            found["python_version"] = self.python_version
        return found

    @property
    def pip_platforms(self) -> list[str]:
        """pip --platform values for this target (manylinux first, then plain linux)."""
        os_name, _, arch = self.platform.partition("-")
        if os_name != "linux":
            return [self.platform.replace("-", "_").replace(".", "_")]
        return [f"manylinux_2_{m}_{arch}" for m in (36, 34, 31, 28, 24, 17)] + [
            f"manylinux2014_{arch}", f"linux_{arch}"]


def parse_filename(name: str) -> tuple[str, Version, bool] | None:
    """(canonical name, version, is a pure or source distribution) of a dist file name."""
    try:
        if name.endswith(".whl"):
            project, version, _build, tags = parse_wheel_filename(name)
            pure = all(t.platform == "any" for t in tags)
            return project, version, pure
        if name.endswith(SDIST_SUFFIXES):
            stem = name
            for suffix in SDIST_SUFFIXES:
                stem = stem.removesuffix(suffix)
            project, version = parse_sdist_filename(stem + ".tar.gz")
            return project, version, True
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return None


def _wanted(pins: Mapping[str, str]) -> dict[str, Version]:
    wanted: dict[str, Version] = {}
    for name, version in pins.items():
        try:
            wanted[canonicalize_name(name)] = Version(version)
        except InvalidVersion as err:
            raise DistributionError(f"pin {name} = {version} is not a valid version",
                                    cause=err) from err
    return wanted


def _fits(path: Path, target: Target, local: Target) -> bool:
    parsed = parse_filename(path.name)
    if parsed is None:
        return False
    if parsed[2] or target == local:
        return True
    # a binary wheel from this machine: only if its tags name the target's platform
    tags = path.name.removesuffix(".whl").split("-")[-3:]
    return any(t.platform in target.pip_platforms for t in parse_tag("-".join(tags)))


def find_local(pins: Mapping[str, str], directories: Iterable[Path], target: Target
               ) -> tuple[dict[str, Path], dict[str, str]]:
    """Files already here for ``pins`` -> (found by canonical name, still missing pins)."""
    wanted = _wanted(pins)
    local = Target.local()
    found: dict[str, Path] = {}
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            parsed = parse_filename(path.name)
            if parsed is None:
                continue
            name, version, _ = parsed
            if name in found or wanted.get(name) != version or not _fits(path, target, local):
                continue
            if path.name.endswith(".whl"):
                found[name] = path
            else:
                found.setdefault(name, path)
    missing = {n: v for n, v in pins.items() if canonicalize_name(n) not in found}
    return found, missing


def pip_download(pins: Mapping[str, str], dest: Path, target: Target) -> list[str]:
    """The ``pip download`` command line that fetches ``pins`` (without dependencies)."""
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            "-q", "-d", str(dest)]
    if target != Target.local():
        argv += ["--only-binary=:all:", "--python-version", target.python_version,
                 "--implementation", "cp"]
        for platform in target.pip_platforms:
            argv += ["--platform", platform]
    return argv + [f"{name}=={version}" for name, version in sorted(pins.items())]


def collect(pins: Mapping[str, str], dest: Path, *, caches: Iterable[Path] = (),
            target: Target | None = None,
            known: MutableMapping[str, str] | None = None) -> dict[str, Path]:
    """A distribution file for every pin, downloading only what no local cache holds."""
    target = target or Target.local()
    dest.mkdir(parents=True, exist_ok=True)
    directories = [dest, *caches]
    found, missing = find_local(pins, directories, target)
    if missing:
        proc = subprocess.run(pip_download(missing, dest, target), text=True,
                              capture_output=True, check=False)
        found, missing = find_local(pins, directories, target)
        if missing:
            last = last_line(proc.stderr)
            names = ", ".join(f"{n}=={v}" for n, v in sorted(missing.items()))
            where = "" if target == Target.local() else (
                f" for the server's Python {target.python_version} on {target.platform}")
            raise DistributionError(f"no distribution of {names}{where} could be found or "
                                    f"downloaded: {last}")
    check_python(found, target, known)
    return found


def requires_python(path: Path) -> str | None:
    """A wheel's Requires-Python (None for sdists, or when it says nothing)."""
    if not path.name.endswith(".whl"):
        return None
    import email.parser
    import zipfile

    try:
        with zipfile.ZipFile(path) as whl:
            name = next((n for n in whl.namelist()
                         if n.count("/") == 1 and n.endswith(".dist-info/METADATA")), None)
            if name is None:
                return None
            meta = email.parser.HeaderParser().parsestr(whl.read(name).decode("utf-8", "replace"))
    except (OSError, zipfile.BadZipFile):
        return None
    return meta.get("Requires-Python")


def check_python(files: Mapping[str, Path], target: Target,
                 known: MutableMapping[str, str] | None = None) -> None:
    """Refuse distributions the server's Python cannot install (its 3.11.2 against a wheel
    that requires >=3.11.5), all named in one line, before anything is uploaded. Where the
    server runs this machine's very Python version, the local build proved them already.
    ``known`` remembers each file's Requires-Python by name (names are unique)."""
    if not target.python_full or target.python_full == Target.local().python_full:
        return
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    python = Version(target.python_full)
    bad = []
    known = {} if known is None else known
    for path in sorted(files.values()):
        if path.name not in known:
            known[path.name] = requires_python(path) or ""
        spec = known[path.name]
        try:
            if spec and python not in SpecifierSet(spec):
                parsed = parse_filename(path.name)
                what = f"{parsed[0]} {parsed[1]}" if parsed else path.name
                bad.append(f"{what} (requires Python {spec})")
        except InvalidSpecifier:
            continue
    if bad:
        raise DistributionError(f"the server's Python {target.python_full} cannot install "
                                + "; ".join(bad) + ": pin versions that support it (or give "
                                "the server a newer Python)")
