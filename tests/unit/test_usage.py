"""The versions file records every distribution a real local build used (issue 8, item 2):
eggs buildout took from its own environment (zc.recipe.egg, rich, pygments), eggs another
distribution's metadata pins (httpx -> httpcore==1.*), recipes; not hostout's own eggs, not
develop packages; and a failed build leaves the file alone."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from buildouts import buildout, write
from collective.hostout.packaging import versions


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("usage")
    write(d, "src/mydev/setup.py", """
        from setuptools import setup
        setup(name="mydev", version="0.1", py_modules=["mydev"], install_requires=["idna"])
    """)
    write(d, "src/mydev/mydev.py", "def main():\n    print('mydev')\n")
    # no [versions] at all: everything is picked, or found beside zc.buildout
    write(d, "buildout.cfg", """
        [buildout]
        develop = src/mydev
        parts = app h
        [app]
        recipe = zc.recipe.egg
        eggs =
            mydev
            rich
            httpx
        interpreter = py
        [h]
        recipe = collective.hostout
        host = example.invalid
    """)
    buildout(d)
    return d


def test_environment_and_metadata_pinned_eggs_are_recorded(built: Path):
    used = versions.read(built / "hostoutversions.cfg")
    # from the venv beside zc.buildout, at the versions installed there
    for name in ("rich", "Pygments", "zc.buildout", "setuptools"):
        assert used[name] == importlib.metadata.version(name), name
    assert "zc.recipe.egg" in used  # the recipe, wherever buildout found it
    # httpx requires httpcore==1.*: installed, never "picked"
    assert used["httpcore"].startswith("1.")
    assert {"httpx", "h11", "anyio", "idna"} <= set(used)


def test_hostout_and_develop_packages_are_not_recorded(built: Path):
    used = versions.read(built / "hostoutversions.cfg")
    for name in ("collective.hostout", "fabric", "paramiko", "invoke", "mydev", "pytest"):
        assert name not in used, name


def test_recorded_versions_are_what_bin_py_imports(built: Path):
    used = versions.read(built / "hostoutversions.cfg")
    import subprocess

    out = subprocess.run(
        [str(built / "bin" / "py"), "-c",
         "import importlib.metadata as m; print(m.version('httpcore'), m.version('rich'))"],
        capture_output=True, text=True, check=True).stdout.split()
    assert out == [used["httpcore"], used["rich"]]


def test_failed_build_does_not_rewrite_the_versions_file(built: Path):
    before = (built / "hostoutversions.cfg").read_text()
    cfg = built / "broken.cfg"
    write(built, "broken.cfg", """
        [buildout]
        extends = buildout.cfg
        parts += broken
        [broken]
        recipe = zc.recipe.egg
        eggs = no-such-distribution-hostout-test
    """)
    proc = buildout(built, "-c", str(cfg), "buildout:index=file:///nonexistent", check=False)
    assert proc.returncode != 0
    assert (built / "hostoutversions.cfg").read_text() == before


def test_develop_dot_leaves_the_eggs_under_it_recorded(tmp_path: Path):
    """``develop = .`` (the project's setup.py beside buildout.cfg, as in Zope's own
    buildout): the eggs directory and the venv lie inside the develop directory, yet what
    they hold is no develop package."""
    write(tmp_path, "setup.py", """
        from setuptools import setup
        setup(name="rootdev", version="0.1", py_modules=["rootdev"], install_requires=["idna"])
    """)
    write(tmp_path, "rootdev.py", "")
    write(tmp_path, "buildout.cfg", """
        [buildout]
        develop = .
        parts = app h
        [app]
        recipe = zc.recipe.egg
        eggs =
            rootdev
            httpx
        [h]
        recipe = collective.hostout
        host = example.invalid
    """)
    buildout(tmp_path)
    used = versions.read(tmp_path / "hostoutversions.cfg")
    assert "rootdev" not in used
    assert {"httpx", "httpcore", "h11", "idna", "zc.recipe.egg", "zc.buildout"} <= set(used)
