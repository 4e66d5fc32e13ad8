"""Release a buildout's develop packages as sdists whose version carries a content hash.

A develop package at version ``0.1`` is released as ``0.1.dev0+<hash>`` (``1.0.dev3`` as
``1.0.dev3+<hash>``), so ``name = version`` can be pinned in ``[versions]`` on a server
and a changed package gets a new version. The user's tree is never touched: the package
files (see :mod:`.hashing`) are copied to a temporary directory and the version is set
there, either by rewriting a static ``[project] version`` or, for setuptools, with
``[egg_info] tag_build`` in ``setup.cfg`` (which setuptools also writes into the sdist, so
the version survives a rebuild on the server).

The build uses the running Python without isolation when the ``[build-system]``
requirements are importable here (fast, offline), an isolated environment otherwise.
A JSON cache in the output directory maps each source to its last release, so an
unchanged package is not built again.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import build
import build.env
import pyproject_hooks
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import ReleaseError
from ..files import write_atomically
from .hashing import hash_files, package_files

CACHE_NAME = ".hostout-releases.json"
_CACHE_FORMAT = 1
_SETUPTOOLS_BACKEND = "setuptools.build_meta"
_DEFAULT_BACKEND = f"{_SETUPTOOLS_BACKEND}:__legacy__"


@dataclass(frozen=True)
class Release:
    name: str  # canonical project name
    version: str  # as written in the sdist's PKG-INFO
    sdist: Path
    hash: str
    source: Path
    rebuilt: bool


@dataclass(frozen=True)
class _Project:
    """What pyproject.toml says about how the version can be set."""

    backend: str
    static_version: str | None

    @property
    def setuptools(self) -> bool:
        return self.backend.startswith(_SETUPTOOLS_BACKEND)

    @property
    def needs_metadata(self) -> bool:
        """Whether the base version must be asked from the backend (it is not static)."""
        return self.static_version is None


def release(source: Path, dist_dir: Path, exclude: Sequence[Path] = ()) -> Release:
    """Build (or reuse) an sdist of the develop package at ``source`` in ``dist_dir``
    (``exclude``: see :func:`.hashing.package_files`)."""
    source = source.resolve()
    if not source.is_dir():
        raise ReleaseError(f"cannot release {source}: not a directory")
    dist_dir = dist_dir.resolve()
    dist_dir.mkdir(parents=True, exist_ok=True)
    files = package_files(source, exclude)
    cached = _cached_release(dist_dir, source, hash_files(source, files))
    if cached is not None:
        return cached
    made = _build_release(source, files, dist_dir)
    _remember(dist_dir, made)
    return made


def release_all(sources: Sequence[Path], dist_dir: Path,
                exclude: Sequence[Path] = ()) -> list[Release]:
    """Release each of ``sources`` (in order) into ``dist_dir``."""
    return [release(source, dist_dir, exclude) for source in sources]


# -- versions ---------------------------------------------------------------------------


def local_label(digest: str) -> str:
    """The hash as PEP 440 normalises it in a local label (an all-digit one loses leading 0s)."""
    local = Version(f"0+{digest}").local
    assert local is not None
    return local


def tagged_version(base: str, digest: str) -> str:
    """``base`` with the hash as local label, adding ``.dev0`` unless it has a dev part."""
    version = _parse_version(base)
    return f"{version}{_tag_for(version, digest)}"


def _tag_for(version: Version, digest: str) -> str:
    """What to append to ``version`` (also as setuptools' ``tag_build``)."""
    if version.local is not None:
        raise ReleaseError(
            f"version {version} already has a local label (+{version.local}); "
            "hostout needs the local label for the content hash"
        )
    dev = "" if version.dev is not None else ".dev0"
    return f"{dev}+{digest}"


def _parse_version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion as err:
        raise ReleaseError(f"{text!r} is not a PEP 440 version", cause=err) from err


# -- the cache ----------------------------------------------------------------------------


def _cached_release(dist_dir: Path, source: Path, digest: str) -> Release | None:
    entry = _read_cache(dist_dir).get(str(source))
    if not isinstance(entry, dict) or entry.get("hash") != digest:
        return None
    try:
        sdist = dist_dir / entry["sdist"]
        name, version = str(entry["name"]), str(entry["version"])
    except (KeyError, TypeError):
        return None
    if sdist.parent != dist_dir or not sdist.is_file():
        return None
    return Release(name, version, sdist, digest, source, rebuilt=False)


def _read_cache(dist_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((dist_dir / CACHE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT:
        return {}
    releases = data.get("releases")
    return releases if isinstance(releases, dict) else {}


def _remember(dist_dir: Path, made: Release) -> None:
    """Record ``made`` as its source's release; the sdist it replaces is deleted (the
    servers hold theirs: a sdist per change would pile up here)."""
    releases = _read_cache(dist_dir)
    old = releases.get(str(made.source))
    if isinstance(old, dict) and isinstance(old.get("sdist"), str):
        others = {e.get("sdist") for k, e in releases.items()
                  if k != str(made.source) and isinstance(e, dict)}
        stale = dist_dir / old["sdist"]
        if stale.name != made.sdist.name and stale.name not in others and \
                stale.parent == dist_dir:
            stale.unlink(missing_ok=True)
    releases[str(made.source)] = {
        "hash": made.hash,
        "name": made.name,
        "version": made.version,
        "sdist": made.sdist.name,
    }
    data = {"format": _CACHE_FORMAT, "releases": dict(sorted(releases.items()))}
    write_atomically(dist_dir / CACHE_NAME, json.dumps(data, indent=2) + "\n")


# -- building -----------------------------------------------------------------------------


def _build_release(source: Path, files: list[str], dist_dir: Path) -> Release:
    with (
        tempfile.TemporaryDirectory(prefix="hostout-release-") as tmp,
        tempfile.TemporaryDirectory(prefix=".hostout-build-", dir=dist_dir) as out,
        _errors_naming(source),
    ):
        work = Path(tmp) / (source.name or "package")
        _copy_files(source, files, work)
        digest = hash_files(work, files)  # what is really built, even if source just changed
        project = _read_project(work)  # fails early if the version cannot be set
        with _project_builder(work, project.needs_metadata) as builder:
            _set_version(project, builder, work, digest)
            built = Path(builder.build("sdist", out))
        name, version = _read_pkg_info(built)
        if not _carries(version, digest):
            raise ReleaseError(
                f"the built version {version} does not end with the content hash {digest}"
                " (does the build compute its own version?)"
            )
        sdist = dist_dir / built.name
        os.replace(built, sdist)
    return Release(canonicalize_name(name), version, sdist, digest, source, rebuilt=True)


@contextlib.contextmanager
def _errors_naming(source: Path) -> Iterator[None]:
    """Turn build failures into one-line ReleaseErrors that name ``source``."""
    try:
        yield
    except ReleaseError as err:
        raise ReleaseError(f"cannot release {source}: {err.message}", cause=err.cause) from err
    except (build.BuildException, build.BuildBackendException, build.FailedProcessError) as err:
        raise ReleaseError(f"cannot build {source}: {_last_line(err)}", cause=err) from err
    except OSError as err:  # an unreadable file, a full disk
        raise ReleaseError(f"cannot release {source}: {err}", cause=err) from err


def _copy_files(source: Path, files: list[str], work: Path) -> None:
    work.mkdir(parents=True)
    for rel in files:
        target = work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, target, follow_symlinks=False)


def _carries(version: str, digest: str) -> bool:
    try:
        return Version(version).local == local_label(digest)
    except InvalidVersion:
        return False


@contextlib.contextmanager
def _project_builder(work: Path, needs_metadata: bool) -> Iterator[build.ProjectBuilder]:
    """A builder for ``work``: in this Python if its build requirements are met here.

    Otherwise in an isolated environment (which pip fills from the index), with what the
    metadata hook needs too when ``needs_metadata``.
    """
    runner = _runner_with_our_path()
    builder = build.ProjectBuilder(work, python_executable=sys.executable, runner=runner)
    if not _unmet(builder.build_system_requires):
        yield builder
        return
    quiet = pyproject_hooks.quiet_subprocess_runner
    with build.env.DefaultIsolatedEnv() as env:
        builder = build.ProjectBuilder.from_isolated_env(env, work, runner=quiet)
        env.install(builder.build_system_requires)
        env.install(builder.get_requires_for_build("sdist"))
        if needs_metadata:
            env.install(builder.get_requires_for_build("wheel"))
        yield builder


def _unmet(requirements: set[str]) -> set[tuple[str, ...]]:
    return {unmet for req in requirements for unmet in build.check_dependency(req)}


def _runner_with_our_path() -> build.RunnerType:
    """A quiet hook runner whose Python sees what this process sees.

    The build requirements were checked against ``sys.path``, which can be more than
    ``sys.executable`` sees on its own (a buildout script puts its eggs there).
    """
    path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))

    def run(
        cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
    ) -> None:
        environ = {"PYTHONPATH": path, **(extra_environ or {})}
        pyproject_hooks.quiet_subprocess_runner(cmd, cwd, environ)

    return run


def _last_line(err: BaseException) -> str:
    """The last non-blank line of what the backend (or pip) said, else the error itself."""
    inner = getattr(err, "exception", None)
    text = ""
    if isinstance(inner, subprocess.CalledProcessError):
        text = _decode(inner.output) + "\n" + _decode(inner.stderr)
    elif isinstance(inner, pyproject_hooks.BackendUnavailable):
        text = inner.traceback
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines:
        return lines[-1]
    return " ".join(str(err).split()) or type(err).__name__


def _decode(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data or ""


# -- setting the version in the copy ------------------------------------------------------


def _set_version(project: _Project, builder: build.ProjectBuilder, work: Path, digest: str) -> None:
    label = local_label(digest)
    if project.static_version is not None:
        _rewrite_project_version(
            work / "pyproject.toml", tagged_version(project.static_version, label)
        )
        if project.setuptools:
            _neutralise_user_tags(work / "setup.cfg")
        return
    _write_egg_info(work / "setup.cfg", tag_build="")  # the base version without user tags
    base = _metadata_version(builder, work)
    _write_egg_info(work / "setup.cfg", tag_build=_tag_for(_parse_version(base), label))


def _read_project(work: Path) -> _Project:
    """How the version of the package in ``work`` can be set; ReleaseError if it cannot."""
    pyproject = work / "pyproject.toml"
    if not pyproject.is_file():
        if not (work / "setup.py").is_file():
            raise ReleaseError("it has neither pyproject.toml nor setup.py")
        return _Project(_DEFAULT_BACKEND, None)
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ReleaseError(f"cannot read pyproject.toml: {err}", cause=err) from err
    backend = str(data.get("build-system", {}).get("build-backend", _DEFAULT_BACKEND))
    table = data.get("project", {})
    static = table.get("version") if "version" not in table.get("dynamic", ()) else None
    project = _Project(backend, str(static) if static is not None else None)
    if project.static_version is None and not project.setuptools:
        raise ReleaseError(
            f"its version is dynamic and its build backend ({backend}) is not setuptools: "
            "hostout can only tag a static [project] version there"
        )
    return project


_TABLE = re.compile(r"^\s*\[")
_PROJECT_TABLE = re.compile(r"^\s*\[\s*project\s*\]\s*(#.*)?$")
_VERSION_KEY = re.compile(r"""^(\s*version\s*=\s*)(["'])[^"'\n]*\2""")


def _rewrite_project_version(pyproject: Path, version: str) -> None:
    text = pyproject.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    in_project = False
    for i, line in enumerate(lines):
        if _TABLE.match(line):
            in_project = bool(_PROJECT_TABLE.match(line))
        elif in_project and _VERSION_KEY.match(line):
            lines[i] = _VERSION_KEY.sub(lambda m: f'{m[1]}"{version}"', line, count=1)
            break
    new = "".join(lines)
    if tomllib.loads(new).get("project", {}).get("version") != version:
        raise ReleaseError(
            "cannot rewrite the [project] version in pyproject.toml: write it on one line "
            'as version = "X.Y" inside the [project] table'
        )
    pyproject.write_text(new, encoding="utf-8")


def _metadata_version(builder: build.ProjectBuilder, work: Path) -> str:
    """The untagged version, as the backend computes it."""
    with tempfile.TemporaryDirectory(prefix="hostout-metadata-") as out:
        metadata = Path(builder.metadata_path(out)) / "METADATA"
        version = _headers(metadata.read_text(encoding="utf-8")).get("Version")
    for leftover in work.rglob("*.egg-info"):  # keep the copy as clean as the source
        shutil.rmtree(leftover, ignore_errors=True)
    if not version:
        raise ReleaseError("the backend's metadata has no Version")
    return version


# setup.cfg is edited as text: configparser would drop comments and lowercase keys.
_SECTION = re.compile(r"^\s*\[([^\]]*)\]")
_OPTION = re.compile(r"^([A-Za-z0-9_.-]+)\s*[=:]")
_EGG_INFO_KEYS = frozenset({"tag_build", "tag_date"})


def _write_egg_info(setup_cfg: Path, *, tag_build: str) -> None:
    """Set ``[egg_info] tag_build`` (and no date tag) in ``setup_cfg``, keeping the rest."""
    text = setup_cfg.read_text(encoding="utf-8") if setup_cfg.exists() else ""
    new = _with_egg_info(text, {"tag_build": tag_build, "tag_date": "0"})
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(new)
        ok = parser.get("egg_info", "tag_build", fallback=None) == tag_build
    except configparser.Error:
        ok = False
    if not ok:
        raise ReleaseError(f"cannot set [egg_info] tag_build in {setup_cfg.name}")
    setup_cfg.write_text(new, encoding="utf-8")


def _neutralise_user_tags(setup_cfg: Path) -> None:
    """A static version is final: drop a tag_build/tag_date the user's setup.cfg adds."""
    if not setup_cfg.is_file():
        return
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    with contextlib.suppress(configparser.Error):
        parser.read_string(setup_cfg.read_text(encoding="utf-8"))
    if any(parser.get("egg_info", key, fallback="") for key in ("tag_build", "tag_date")):
        _write_egg_info(setup_cfg, tag_build="")


def _with_egg_info(text: str, options: Mapping[str, str]) -> str:
    out: list[str] = []
    ours = [f"{key} = {value}".rstrip() for key, value in options.items()]
    in_section = inserted = False
    for line in text.splitlines():
        header = _SECTION.match(line)
        if header:
            in_section = header[1].strip() == "egg_info"
            out.append(line)
            if in_section and not inserted:
                out.extend(ours)
                inserted = True
            continue
        option = _OPTION.match(line)
        if in_section and option and option[1].lower().replace("-", "_") in _EGG_INFO_KEYS:
            continue
        out.append(line)
    if not inserted:
        out.extend(["", "[egg_info]", *ours] if out else ["[egg_info]", *ours])
    return "\n".join(out) + "\n"


# -- reading the result -------------------------------------------------------------------


def _read_pkg_info(sdist: Path) -> tuple[str, str]:
    """(Name, Version) from the sdist's top-level PKG-INFO."""
    try:
        with tarfile.open(sdist) as tar:
            member = next(
                m
                for m in tar.getmembers()
                if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")
            )
            fh = tar.extractfile(member)
            assert fh is not None
            headers = _headers(fh.read().decode("utf-8"))
    except (OSError, tarfile.TarError, StopIteration, UnicodeDecodeError) as err:
        raise ReleaseError(f"cannot read PKG-INFO in {sdist.name}", cause=err) from err
    if "Name" not in headers or "Version" not in headers:
        raise ReleaseError(f"PKG-INFO in {sdist.name} lacks Name or Version")
    return headers["Name"], headers["Version"]


def _headers(text: str) -> Mapping[str, str]:
    message = HeaderParser().parsestr(text)
    return {key: str(message[key]).strip() for key in ("Name", "Version") if message[key]}
