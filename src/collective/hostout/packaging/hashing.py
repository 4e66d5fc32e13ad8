"""Which files make up a develop package, and a short fingerprint of them.

Inside a git work tree the files are what ``git ls-files --cached --others
--exclude-standard`` lists below the package (tracked plus untracked-but-not-ignored);
elsewhere every file below it. Build artefacts are left out in both cases, so a repository
without a ``.gitignore`` still gets the same fingerprint after a local build.

The fingerprint covers relative paths, contents and the executable bit (and symlink
targets), in sorted order: it changes on renames and edits, never on mtimes or on where
the tree lives.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

HASH_LENGTH = 10

#: Directory or file names left out wherever they are.
EXCLUDED_NAMES = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".tox",
        ".venv",
        ".nox",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
    }
)
#: Names left out only directly below the package: a backend's output directories
#: (a ``mypkg/build/`` subpackage deeper down is kept).
EXCLUDED_TOP_NAMES = frozenset({"build", "dist"})
EXCLUDED_DIR_SUFFIXES = (".egg-info",)
EXCLUDED_FILE_SUFFIXES = (".pyc", ".pyo")


def content_hash(source: Path, exclude: Iterable[Path] = ()) -> str:
    """Short sha256 (10 hex chars) of the files that make up the package at ``source``."""
    return hash_files(source, package_files(source, exclude))


def package_files(source: Path, exclude: Iterable[Path] = ()) -> list[str]:
    """Sorted POSIX paths, relative to ``source``, of the files that make up the package;
    ``exclude``: more files or directories left out where they lie below ``source`` (what
    buildout writes, when the package is the buildout's own directory)."""
    below = _relative_below(source, exclude)
    listed = _git_files(source)
    if not listed:  # not in git, git missing, or the whole directory is ignored
        listed = _walk_files(source, below)
    return sorted(p for p in set(listed)
                  if not is_excluded(p) and not _in(p, below) and _is_entry(source / p))


def _relative_below(source: Path, paths: Iterable[Path]) -> tuple[str, ...]:
    root = os.path.realpath(source)
    found = []
    for path in paths:
        rel = os.path.relpath(os.path.realpath(path), root)
        if rel != "." and not rel.startswith(".." + os.sep) and rel != "..":
            found.append(PurePosixPath(*Path(rel).parts).as_posix())
    return tuple(found)


def _in(rel: str, below: Iterable[str]) -> bool:
    return any(rel == b or rel.startswith(b + "/") for b in below)


def hash_files(source: Path, files: Iterable[str]) -> str:
    """Fingerprint of ``files`` (relative POSIX paths) below ``source``."""
    digest = hashlib.sha256()
    for rel in sorted(files):
        kind, payload = _describe(source / rel)
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0" + kind + b"\0" + payload)
    return digest.hexdigest()[:HASH_LENGTH]


def is_excluded(rel: str) -> bool:
    """Whether the relative POSIX path ``rel`` is a build artefact or tool cache."""
    parts = PurePosixPath(rel).parts
    if not parts:
        return True
    if parts[0] in EXCLUDED_TOP_NAMES and len(parts) > 1:
        return True
    if any(part in EXCLUDED_NAMES for part in parts):
        return True
    if any(part.endswith(EXCLUDED_DIR_SUFFIXES) for part in parts[:-1]):
        return True
    return parts[-1].endswith(EXCLUDED_FILE_SUFFIXES)


def _git_files(source: Path) -> list[str] | None:
    """What git lists below ``source``; None when ``source`` is not in a git work tree."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=source,
            capture_output=True,
            check=False,
        )
    except OSError:  # git not installed, or source not a directory
        return None
    if done.returncode != 0:
        return None
    return [os.fsdecode(p) for p in done.stdout.split(b"\0") if p]


def _walk_files(source: Path, below: tuple[str, ...] = ()) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(source):
        base = Path(dirpath).relative_to(source)
        kept = []
        for name in sorted(dirnames):
            rel = (base / name).as_posix()
            if is_excluded(f"{rel}/x") or _in(rel, below):
                continue
            if (Path(dirpath) / name).is_symlink():
                found.append(rel)  # a symlink counts as an entry; never followed
            else:
                kept.append(name)
        dirnames[:] = kept
        found.extend((base / name).as_posix() for name in filenames)
    return found


def _is_entry(path: Path) -> bool:
    """Regular files and symlinks count; directories (e.g. git submodules) do not."""
    return path.is_symlink() or path.is_file()


def _describe(path: Path) -> tuple[bytes, bytes]:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return b"l", os.fsencode(os.readlink(path))
    kind = b"x" if info.st_mode & 0o111 else b"f"
    return kind, _file_digest(path)


def _file_digest(path: Path) -> bytes:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").digest()
