"""The versions a local buildout used, written to ``hostoutversions.cfg`` and pinned remotely."""

from __future__ import annotations

import configparser
import importlib.metadata
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

#: What a remote venv needs to run zc.buildout 6; always pinned to the local versions.
BOOTSTRAP_DISTS = ("zc.buildout", "setuptools", "pip", "wheel", "packaging", "platformdirs")

HEADER = """\
# Written by collective.hostout at the end of each bin/buildout run: the version of every
# distribution this build used (parts' eggs, recipes, extensions, wherever buildout found
# them). 'bin/hostout HOST deploy' pins all of them on the server.
"""


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
    used: Iterable[tuple[str, str]],
    *,
    pins: Mapping[str, str] = {},
    environment: Mapping[str, str] = {},
) -> dict[str, str]:
    """One version per distribution a build used (``used``: (name, version) pairs, develop
    packages already left out), plus zc.buildout & co. at ``environment``'s versions.

    A name used at two versions in one run (an egg of buildout's own environment, and the
    same egg at the pinned version in the eggs directory for a part) gets the version the
    buildout's ``pins`` ask for, else the newest. Pins that no used distribution matches
    are left out: a big versions.cfg pins far more than one buildout needs.
    """
    by_key: dict[str, dict[str, str]] = {}
    for name, version in used:
        by_key.setdefault(canonicalize_name(name), {})[version] = name
    pinned = {canonicalize_name(n): v.strip().lstrip("=").strip() for n, v in pins.items()}
    result: dict[str, str] = {}
    for key, found in by_key.items():
        version = pinned.get(key)
        if version not in found:
            version = max(found, key=_sort_key)
        result[found[version]] = version
    for name in BOOTSTRAP_DISTS:
        if name in environment:
            for other in [n for n in result if canonicalize_name(n) == canonicalize_name(name)]:
                del result[other]
            result[name] = environment[name]
    return dict(sorted(result.items(), key=lambda kv: canonicalize_name(kv[0])))


def _sort_key(version: str) -> Version | tuple[()]:
    try:
        return Version(version)
    except InvalidVersion:
        return ()


def unpinned(used: Mapping[str, str], pins: Mapping[str, str]) -> list[str]:
    """Names in ``used`` that ``pins`` (what the buildout's own cfg files pin) lack."""
    pinned = {canonicalize_name(n) for n in pins}
    return sorted((n for n in used if canonicalize_name(n) not in pinned),
                  key=canonicalize_name)


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
