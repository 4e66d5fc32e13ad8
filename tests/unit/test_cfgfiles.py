"""Which local files uploadbuildout sends: the chosen cfg, its extends chain, includes."""

from pathlib import Path, PurePosixPath

import pytest

from collective.hostout.config import cfgfiles
from collective.hostout.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_chain_follows_nested_extends_once_and_leaves_urls(tmp_path: Path):
    write(tmp_path / "prod.cfg", "[buildout]\nextends = base.cfg\n  conf/extra.cfg\n"
          "  https://dist.plone.org/release/6.0/versions.cfg\n[versions]\nA = 1\n")
    write(tmp_path / "base.cfg", "[buildout]\nextends = versions.cfg\nparts =\n")
    write(tmp_path / "versions.cfg", "[versions]\nB = 2\n")
    write(tmp_path / "conf/extra.cfg", "[buildout]\nextends = ../versions.cfg\n"
          "[x]\nparts += y\n")
    chain = cfgfiles.parsed_chain(tmp_path / "prod.cfg")
    assert [p.relative_to(tmp_path).as_posix() for p in chain] == [
        "prod.cfg", "base.cfg", "versions.cfg", "conf/extra.cfg"]
    assert chain[(tmp_path / "prod.cfg").resolve()]["versions"]["A"] == "1"


def test_missing_extended_file_and_broken_cfg_are_config_errors(tmp_path: Path):
    write(tmp_path / "prod.cfg", "[buildout]\nextends = nope.cfg\n")
    with pytest.raises(ConfigError, match=r"nope.cfg does not exist \(extended by prod.cfg\)"):
        cfgfiles.config_chain(tmp_path / "prod.cfg")
    write(tmp_path / "broken.cfg", "[buildout\nparts = x\n")
    with pytest.raises(ConfigError, match=r"cannot parse broken\.cfg"):
        cfgfiles.config_chain(tmp_path / "broken.cfg")


def test_include_walks_directories_and_skips_caches(tmp_path: Path):
    write(tmp_path / "etc/nginx.conf", "x")
    write(tmp_path / "etc/sub/site.conf", "y")
    write(tmp_path / "etc/__pycache__/m.cpython-311.pyc", "z")
    write(tmp_path / "secrets.txt", "s")
    found = cfgfiles.include_files(["etc", "secrets.txt"], tmp_path)
    assert [cfgfiles.remote_name(p, tmp_path) for p in found] == [
        PurePosixPath("etc/nginx.conf"), PurePosixPath("etc/sub/site.conf"),
        PurePosixPath("secrets.txt")]
    with pytest.raises(ConfigError, match="include: missing does not exist"):
        cfgfiles.include_files(["missing"], tmp_path)


def test_files_outside_the_buildout_are_refused(tmp_path: Path):
    outside = write(tmp_path / "shared.cfg", "[buildout]\n")
    with pytest.raises(ConfigError, match="outside the buildout directory"):
        cfgfiles.remote_name(outside, tmp_path / "buildout")


def test_conditional_sections_are_evaluated_as_buildout_does(tmp_path: Path):
    # Zope's versions.cfg has [versions:python311]; the expression names come from buildout
    write(tmp_path / "versions.cfg", "[versions]\nA = 1\n[versions:python3]\nB = 2\n"
          "[versions:python2]\nC = 3\n")
    assert cfgfiles.chain_pins(tmp_path / "versions.cfg", "versions") == {"A": "1", "B": "2"}
