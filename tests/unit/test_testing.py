"""collective.hostout.testing without podman: apt sources, the image's mirrors, and what the
package imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from collective.hostout.testing import image
from collective.hostout.testing.image import AptSource, Mirrors, apt_sources, debian_mirrors
from collective.hostout.testing.podman import TestHostError

DEB822 = """\
Types: deb
# a comment inside the stanza
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no

Types: deb
URIs: http://security.example/debian-security
 http://security2.example/debian-security
Suites: bookworm-security
Components: main
"""

ONE_LINE = """\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian trixie main contrib # note
deb-src http://one.example/debian trixie main
"""


def apt_root(tmp_path: Path, *, deb822: str = "", one_line: str = "") -> Path:
    (tmp_path / "sources.list.d").mkdir()
    if deb822:
        (tmp_path / "sources.list.d" / "debian.sources").write_text(deb822)
    if one_line:
        (tmp_path / "sources.list").write_text(one_line)
    return tmp_path


def test_apt_sources_reads_both_formats(tmp_path: Path):
    sources = apt_sources(apt_root(tmp_path, deb822=DEB822, one_line=ONE_LINE))
    assert sources == [
        AptSource("http://one.example/debian", ("trixie",), ("main", "contrib")),
        AptSource("http://mirror.example/debian", ("bookworm", "bookworm-updates"), ("main",)),
        AptSource("http://security.example/debian-security", ("bookworm-security",), ("main",)),
        AptSource("http://security2.example/debian-security", ("bookworm-security",),
                  ("main",)),
    ]


def test_debian_mirrors_for_a_suite(tmp_path: Path):
    sources = apt_sources(apt_root(tmp_path, deb822=DEB822, one_line=ONE_LINE))
    mirrors = debian_mirrors("bookworm", sources)
    assert mirrors == Mirrors("http://mirror.example/debian",
                              "http://security.example/debian-security")
    assert mirrors.sources_list("bookworm").splitlines() == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://security.example/debian-security bookworm-security main",
    ]
    assert debian_mirrors("trixie", sources) == Mirrors("http://one.example/debian", None)
    with pytest.raises(TestHostError, match="no Debian mirror for bullseye in this machine's"):
        debian_mirrors("bullseye", sources)


def test_this_machines_mirror_is_read_not_written_down():
    if not apt_sources():
        pytest.skip("this machine has no apt sources")
    mirror = debian_mirrors(image.SUITE)
    assert mirror.main.startswith(("http://", "https://"))
    assert image.mirror_host() in mirror.main


def test_building_needs_root(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert image.build_problem() == (
        "building it needs root (debootstrap, chroot): run `hostout-testhost image` as root")
    with pytest.raises(TestHostError, match=r"^cannot build image x: building it needs root"):
        image.build_image("x", mirrors=Mirrors("http://m.example/debian", None))


def test_importing_it_imports_neither_fabric_nor_paramiko():
    code = ("import sys, collective.hostout.testing, collective.hostout.testing.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fabric', 'paramiko',"
            " 'invoke')))")
    out = subprocess.run([sys.executable, "-c", code], text=True, capture_output=True,
                         check=True).stdout
    assert out == "[]\n"
