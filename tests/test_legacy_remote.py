"""Issue 12 against a real sshd host: a hostout 1 plugin, ported only by replacing ``fabric``
with ``collective.hostout`` on its import lines (tests/data/legacyplugin), run through
bin/hostout as a user runs it. One host for the module: each test leaves what it made in
places of its own."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import hosts
from buildouts import PLUGIN, buildout, hostout, write
from hosts import TestHost

pytestmark = pytest.mark.integration

LEGACY = PLUGIN.parent / "legacyplugin"


@pytest.fixture(scope="module")
def server(host_image: str) -> Iterator[TestHost]:
    host = hosts.start_host()
    host.exec("useradd -m -s /bin/bash other && echo other:otherpw | chpasswd")
    yield host
    host.remove()


def part(name: str, server: TestHost, tmp: Path, **extra: str) -> str:
    options = {
        "recipe": "collective.hostout",
        "host": server.hoststring,
        "user": server.user,
        "password": server.password,
        "known-hosts": str(tmp / "known_hosts"),
        "ssh-config": str(tmp / "ssh_config"),
        "path": f"/var/{name}",
        "buildout-user": "legacybo",
        "buildout-group": "legacygrp",
        "extends": "hostout.legacyplugin",
        **extra,
    }
    return f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in options.items())


@pytest.fixture(scope="module")
def built(server: TestHost, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("legacy")
    (d / "ssh_config").touch()
    write(d, "buildout.cfg", f"[buildout]\ndevelop = {LEGACY}\nparts = host1 host2\n\n"
          + part("host1", server, d, **{"python-version": "3.11.7",
                                         "other-password": "otherpw"})
          + part("host2", server, d, **{"buildout-user": "legacybo2"}))
    buildout(d)
    proc = hostout(d, "host1", "bootstrap_users")  # the buildout user and its key
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return d


def outs(proc: subprocess.CompletedProcess[str], host: str = "host1") -> list[str]:
    return [ln.removeprefix(f"[{host}] out: ") for ln in proc.stdout.splitlines()
            if ln.startswith(f"[{host}] out: ")]


def said(proc: subprocess.CompletedProcess[str], host: str = "host1") -> list[str]:
    prefix = f"[{host}] "
    return [ln.removeprefix(prefix) for ln in proc.stdout.splitlines()
            if ln.startswith(prefix) and not ln.startswith(f"{prefix}out: ")
            and not ln.startswith(f"{prefix}run: ") and not ln.startswith(f"{prefix}sudo: ")]


def test_options_read_with_defaults_and_plugin_writes_seen_later(built: Path):
    proc = hostout(built, "host1", "showoptions", "setgreeting", "showoptions")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = said(proc)
    assert "option buildout-user=legacybo" in lines
    assert "option effective-user=legacybo" in lines  # hostout's default, as hostout 1's
    assert "option python-version=3.11.7" in lines  # accepted; hostout uses 3.11
    assert "option buildout-cache=/var/host1.hostout/buildout-cache" in lines
    assert f"option identity-file={built / 'host1_key'}" in lines
    assert f"option versionsfile={built / 'hostoutversions.cfg'}" in lines
    assert "env legacybo hello from hostout 1" in lines
    assert ("paths /var/host1 /var/host1.hostout/buildout-cache/downloads "
            "/var/host1.hostout/buildout-cache/eggs") in lines
    # the plugin recipe's default, then what a command set, seen by the next command
    greetings = [ln for ln in lines if ln.startswith("option legacy-greeting=")]
    assert greetings == ["option legacy-greeting=hello from hostout 1",
                         "option legacy-greeting=set by a command"]


def test_writing_hostouts_own_option_is_one_line(built: Path):
    proc = hostout(built, "host1", "setpath")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "Error: host1: option path is hostout's own and cannot change while a command runs; "
        "set it in the part [host1] of the buildout (or in a plugin recipe's "
        "options.setdefault) and run bin/buildout")


def test_initcommand_sees_every_command(built: Path):
    proc = hostout(built, "host1", "whoami_bo", "showseen")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "seen whoami_bo showseen" in said(proc)


def test_buildout_user_decorator_context_manager_and_env_user(built: Path,
                                                              server: TestHost):
    listing = hostout(built, "host1").stdout
    assert any(ln.split(":")[0].strip() == "whoami_bo" and "as the buildout user" in ln
               for ln in listing.splitlines())  # a decorated command is still a command
    proc = hostout(built, "host1", "whoami_bo", "users")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert outs(proc) == ["legacybo", "as-bo legacybo", "as-root root",
                          f"as-login {server.user}", "env-user legacybo",
                          f"env-user-back {server.user}"]


def test_env_hosts_and_user_log_in_elsewhere(built: Path, server: TestHost):
    proc = hostout(built, "host1", "asother")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert outs(proc) == ["other other"]
    known = (built / "known_hosts").read_text()
    assert f"[localhost]:{server.port} " in known  # a new name: its key recorded, checked
    assert "otherpw" not in proc.stdout + proc.stderr


def test_fabric_1_habits(built: Path, server: TestHost):
    proc = hostout(built, "host1", "fabric1")
    assert outs(proc) == ["cwd /tmp", "failed True 1", "quiet True", "caught"]
    hostname = server.exec("cat /etc/hostname").stdout
    assert (built / "fetched" / "hostname").read_text() == hostname  # relative inside cd
    assert server.exec("cat /tmp/hostname-copy").stdout == hostname
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "Error: host1: this command needs option hosttype (used for choosing a cloud): set "
        "it in the part [host1] of the buildout")


def test_contrib_files(built: Path):
    proc = hostout(built, "host1", "files")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert outs(proc) == ["exists True False", "port=8080", "#debug=on"]


def test_hostouts_runs_another_hosts_command(built: Path):
    proc = hostout(built, "host1", "peer", "host2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "peer /var/host2 legacybo2" in said(proc)
    assert outs(proc, "host2") == ["from-peer host2"]


def test_detecthostos_runescalatable_and_require_ownership(built: Path, server: TestHost):
    proc = hostout(built, "host1", "detecthostos")
    assert "Detected hostos = debian" in said(proc)
    proc = hostout(built, "host1", "runescalatable", "mkdir", "-p", "/opt/legacy-test")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert server.exec("stat -c %U /opt/legacy-test").stdout.strip() == "root"  # escalated
    proc = hostout(built, "host1", "requireOwnership", "/opt/legacy-test", "legacybo")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert server.exec("stat -c %U /opt/legacy-test").stdout.strip() == "legacybo"


def test_per_os_bootstrap_python_runs_and_must_leave_python(built: Path, server: TestHost):
    proc = hostout(built, "host1", "bootstrap_python")
    assert server.exec("test -e /tmp/bootstrap_python_debian-ran").returncode == 0
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "Error: host1: bootstrap_python_debian ran, but python3.11 with venv support is "
        "still missing; make it install python3.11 (and its venv module), or let it call "
        "api.env.hostout.bootstrap_python() for hostout's own install")
    assert server.exec("command -v apt-get >/dev/null && ls /usr/bin/python3.11"
                       ).returncode != 0  # hostout did not install it behind the plugin


def test_put_and_get_commands_in_the_remote_buildout(built: Path, server: TestHost):
    server.exec("install -d -o legacybo -g legacygrp -m 2750 /var/host1")
    write(built, "etc/app.cfg", "[app]\nport = 8080\n")
    proc = hostout(built, "host1", "put", "etc/app.cfg")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert server.exec("stat -c %U /var/host1/etc/app.cfg").stdout.strip() == "legacybo"
    proc = hostout(built, "host1", "get", "etc/app.cfg", "copy/app.cfg")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (built / "copy" / "app.cfg").read_text() == "[app]\nport = 8080\n"


def test_bootscripts_by_cron(built: Path, server: TestHost):
    proc = hostout(built, "host1", "install_bootscript", "touch var/started", "rm var/started",
                   "legacyapp")
    assert proc.returncode == 1  # no systemd, no cron in the bare image
    assert "neither systemd nor cron to start things on boot; install cron" in proc.stderr
    setup = server.exec("apt-get update -q -o Acquire::Retries=0 >/dev/null && "
                        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                        "--no-install-recommends cron >/dev/null && mkdir -p /var/host1/var")
    if setup.returncode:
        pytest.skip(f"cannot install cron in the test host: {setup.stderr.strip()[-200:]}")
    proc = hostout(built, "host1", "install_bootscript", "touch var/started", "rm var/started",
                   "legacyapp")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "install_bootscript: buildout-legacyapp starts on boot (root's crontab, @reboot)" \
        in said(proc)
    crontab = server.exec("crontab -l").stdout
    assert ("@reboot /etc/hostout/bootscripts/buildout-legacyapp start "
            "# hostout:buildout-legacyapp") in crontab.splitlines()
    # what cron runs on boot: the commands, as root, in path
    assert server.exec("/etc/hostout/bootscripts/buildout-legacyapp start").returncode == 0
    assert server.exec("test -f /var/host1/var/started").returncode == 0
    proc = hostout(built, "host1", "bootscript_list")
    assert "buildout-legacyapp (cron)" in said(proc)
    proc = hostout(built, "host1", "uninstall_bootscript", "legacyapp")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "hostout:buildout-legacyapp" not in server.exec("crontab -l").stdout
    assert server.exec("test -e /etc/hostout/bootscripts/buildout-legacyapp").returncode != 0
    assert "no boot scripts" in said(hostout(built, "host1", "bootscript_list"))
