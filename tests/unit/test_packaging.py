"""Releasing develop packages: content hashes and sdists built from real tiny packages."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from collective.hostout.config.facts import BuildoutFacts
from collective.hostout.errors import HostoutError
from collective.hostout.packaging.hashing import content_hash
from collective.hostout.packaging.release import (
    CACHE_NAME,
    ReleaseError,
    local_label,
    release,
    release_all,
    tagged_version,
)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


# -- tiny packages ------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_static(root: Path, name: str = "demo_static") -> Path:
    """pyproject.toml with a static version and the setuptools backend, src layout."""
    write(
        root / "pyproject.toml",
        "[build-system]\n"
        'requires = ["setuptools>=61"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        "[project]\n"
        f'name = "{name}"\n'
        'version = "0.1"  # bumped by hand\n'
        'description = "static"\n',
    )
    write(root / "src" / name / "__init__.py", "VALUE = 1\n")
    return root


def make_legacy(root: Path) -> Path:
    """setup.py only, version='0.3'."""
    write(
        root / "setup.py",
        "from setuptools import setup\n"
        "setup(name='Demo.Legacy', version='0.3', packages=['demo_legacy'])\n",
    )
    write(root / "demo_legacy" / "__init__.py", "LEGACY = True\n")
    return root


def make_git_package(root: Path) -> Path:
    """A git repository with the package in a subdirectory; *.log and local.cfg ignored."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    write(root / ".gitignore", "*.log\nlocal.cfg\n")
    package = make_static(root / "pkg", name="demo_git")
    subprocess.run([*git, "init", "-q", str(root)], check=True)
    subprocess.run([*git, "-C", str(root), "add", "-A"], check=True)
    subprocess.run(
        [*git, "-c", "commit.gpgsign=false", "-C", str(root), "commit", "-qm", "initial"],
        check=True,
    )
    return package


def tree_digest(root: Path) -> str:
    """Everything below root: every entry, its mode, mtime and contents."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest.update(f"{path.relative_to(root)}|{info.st_mode}|{info.st_mtime_ns}|".encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def sdist_files(sdist: Path) -> dict[str, bytes]:
    """Member paths (without the top directory) -> contents, for regular files."""
    found: dict[str, bytes] = {}
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            fh = tar.extractfile(member) if member.isfile() else None
            if fh is not None:
                found[member.name.split("/", 1)[1]] = fh.read()
    return found


# -- content_hash -------------------------------------------------------------------------


def test_hash_is_short_hex_and_independent_of_location_and_mtimes(tmp_path):
    a = make_static(tmp_path / "a")
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b)
    for path in b.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    assert re.fullmatch(r"[0-9a-f]{10}", content_hash(a))
    assert content_hash(a) == content_hash(b)


def test_content_change_rename_and_exec_bit_change_the_hash(tmp_path):
    src = make_static(tmp_path / "p")
    module = src / "src" / "demo_static" / "__init__.py"
    seen = {content_hash(src)}
    module.write_text("VALUE = 2\n")
    seen.add(content_hash(src))
    module.rename(module.with_name("other.py"))
    seen.add(content_hash(src))
    (src / "src" / "demo_static" / "other.py").chmod(0o755)
    seen.add(content_hash(src))
    assert len(seen) == 4


def test_build_artefacts_do_not_change_the_hash(tmp_path):
    src = make_static(tmp_path / "p")
    before = content_hash(src)
    for junk in (
        "build/lib/demo_static/__init__.py",
        "dist/demo_static-0.1.tar.gz",
        "src/demo_static.egg-info/PKG-INFO",
        "src/demo_static/__pycache__/__init__.cpython-311.pyc",
        "src/demo_static/stray.pyc",
        ".tox/py311/x",
        ".venv/bin/python",
        ".pytest_cache/v",
        ".mypy_cache/x",
        ".ruff_cache/x",
        ".nox/x",
        ".hg/store",
    ):
        write(src / junk, "junk\n")
    assert content_hash(src) == before
    # ... but only top-level build/ is an artefact: a subpackage called build is code
    write(src / "src" / "demo_static" / "build" / "__init__.py", "")
    assert content_hash(src) != before


def test_what_buildout_writes_in_a_develop_dot_package_does_not_change_the_hash(tmp_path):
    """``develop = .``: the package is the buildout directory (Zope's own buildout), with no
    git to say what is ignored; bin/, parts/, eggs/, var/ ... are buildout's, not its."""
    src = make_static(tmp_path / "p")
    facts = BuildoutFacts.of_directory(src)
    before = content_hash(src, facts.outputs())
    for junk in ("bin/buildout", "parts/hostout/logs/x.log", "eggs/v5/a.egg/EGG-INFO/PKG-INFO",
                 "develop-eggs/demo-static.egg-link", "var/Data.fs", ".installed.cfg",
                 "hostoutversions.cfg"):
        write(src / junk, "written by a build\n")
    assert content_hash(src, facts.outputs()) == before
    assert content_hash(src) != before  # without them it would change on every build
    write(src / "src" / "demo_static" / "var.py", "")  # ... and code still counts
    assert content_hash(src, facts.outputs()) != before


@needs_git
def test_git_ignored_files_do_not_change_the_hash(tmp_path):
    package = make_git_package(tmp_path / "repo")
    before = content_hash(package)
    write(package / "debug.log", "noise\n")
    write(package / "local.cfg", "[secret]\n")
    assert content_hash(package) == before
    # the same files outside git hash the same
    plain = tmp_path / "plain"
    shutil.copytree(package, plain, ignore=shutil.ignore_patterns("*.log", "local.cfg"))
    assert content_hash(plain) == before
    # untracked but not ignored is part of the package
    write(package / "src" / "demo_git" / "new.py", "")
    assert content_hash(package) != before


# -- versions -----------------------------------------------------------------------------


def test_tagged_versions():
    assert tagged_version("0.1", "ab12cd34ef") == "0.1.dev0+ab12cd34ef"
    assert tagged_version("1.0.dev3", "ab12cd34ef") == "1.0.dev3+ab12cd34ef"
    assert tagged_version("2.0rc1", "ab12cd34ef") == "2.0rc1.dev0+ab12cd34ef"
    # PEP 440 normalises an all-digit local label as a number
    assert local_label("0012345678") == "12345678"
    with pytest.raises(ReleaseError, match="local label"):
        tagged_version("1.0+ubuntu1", "ab12cd34ef")
    with pytest.raises(ReleaseError, match="not a PEP 440 version"):
        tagged_version("latest", "ab12cd34ef")


# -- release ------------------------------------------------------------------------------


def test_static_release_is_cached_and_rebuilt_on_change(tmp_path):
    src = make_static(tmp_path / "static")
    dist = tmp_path / "dist"
    before = tree_digest(src)

    first = release(src, dist)
    assert tree_digest(src) == before
    assert first.rebuilt and first.name == "demo-static"
    assert first.hash == content_hash(src)
    assert first.version == f"0.1.dev0+{first.hash}"
    assert first.sdist.parent == dist.resolve() and first.source == src.resolve()
    files = sdist_files(first.sdist)
    assert files["src/demo_static/__init__.py"] == b"VALUE = 1\n"
    assert f'version = "{first.version}"  # bumped by hand' in files["pyproject.toml"].decode()
    assert sorted(p.name for p in dist.iterdir()) == sorted([CACHE_NAME, first.sdist.name])

    mtime = first.sdist.stat().st_mtime_ns
    second = release(src, dist)
    assert second == dataclasses.replace(first, rebuilt=False)
    assert first.sdist.stat().st_mtime_ns == mtime

    write(src / "src" / "demo_static" / "__init__.py", "VALUE = 2\n")
    third = release(src, dist)
    assert third.rebuilt and third.hash != first.hash
    assert third.version == f"0.1.dev0+{third.hash}" and third.sdist != first.sdist
    assert sdist_files(third.sdist)["src/demo_static/__init__.py"] == b"VALUE = 2\n"
    cache = json.loads((dist / CACHE_NAME).read_text())
    assert cache["releases"][str(src.resolve())]["version"] == third.version
    assert not first.sdist.exists()  # replaced: one sdist per package is kept here

    (dist / CACHE_NAME).write_text("{not json")  # a broken cache only costs a rebuild
    assert release(src, dist) == third


def test_legacy_setup_py_release_installs_with_its_version(tmp_path):
    src = make_legacy(tmp_path / "legacy")
    # an old-style dev tag in setup.cfg is replaced in the copy, the rest kept
    cfg = "# keep\n[metadata]\nlong_description = Hi\n[egg_info]\ntag_build = .dev\ntag_date = 1\n"
    write(src / "setup.cfg", cfg)
    before = tree_digest(src)
    made = release(src, tmp_path / "dist")
    assert tree_digest(src) == before
    assert made.name == "demo-legacy"
    assert made.version == f"0.3.dev0+{made.hash}"  # not 0.3.dev0 from the user's tag
    files = sdist_files(made.sdist)
    assert files["demo_legacy/__init__.py"] == b"LEGACY = True\n"
    # setuptools rewrites the sdist's setup.cfg with configparser: the comment goes
    assert "long_description = Hi" in files["setup.cfg"].decode()
    assert f"tag_build = .dev0+{made.hash}" in files["setup.cfg"].decode()

    target = tmp_path / "target"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "--target", str(target), str(made.sdist)],
        check=True,
    )
    (dist_info,) = target.glob("*.dist-info")
    assert made.version in dist_info.name
    (installed,) = importlib.metadata.distributions(path=[str(target)])
    assert installed.version == made.version
    assert (target / "demo_legacy" / "__init__.py").read_text() == "LEGACY = True\n"


def test_dynamic_setuptools_version_with_dev_part(tmp_path):
    src = tmp_path / "dyn"
    write(
        src / "pyproject.toml",
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "demo-dyn"\ndynamic = ["version"]\n'
        '[tool.setuptools.dynamic]\nversion = {attr = "demo_dyn.__version__"}\n',
    )
    write(src / "demo_dyn" / "__init__.py", '__version__ = "1.0.dev3"\n')
    made = release(src, tmp_path / "dist")
    assert made.version == f"1.0.dev3+{made.hash}"
    assert not (src / "setup.cfg").exists()


@needs_git
def test_git_package_release_leaves_ignored_files_out(tmp_path):
    package = make_git_package(tmp_path / "repo")
    write(package / "local.cfg", "[secret]\n")
    before = tree_digest(tmp_path / "repo")
    made = release(package, tmp_path / "dist")
    assert tree_digest(tmp_path / "repo") == before
    assert made.version == f"0.1.dev0+{content_hash(package)}"
    files = sdist_files(made.sdist)
    assert "src/demo_git/__init__.py" in files and "local.cfg" not in files


def test_release_all(tmp_path):
    sources = [make_static(tmp_path / "a", "demo_a"), make_static(tmp_path / "b", "demo_b")]
    made = release_all(sources, tmp_path / "dist")
    assert [r.name for r in made] == ["demo-a", "demo-b"]
    assert all(r.rebuilt for r in made)
    assert not any(r.rebuilt for r in release_all(sources, tmp_path / "dist"))


def test_broken_package_raises_one_line_release_error(tmp_path):
    src = tmp_path / "broken"
    write(
        src / "setup.py",
        "from setuptools import setup\nsetup(name='broken', version='0.1', packages=['nope'])\n",
    )
    dist = tmp_path / "dist"
    with pytest.raises(ReleaseError) as info:
        release(src, dist)
    message = str(info.value)
    assert isinstance(info.value, HostoutError) and info.value.cause is not None
    assert "\n" not in message
    assert str(src.resolve()) in message
    assert message.endswith("error: package directory 'nope' does not exist")
    assert list(dist.iterdir()) == []  # no half-built sdist, no temp dir, no cache entry


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"README": "nothing here\n"}, "neither pyproject.toml nor setup.py"),
        (
            {
                "pyproject.toml": '[build-system]\nrequires = ["hatchling"]\n'
                'build-backend = "hatchling.build"\n[project]\nname = "x"\n'
                'dynamic = ["version"]\n'
            },
            "version is dynamic and its build backend (hatchling.build) is not setuptools",
        ),
        ({"pyproject.toml": "[project\n"}, "cannot read pyproject.toml"),
    ],
)
def test_packages_that_cannot_be_released(tmp_path, files, expected):
    src = tmp_path / "pkg"
    for name, text in files.items():
        write(src / name, text)
    with pytest.raises(ReleaseError) as info:
        release(src, tmp_path / "dist")
    assert expected in str(info.value) and str(src.resolve()) in str(info.value)
