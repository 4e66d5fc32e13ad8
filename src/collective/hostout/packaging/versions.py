"""The versions a local buildout used, written to ``hostoutversions.cfg`` and pinned remotely."""

from __future__ import annotations

import configparser
import importlib.metadata
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.utils import canonicalize_name

#: What a remote venv needs to run zc.buildout 6; always pinned to the local versions.
BOOTSTRAP_DISTS = ("zc.buildout", "setuptools", "pip", "wheel", "packaging", "platformdirs")

_EGG = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-py\d+(\.\d+)?(-.*)?\.egg$")

HEADER = """\
# Written by collective.hostout at the end of each bin/buildout run: the version of every
# egg this buildout used. 'bin/hostout HOST deploy' pins all of them on the server.
"""


def installed_eggs(eggs_directory: Path) -> set[tuple[str, str]]:
    """(canonical name, version) of every egg buildout installed in ``eggs_directory``."""
    found: set[tuple[str, str]] = set()
    if not eggs_directory.is_dir():
        return found
    for entry in eggs_directory.iterdir():
        m = _EGG.match(entry.name)
        if m:
            found.add((canonicalize_name(m["name"]), m["version"]))
    return found


def environment_versions(names: Iterable[str]) -> dict[str, str]:
    """Versions of distributions installed where buildout itself runs."""
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def used_versions(
    *,
    pins: Mapping[str, str],
    picked: Mapping[str, str],
    eggs: set[tuple[str, str]],
    environment: Mapping[str, str],
    develop: Iterable[str] = (),
) -> dict[str, str]:
    """The version of each egg the build used: pinned or picked, and really installed.

    A pin that no installed egg matches was not used (a big versions.cfg pins far more
    than one buildout needs); develop packages are released separately, not pinned here.
    """
    skip = {canonicalize_name(d) for d in develop}
    installed = {(canonicalize_name(n), v) for n, v in eggs}
    installed |= {(canonicalize_name(n), v) for n, v in environment.items()}
    result: dict[str, str] = {}
    for source in (pins, picked):
        for name, version in source.items():
            key = canonicalize_name(name)
            version = version.strip().lstrip("=").strip()
            if key in skip or not version:
                continue
            if (key, version) in installed:
                result[name] = version
    for name in BOOTSTRAP_DISTS:
        if name in environment:
            result[name] = environment[name]
    return dict(sorted(result.items(), key=lambda kv: canonicalize_name(kv[0])))


def render(versions: Mapping[str, str], section: str = "versions") -> str:
    body = "".join(f"{name} = {version}\n" for name, version in versions.items())
    return f"{HEADER}[{section}]\n{body}"


def write(path: Path, versions: Mapping[str, str], section: str = "versions") -> bool:
    """Write the versions file; False (and no write) when it already says the same."""
    text = render(versions, section)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def read(path: Path, section: str = "versions") -> dict[str, str]:
    parser = configparser.RawConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    if not parser.has_section(section):
        return {}
    return dict(parser.items(section))
