"""Issue 3 end to end: the seed's example deployed to fresh bare hosts (no python, a login
user whose sudo asks for a password), as a user runs bin/hostout."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildouts import buildout, example_for, fetch, hostout
from hosts import TestHost, start_host
from registries import index_hosts, reach_mirror_probe

pytestmark = pytest.mark.integration

ANSWER = "Powered by collective.hostout!"


def uploads(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return re.findall(r"^\[host1\] upload (\S+)$", proc.stdout, re.M)


class Deployed:
    def __init__(self, host: TestHost, directory: Path, first: subprocess.CompletedProcess[str]):
        self.host, self.directory, self.first = host, directory, first

    def deploy(self, *args: str) -> subprocess.CompletedProcess[str]:
        """bin/hostout [OPTIONS] host1 ARGS: leading dashed words are hostout's options."""
        options = [a for a in args[:1] if a.startswith("-")]
        return hostout(self.directory, *options, "host1", *args[len(options):])

    @property
    def url(self) -> str:
        return self.host.url(8080)


@pytest.fixture(scope="module")
def deployed(host_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    host = start_host(publish=(8080,))
    try:
        d = example_for(tmp_path_factory.mktemp("deploy"), host=host.hoststring,
                        password=host.password)
        first = hostout(d, "host1", "deploy")
        yield Deployed(host, d, first)
    finally:
        host.remove()


def test_first_deploy_bootstraps_and_serves(deployed: Deployed):
    proc = deployed.first
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    # one line per step saying what it did, nothing else (the rest is in the kept log)
    steps = [line.split(":")[0] for line in proc.stdout.splitlines()]
    assert steps == [f"[host1] {step}" for step in (
        "predeploy", "bootstrap_users", "bootstrap_python", "bootstrap_buildout",
        "uploadeggs", "uploadbuildout", "postswitch", "buildout")], proc.stdout
    said = proc.stdout
    assert "created group hostoutdemo, created user buildout, created user app" in said
    assert re.search(r"bootstrap_python: installed Python 3\.\d+ on Debian", said)
    assert re.search(r"uploadeggs: \d+ of \d+ distributions uploaded, \d+ KB "
                     r"\(new: hellowsgi-0\.1\.dev0\+[0-9a-f]+\.tar\.gz\)", said)
    assert re.search(r"buildout: release \d{8}-\d{6}: installed demo, pasterini, supervisor "
                     r"\(\d+\.\d s\); now current; healthy: HTTP 200 OK after \d+\.\d s$",
                     said, re.M)
    assert proc.stderr == ""
    assert fetch(deployed.url) == ANSWER
    assert deployed.host.password not in proc.stdout + proc.stderr
    (log,) = (deployed.directory / "parts" / "hostout" / "logs").glob("*-host1-deploy.log")
    kept = log.read_text()  # everything, both sides, with timestamps
    assert "[host1] out: Installing demo." in kept and "Generated script" in kept
    assert deployed.host.password not in kept


def test_key_was_made_and_normal_deploys_need_no_password(deployed: Deployed):
    key = deployed.directory / "host1_key"
    assert key.stat().st_mode & 0o777 == 0o600
    auth = deployed.host.exec("cat ~buildout/.ssh/authorized_keys").stdout
    assert (deployed.directory / "host1_key.pub").read_text().split()[1] in auth
    # the buildout user logs in with the key: `run` needs no password at all
    cfg = deployed.directory / "nopw.cfg"
    cfg.write_text("[buildout]\nextends = deploy.cfg\n[host1]\npassword =\n")
    buildout(deployed.directory, "-c", "nopw.cfg")
    try:
        proc = hostout(deployed.directory, "host1", "run", "id", "-un;", "pwd")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[-2:] == ["[host1] out: buildout",
                                                 "[host1] out: /var/buildout/demo"]
        proc = hostout(deployed.directory, "host1", "uploadeggs", "uploadbuildout")
        assert proc.returncode == 0, proc.stderr
        # supervisord starts as app, through sudo: without a password, one clear line
        # (before supervisord was stopped)
        proc = hostout(deployed.directory, "host1", "buildout")
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines()[-1].startswith(
            "Error: host1: no key or password to log in as deploy@")
    finally:
        buildout(deployed.directory, "-c", "deploy.cfg")


def test_ownership_code_buildout_user_var_effective_user(deployed: Deployed):
    # path is the current release (a symlink): stat what it leads to
    assert deployed.host.exec("readlink /var/buildout/demo").stdout == "demo.hostout/current\n"
    paths = ["/var/buildout/demo", "/var/buildout/demo/bin/paster",
             "/var/buildout/demo/parts/demo/paster.ini", "/var/buildout/demo/var"]
    stat = deployed.host.exec("stat -L -c '%n %U:%G %a' " + " ".join(paths)).stdout
    owner = {path: (who, mode) for path, who, mode in (ln.split() for ln in stat.splitlines())}
    assert owner["/var/buildout/demo"] == ("buildout:hostoutdemo", "2750")
    home = deployed.host.exec("stat -c '%U:%G %a' /var/buildout/demo.hostout").stdout.split()
    assert home == ["buildout:hostoutdemo", "2750"]
    for code in paths[1:3]:
        assert owner[code][0] == "buildout:hostoutdemo"
        assert owner[code][1][-1] == "0"  # others get nothing
    assert owner["/var/buildout/demo/var"][0] == "app:hostoutdemo"
    # the app's user cannot change the code, but can write var/
    assert deployed.host.exec("su -s /bin/sh app -c 'touch /var/buildout/demo/bin/x'"
                              ).returncode != 0
    assert deployed.host.exec("su -s /bin/sh app -c 'touch /var/buildout/demo/var/x'"
                              ).returncode == 0
    ps = deployed.host.exec("ps -o user= -C paster").stdout.split()
    assert ps == ["app"]  # the application runs as the effective user


def test_unchanged_redeploy_uploads_nothing(deployed: Deployed):
    proc = deployed.deploy("deploy")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert proc.stdout == ("[host1] deploy: nothing changed since the last successful build; "
                           "not rebuilding (bin/hostout host1 buildout forces it)\n")
    quiet = hostout(deployed.directory, "-q", "host1", "deploy")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    proc = deployed.deploy("-v", "deploy")  # everything: each remote command and its output
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert uploads(proc) == []
    assert "Develop egg hellowsgi unchanged" in proc.stdout
    assert "bootstrap" not in proc.stdout  # already bootstrapped
    assert "nothing changed since the last successful build; not rebuilding" in proc.stdout
    assert "Running command 'buildout'" not in proc.stdout  # nor restarted the app
    assert fetch(deployed.url) == ANSWER


def test_code_change_redeploys_only_that_package(deployed: Deployed):
    init = deployed.directory / "src/hellowsgi/src/hellowsgi/__init__.py"
    init.write_text(init.read_text().replace(ANSWER, ANSWER + " Again."))
    proc = deployed.deploy("-v", "deploy")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    sent = uploads(proc)
    assert len([s for s in sent if s.endswith(".tar.gz") or s.endswith(".whl")]) == 1
    assert sent[0].startswith("hellowsgi-0.1.dev0+")
    assert "pinned.cfg" in sent
    deadline = time.monotonic() + 30
    while fetch(deployed.url) != ANSWER + " Again." and time.monotonic() < deadline:
        time.sleep(0.5)
    assert fetch(deployed.url) == ANSWER + " Again."


def test_system_packages_added_later_are_installed_by_the_next_deploy(deployed: Deployed):
    d = deployed.directory
    cfg = d / "deploy.cfg"
    good = cfg.read_text()
    assert deployed.host.exec("dpkg -s tree").returncode != 0
    cfg.write_text(good + "system-packages = tree\n")
    try:
        buildout(d, "-c", "deploy.cfg")
        proc = deployed.deploy("deploy")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        assert re.search(r"^\[host1\] bootstrap_python: installed system packages tree "
                         r"\(\d+\.\d s\)$", proc.stdout, re.M), proc.stdout
        assert deployed.host.exec("dpkg -s tree").returncode == 0
        again = deployed.deploy("deploy")  # now in line with the options: nothing to do
        assert "bootstrap_python" not in again.stdout
    finally:
        cfg.write_text(good)
        buildout(d, "-c", "deploy.cfg")


def test_buildout_passes_extra_arguments(deployed: Deployed):
    proc = deployed.deploy("-v", "buildout", "-N", "annotate", "buildout")
    assert proc.returncode == 0, proc.stderr
    assert "-c hostout.cfg -N annotate buildout" in proc.stdout
    # the generated cfg makes the server build from shipped files only
    assert re.search(r"^\[host1\] out: install-from-cache= true$", proc.stdout, re.M)


def test_cfg_that_does_not_build_here_fails_before_anything_is_uploaded(deployed: Deployed):
    prod = deployed.directory / "prod.cfg"
    good = prod.read_text()
    prod.write_text(good.replace("parts += supervisor", "parts += supervisor broken")
                    + "\n[broken]\nrecipe = no.such.recipe.anywhere\n")
    try:
        proc = deployed.deploy("deploy")
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines()[-1].startswith(
            "Error: host1: prod.cfg does not build on this machine: Couldn't find a "
            "distribution for 'no.such.recipe.anywhere'.")
        assert "upload" not in proc.stdout
        remote = deployed.host.exec("cat /var/buildout/demo/prod.cfg").stdout
        assert "broken" not in remote  # nothing was uploaded
    finally:
        prod.write_text(good)
    assert fetch(deployed.url).startswith(ANSWER)


def test_failing_buildout_exits_nonzero_with_remote_error(deployed: Deployed):
    # builds here (the template's input is in this buildout), not on the server (the input
    # is not among the files hostout uploads): the remote build fails
    prod = deployed.directory / "prod.cfg"
    good = prod.read_text()
    (deployed.directory / "local-only.txt").write_text("only here\n")
    prod.write_text(good.replace("parts += supervisor", "parts += supervisor broken")
                    + "\n[broken]\nrecipe = collective.recipe.template\n"
                    "input = ${buildout:directory}/local-only.txt\n"
                    "output = ${buildout:directory}/var/broken.txt\n")
    try:
        proc = deployed.deploy("deploy")
        assert proc.returncode == 1
        err = proc.stderr.strip().splitlines()
        assert err[-1].startswith("Error: host1: ")
        assert "bin/buildout -c hostout.cfg" in err[-1]
        # the failed command's last lines come with the error, and where the rest is kept
        tail = [line for line in err if line.startswith("[host1] | ")]
        assert any("local-only.txt" in line for line in tail), err
        assert re.fullmatch(r"\[host1\] \| \(the full log: parts/hostout/logs/\S+-host1-"
                            r"deploy\.log\)", tail[-1])
        assert "supervisord" not in proc.stderr  # it was started again, and that worked
    finally:
        prod.write_text(good)
        (deployed.directory / "local-only.txt").unlink()
    assert fetch(deployed.url).startswith(ANSWER)  # hostout.supervisor brought it back


def test_bad_python_version_names_the_step_and_can_be_rerun(tmp_path: Path,
                                                              bare_host: TestHost):
    d = example_for(tmp_path, host=bare_host.hoststring, password=bare_host.password,
                    **{"python-version": "3.99"})
    proc = hostout(d, "host1", "bootstrap")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: host1: bootstrap_python: Debian GNU/Linux 12 (bookworm) "
                           "could not install Python 3.99")
    assert bare_host.exec("getent passwd buildout").returncode == 0  # users step done
    assert bare_host.exec("test -e /var/buildout/demo").returncode != 0  # nothing further


def test_deploy_to_a_server_with_no_way_out(tmp_path: Path, internal_network: str):
    """Firewalled or air-gapped: apt and pip cannot reach anything from the server. Python
    comes as Debian packages shipped from here (same release and architecture), every
    distribution from the local build, and the build reads no index."""
    host = start_host(network=internal_network, publish=(8080,))
    try:
        assert host.exec(reach_mirror_probe()).returncode != 0
        d = example_for(tmp_path, host=f"{host.address}:22", password=host.password)
        proc = hostout(d, "-v", "host1", "deploy")  # -v: the server's build output too
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        assert re.search(r"cannot install packages itself: shipping \d+ Debian packages",
                         proc.stdout)
        indexes = index_hosts()
        assert indexes  # so the check below can fail
        assert [i for i in indexes if i in proc.stdout] == []  # the server's build read no index
        assert fetch(host.url(8080)) == ANSWER
    finally:
        host.remove()


def test_missing_buildout_group_is_one_line_and_changes_nothing(tmp_path: Path,
                                                                bare_host: TestHost):
    d = example_for(tmp_path, host=bare_host.hoststring, password=bare_host.password,
                    **{"buildout-group": ""})
    proc = hostout(d, "host1", "deploy")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "Error: host1: option buildout-group is required for this command")
    assert bare_host.exec("getent passwd buildout").returncode != 0  # nothing remote changed
    assert "Accepted password" not in bare_host.logs()


def test_sudo_parts_are_built_by_root_and_survive_normal_builds(deployed: Deployed):
    d = deployed.directory
    prod, cfg = d / "prod.cfg", d / "deploy.cfg"
    good_prod, good_cfg = prod.read_text(), cfg.read_text()
    prod.write_text(good_prod + "\n[rootconf]\nrecipe = collective.recipe.template\n"
                    "input = inline:\n    made by root for ${buildout:directory}\n"
                    "output = /etc/hostout-demo.conf\n")
    cfg.write_text(good_cfg + "sudo-parts = rootconf\n")
    try:
        buildout(d, "-c", "deploy.cfg")
        proc = deployed.deploy("deploy")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        made = deployed.host.exec("stat -c '%U' /etc/hostout-demo.conf; "
                                  "cat /etc/hostout-demo.conf").stdout.split("\n")
        # built with its release, whose directory it names
        current = deployed.host.exec("readlink -f /var/buildout/demo").stdout.strip()
        assert made[0] == "root" and made[1] == f"made by root for {current}"
        assert current.startswith("/var/buildout/demo.hostout/releases/")
        # the buildout user's own build leaves root's part alone
        proc = deployed.deploy("buildout")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        assert deployed.host.exec("test -f /etc/hostout-demo.conf").returncode == 0
    finally:
        prod.write_text(good_prod)
        cfg.write_text(good_cfg)
        buildout(d, "-c", "deploy.cfg")
