"""hostout-testhost as a user runs it: a real podman host, a real buildout, real SSH."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildouts import buildout, env, hostout, write
from hosts import TestHost, podman

pytestmark = pytest.mark.integration

TESTHOST = Path(sys.executable).parent / "hostout-testhost"

BUILDOUT = """
[buildout]
parts = host1

[host1]
recipe = collective.hostout
host = app.example.invalid
path = /srv/shop
buildout-group = shop
fabfiles = fabfile.py
"""

FABFILE = """
from collective.hostout.commands.registry import command


@command
def where(c):
    '''say which path and login this host part has'''
    c.run(f"echo where {c.quote(str(c.path))} $(id -un)")
"""


def run_testhost(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """As a user runs it: with no CONTAINERS_CONF, which it works out for itself."""
    user_env = {k: v for k, v in env().items() if k != "CONTAINERS_CONF"}
    return subprocess.run([str(TESTHOST), *args], cwd=directory, env=user_env, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=300)


def listed() -> list[dict[str, object]]:
    proc = subprocess.run([str(TESTHOST), "list", "--json"], text=True, capture_output=True,
                          check=True, stdin=subprocess.DEVNULL)
    return json.loads(proc.stdout)


def container_exists(name: str) -> bool:
    return podman("container", "exists", name, check=False).returncode == 0


def user_buildout(directory: Path) -> Iterator[Path]:
    """A user's buildout with one host part, built; its test hosts removed afterwards."""
    write(directory, "buildout.cfg", BUILDOUT)
    write(directory, "fabfile.py", FABFILE)
    buildout(directory)
    yield directory
    for host in listed_in(directory):
        podman("rm", "--force", "--time", "0", str(host["container"]), check=False)


@pytest.fixture
def project(tmp_path: Path, host_image: str) -> Iterator[Path]:
    yield from user_buildout(tmp_path)


@pytest.fixture(scope="module")
def untouched(tmp_path_factory: pytest.TempPathFactory, host_image: str) -> Iterator[Path]:
    """One for the tests that must change nothing."""
    yield from user_buildout(tmp_path_factory.mktemp("untouched"))


def test_start_buildout_run_remove(project: Path):
    proc = run_testhost(project, "start", "--like", "host1", "--publish", "8080")
    assert proc.returncode == 0, proc.stderr
    (host,) = listed_in(project)
    assert (host["name"], host["status"], host["user"], host["like"]) == (
        "testhost", "running", "deploy", "host1")
    address, port = str(host["ssh"]).rsplit(":", 1)
    with socket.create_connection((address, int(port)), timeout=5) as sock:
        assert sock.recv(256).startswith(b"SSH-2.0-OpenSSH")
    assert f"ssh {host['ssh']}" in proc.stdout
    assert "\n    buildout -c testhost.cfg\n    bin/hostout testhost deploy\n" in proc.stdout

    cfg = project / "testhost.cfg"
    assert cfg.stat().st_mode & 0o777 == 0o600
    options = dict(line.split(" = ", 1) for line in cfg.read_text().splitlines()
                   if " = " in line)
    password = options["password"]
    assert len(password) >= 16 and password not in proc.stdout + proc.stderr
    assert options["host"] == host["ssh"] and options["extends"] == "host1"
    assert options["host-key-checking"] == "yes"
    # the known_hosts file holds exactly the container's own keys
    server = TestHost(str(host["container"]), str(host["container"]), int(port))
    known = (project / ".hostout-testhost/testhost/known_hosts").read_text().splitlines()
    assert sorted(known) == sorted(server.host_keys())
    assert any(" ssh-ed25519 " in line for line in known)

    buildout(project, "-c", "testhost.cfg")
    # like host1: its path and its fabfile; the container's login, with its password
    where = hostout(project, "testhost", "where")
    assert where.returncode == 0, where.stderr
    assert "[testhost] out: where /srv/shop deploy" in where.stdout
    made = hostout(project, "testhost", "sudo", "mkdir -p /srv/shop && chown deploy /srv/shop")
    assert made.returncode == 0, made.stderr
    uname = hostout(project, "testhost", "run", "uname", "-a")
    assert uname.returncode == 0, uname.stderr
    assert "[testhost] out: Linux " in uname.stdout
    assert password not in where.stdout + uname.stdout + uname.stderr + made.stdout

    gone = run_testhost(project, "remove")
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.splitlines() == [
        f"removed testhost ({host['container']}) and {cfg}",
        f"run buildout in {project.resolve()} to take what you removed out of bin/hostout"]
    assert not container_exists(str(host["container"]))
    assert not cfg.exists()
    assert not (project / ".hostout-testhost").exists()
    assert listed_in(project) == []
    # bin/hostout was built from testhost.cfg: it now asks for a fresh bin/buildout
    stale = hostout(project, "testhost", "run", "true")
    assert stale.returncode == 1 and "run bin/buildout" in stale.stderr


def listed_in(directory: Path) -> list[dict[str, object]]:
    return [h for h in listed() if h["directory"] == str(directory.resolve())]


def test_named_host_with_its_own_user_and_port(project: Path):
    local = str(_free_port())
    proc = run_testhost(project, "start", "web", "--user", "shop", "--publish", f"{local}:8080",
                    "--json")
    assert proc.returncode == 0, proc.stderr
    host = json.loads(proc.stdout)
    assert (host["name"], host["user"], host["ports"]) == (
        "web", "shop", {"8080": f"127.0.0.1:{local}"})
    assert (project / "web.cfg").is_file()
    server = TestHost(host["container"], host["container"], 22)
    assert server.exec("id -nG shop").stdout.split() == ["shop", "sudo"]
    assert server.exec("id deploy").returncode != 0  # the image's own login is gone

    again = run_testhost(project, "start", "web")
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.strip().splitlines() == [
        f"Error: test host web exists ({host['ssh']}); `hostout-testhost remove web` first, "
        "or start --replace"]
    replaced = run_testhost(project, "start", "web", "--replace", "--json")
    assert replaced.returncode == 0, replaced.stderr
    assert [h["name"] for h in listed_in(project)] == ["web"]
    assert json.loads(replaced.stdout)["user"] == "deploy"
    # removed behind its back: `remove` still takes away what start wrote
    podman("rm", "--force", "--time", "0", host["container"])
    removed = run_testhost(project, "remove", "web")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == "removed what web left: its container was gone already\n"
    assert not (project / "web.cfg").exists()
    assert not (project / ".hostout-testhost").exists()
    assert listed_in(project) == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("args", "message"), [
    (["start", "--like", "nosuch"],
     "Error: --like nosuch: no such host part in this buildout (its host parts: host1)"),
    (["start", "--like", "testhost"],
     "Error: --like testhost: the test host needs a name of its own"),
    (["start", "buildout"], "is not a test host's; choose another NAME"),
    (["start", "--image", "localhost/hostout-nosuch:1"],
     "Error: no image localhost/hostout-nosuch:1 here (podman images lists them)"),
    (["remove", "nosuch"], "Error: no test host nosuch for "),
    (["remove", "web", "--all"], "Error: remove: NAMEs or --all, not both"),
])
def test_bad_input_is_one_line_and_starts_nothing(untouched: Path, args: list[str],
                                                   message: str):
    project = untouched
    proc = run_testhost(project, *args)
    assert proc.returncode == (1 if "image" in message else 2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert listed_in(project) == []
    assert not (project / "testhost.cfg").exists()
    assert not (project / ".hostout-testhost").exists()
