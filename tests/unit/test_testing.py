"""collective.hostout.testing without podman: apt sources, the image's mirrors, the command
line's checks of its input, and what the package imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from collective.hostout.testing import image
from collective.hostout.testing.image import AptSource, Mirrors, apt_sources, debian_mirrors
from collective.hostout.testing.podman import TestHostError

TESTHOST = Path(sys.executable).parent / "hostout-testhost"

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


def run_testhost(cwd: Path, *args: str,
                 path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run([str(TESTHOST), *args], cwd=cwd, env=env, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("args", "message"), [
    (["start", "a/b"], "Error: test host name 'a/b': use letters, digits"),
    (["start", "--publish", "http"], "Error: argument --publish/-p: 'http' is not PORT or "
     "LOCAL:PORT (see hostout-testhost start --help)"),
    (["start", "--publish", "70000"], "Error: argument --publish/-p: '70000': ports are 1-65535"),
    (["start", "--publish", "22"], "Error: --publish 22: sshd is published already"),
    (["start", "--user", "root"], "Error: --user 'root': a lower-case login name other than"),
    (["start", "--user", "Bob"], "Error: --user 'Bob': a lower-case login name other than"),
    (["start", "-c", "nosuch.cfg"], "Error: no buildout file "),
    (["start", "buildout"], "buildout.cfg exists and is not a test host's; choose another"),
    (["frob"], "Error: argument {start,list,remove,image}: invalid choice: 'frob'"),
])
def test_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], message: str):
    (tmp_path / "buildout.cfg").write_text("[buildout]\nparts =\n")
    proc = run_testhost(tmp_path, *args, path="/nonexistent")  # and podman is never needed
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["buildout.cfg"]


@pytest.mark.parametrize("args", [["start"], ["list"], ["remove"], ["image"]])
def test_no_podman_is_one_line_exit_1(tmp_path: Path, args: list[str]):
    (tmp_path / "buildout.cfg").write_text("[buildout]\nparts =\n")
    proc = run_testhost(tmp_path, *args, path="/nonexistent")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == ("Error: podman is not installed (on Debian/Ubuntu, as root: "
                           "apt-get install podman runc debootstrap)\n")
