"""Issue 2 against real sshd hosts: run, sudo, both plugin styles, superfun, ssh_config,
host keys and the bad inputs, through bin/hostout as a user runs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from buildouts import PLUGIN, buildout, hostout, write
from hosts import TestHost, unused_port

pytestmark = pytest.mark.integration

SEED_FABFILE = """
from collective.hostout import api
from collective.hostout.api import run


def echo(cmdline1):
    option1 = api.env.option1
    run("echo '%s %s'" % (option1, cmdline1))
"""

NATIVE_FABFILE = """
from collective.hostout.commands.registry import command


@command
def sudo(c, *cmd):
    '''sudo, wrapped by a native override'''
    c.run("echo native-before-sudo")
    result = c.super(*cmd)
    return result


@command
def whoami(c):
    '''print the login user and return it'''
    return c.run("id -un").stdout.strip()


@command
def report(c):
    '''call another command and use its return value'''
    user = c.commands.whoami()
    c.run(f"echo reported {c.quote(user)} {c.quote(c.options['option1'])}")
"""


def host_part(server: TestHost, tmp: Path, **extra: str) -> str:
    options = {
        "recipe": "collective.hostout",
        "host": f"{server.address}:{server.port}",
        "user": server.user,
        "password": server.password,
        "known-hosts": str(tmp / "known_hosts"),
        "ssh-config": str(tmp / "ssh_config"),
        "path": "/var/host1",
        "option1": "buildout",
    }
    options.update(extra)
    return "\n".join(f"{k} = {v}" for k, v in options.items() if v is not None)


def make(tmp: Path, server: TestHost, *, extra_cfg: str = "", **options: str) -> Path:
    (tmp / "ssh_config").touch()
    write(tmp, "fabfile.py", SEED_FABFILE)
    write(tmp, "native.py", NATIVE_FABFILE)
    (tmp / "buildout.cfg").write_text(
        f"[buildout]\nparts = host1\n{extra_cfg}\n[host1]\n{host_part(server, tmp, **options)}\n"
    )
    buildout(tmp)
    return tmp


def lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return proc.stdout.splitlines()


def test_seed_echo_example(tmp_path: Path, bare_host: TestHost):
    d = make(tmp_path, bare_host, fabfiles="fabfile.py")
    proc = hostout(d, "host1", "echo", "is cool")
    assert proc.returncode == 0, proc.stderr
    assert "[host1] out: buildout is cool" in lines(proc)
    assert "Hostout: Running command 'echo' from" in proc.stdout
    known = (tmp_path / "known_hosts").read_text().split()
    assert known[0] == f"[{bare_host.address}]:{bare_host.port}"  # recorded on first use
    assert (tmp_path / "known_hosts").stat().st_mode & 0o777 == 0o600


def test_sudo_answers_prompt_and_never_prints_password(tmp_path: Path, bare_host: TestHost):
    d = make(tmp_path, bare_host)
    proc = hostout(d, "host1", "sudo", "id", "-u")
    assert proc.returncode == 0, proc.stderr
    assert "[host1] out: 0" in lines(proc)
    assert bare_host.password not in proc.stdout + proc.stderr
    # the user's sudo really asks for a password: without one it is refused
    check = bare_host.exec("sudo -k; sudo -n true", user=bare_host.user)
    assert check.returncode != 0


def test_a_password_the_host_prints_is_masked_on_screen_in_json_and_in_the_log(
        tmp_path: Path, bare_host: TestHost):
    # the password reaches the host's output, as a careless script of the user's may print it
    bare_host.exec(f"printf 'secret is %s here\\n' {bare_host.password} > /root/leak && "
                   "chmod 600 /root/leak")
    d = make(tmp_path, bare_host)
    plain = hostout(d, "host1", "sudo", "cat", "/root/leak")
    assert plain.returncode == 0, plain.stderr
    assert "[host1] out: secret is **** here" in lines(plain)
    events = hostout(d, "--json", "host1", "sudo", "cat", "/root/leak")
    assert events.returncode == 0, events.stderr
    outputs = [json.loads(line) for line in events.stdout.splitlines()]
    assert {"secret is **** here"} == {e["output"] for e in outputs if e["event"] == "output"}
    logs = sorted((d / "parts" / "hostout" / "logs").glob("*-host1-sudo*.log"))
    assert len(logs) == 2
    kept = "".join(log.read_text() for log in logs)
    assert kept.count("secret is **** here") == 2
    for text in (plain.stdout + plain.stderr, events.stdout + events.stderr, kept):
        assert bare_host.password not in text


def test_run_explains_before_bootstrap_then_runs_as_buildout_user_in_path(
        tmp_path: Path, bare_host: TestHost):
    d = make(tmp_path, bare_host)
    proc = hostout(d, "host1", "run", "pwd")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "Error: host1: /var/host1 does not exist yet: the host is not bootstrapped; "
        "run 'bin/hostout host1 deploy' (or bootstrap) first")
    bare_host.exec(f"mkdir -p /var/host1 && chown {bare_host.user} /var/host1")
    proc = hostout(d, "host1", "run", "pwd;", "id", "-un")
    assert proc.returncode == 0, proc.stderr
    assert lines(proc)[-2:] == ["[host1] out: /var/host1", f"[host1] out: {bare_host.user}"]


def test_plugin_egg_and_native_override_chain(tmp_path: Path, bare_host: TestHost):
    # built-in sudo <- plugin egg's seed-style sudo <- fabfile's native sudo
    d = make(tmp_path, bare_host, extends="hostout.myplugin", fabfiles="native.py",
             param1="blah", extra_cfg=f"develop = {PLUGIN}\n")
    proc = hostout(d, "host1", "sudo", "whoami")
    assert proc.returncode == 0, proc.stderr
    outs = [ln for ln in lines(proc) if ln.startswith("[host1] out:")]
    assert outs == ["[host1] out: native-before-sudo", "[host1] out: plugin-sudo-hook",
                    "[host1] out: root"]
    origins = [ln for ln in lines(proc) if "Hostout: Running command 'sudo'" in ln]
    assert [o.rsplit(" from ", 1)[1] for o in origins] == [
        f"'{tmp_path / 'native.py'}'", "'hostout.myplugin'", "'collective.hostout'"]

    proc = hostout(d, "host1", "mycommand", "there")
    assert proc.returncode == 0, proc.stderr
    assert "[host1] out: hello from hostout.myplugin there" in lines(proc)

    proc = hostout(d, "host1", "report")
    assert proc.returncode == 0, proc.stderr
    assert f"[host1] out: reported {bare_host.user} buildout" in lines(proc)


def test_several_commands_share_one_connection(tmp_path: Path, bare_host: TestHost):
    d = make(tmp_path, bare_host, fabfiles="native.py")
    proc = hostout(d, "host1", "whoami", "whoami", "report")
    assert proc.returncode == 0, proc.stderr
    logs = bare_host.logs()
    assert logs.count("Accepted password for") == 1


def test_ssh_config_alias_gives_hostname_port_and_user(tmp_path: Path, bare_host: TestHost):
    (tmp_path / "ssh_config").write_text(
        f"Host webalias\n  HostName {bare_host.address}\n  Port {bare_host.port}\n"
        f"  User {bare_host.user}\n")
    write(tmp_path, "fabfile.py", SEED_FABFILE)
    (tmp_path / "buildout.cfg").write_text(
        "[buildout]\nparts = webalias\n[webalias]\nrecipe = collective.hostout\n"
        f"password = {bare_host.password}\nknown-hosts = {tmp_path / 'known_hosts'}\n"
        f"ssh-config = {tmp_path / 'ssh_config'}\nfabfiles = fabfile.py\noption1 = via\n")
    buildout(tmp_path)
    proc = hostout(tmp_path, "webalias", "echo", "alias")
    assert proc.returncode == 0, proc.stderr
    assert "[webalias] out: via alias" in lines(proc)


def test_proxyjump_from_ssh_config(tmp_path: Path, host_factory, ssh_key: Path):
    jump, target = host_factory(2)
    for h in (jump, target):
        h.authorize_key(ssh_key.with_suffix(".pub").read_text())
    target_ip = target.inspect_ip()
    (tmp_path / "ssh_config").write_text(
        f"Host target\n  HostName {target_ip}\n  Port 22\n  User {target.user}\n"
        f"  IdentityFile {ssh_key}\n"
        f"  ProxyJump {jump.user}@{jump.address}:{jump.port}\n"
        f"Host {jump.address}\n  IdentityFile {ssh_key}\n")
    write(tmp_path, "fabfile.py", "from collective.hostout import api\n\n"
          "def conn():\n    api.run('echo $SSH_CONNECTION')\n")
    (tmp_path / "buildout.cfg").write_text(
        "[buildout]\nparts = target\n[target]\nrecipe = collective.hostout\n"
        f"known-hosts = {tmp_path / 'known_hosts'}\nssh-config = {tmp_path / 'ssh_config'}\n"
        "fabfiles = fabfile.py\n")
    buildout(tmp_path)
    proc = hostout(tmp_path, "target", "conn")
    assert proc.returncode == 0, proc.stderr
    client_ip = next(ln for ln in lines(proc) if ln.startswith("[target] out:")).split()[2]
    assert client_ip == jump.inspect_ip()  # the target saw the jump host, not us


def test_wrong_password_is_one_line_and_runs_nothing(tmp_path: Path, bare_host: TestHost):
    d = make(tmp_path, bare_host, password="not-the-password", fabfiles="fabfile.py")
    proc = hostout(d, "host1", "echo", "x")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"Error: host1: authentication failed for {bare_host.user}@{bare_host.address}:"
        f"{bare_host.port} (wrong password or key?)")
    assert "not-the-password" not in proc.stdout + proc.stderr


def test_wrong_sudo_password_after_key_login(tmp_path: Path, bare_host: TestHost,
                                             ssh_key: Path):
    bare_host.authorize_key(ssh_key.with_suffix(".pub").read_text())
    d = make(tmp_path, bare_host, password="wrong-sudo-pw", **{"identity-file": str(ssh_key)})
    proc = hostout(d, "host1", "sudo", "touch", "/root/should-not-exist")
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"Error: host1: sudo refused the password of {bare_host.user}"
    assert "wrong-sudo-pw" not in proc.stdout + proc.stderr
    assert bare_host.exec("test -e /root/should-not-exist").returncode != 0


def test_no_password_and_no_terminal(tmp_path: Path, bare_host: TestHost):
    d = make(tmp_path, bare_host, password=None, fabfiles="fabfile.py")
    proc = hostout(d, "host1", "echo", "x")
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(
        f"Error: host1: no key or password to log in as {bare_host.user}@")


def test_unreachable_host(tmp_path: Path, bare_host: TestHost):
    port = unused_port()
    d = make(tmp_path, bare_host, host=f"127.0.0.1:{port}", fabfiles="fabfile.py")
    proc = hostout(d, "host1", "echo", "x")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"Error: host1: cannot reach {bare_host.user}@127.0.0.1:{port}: connection refused")


def test_changed_host_key_is_refused_and_runs_nothing(tmp_path: Path, bare_host: TestHost):
    d = make(tmp_path, bare_host)
    assert hostout(d, "host1", "sudo", "true").returncode == 0
    bare_host.exec("rm /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && kill -HUP 1")
    bare_host.wait_for_ssh()
    proc = hostout(d, "host1", "sudo", "touch", "/root/marker")
    assert proc.returncode == 1
    err = proc.stderr.strip()
    assert err.startswith(f"Error: host1: the host key of [{bare_host.address}]:"
                          f"{bare_host.port} has CHANGED")
    assert "ssh-keygen -R" in err and err.count("\n") == 0
    assert bare_host.exec("test -e /root/marker").returncode != 0


def test_strict_host_key_checking_refuses_unknown_host(tmp_path: Path, bare_host: TestHost):
    d = make(tmp_path, bare_host, **{"host-key-checking": "yes"}, fabfiles="fabfile.py")
    proc = hostout(d, "host1", "echo", "x")
    assert proc.returncode == 1
    assert "is not in known_hosts" in proc.stderr
    assert not (tmp_path / "known_hosts").exists()


def test_broken_cfg_after_buildout(tmp_path: Path, bare_host: TestHost):
    d = make(tmp_path, bare_host, fabfiles="fabfile.py")
    with (d / "buildout.cfg").open("a") as fh:
        fh.write("[broken\n")
    proc = hostout(d, "host1", "echo", "x")
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("Error: buildout.cfg changed after the last")
    assert bare_host.logs().count("Accepted password") == 0  # nothing remote was touched


def test_interrupted_upload_never_leaves_a_truncated_file(tmp_path: Path, bare_host: TestHost):
    import os
    import threading
    import time

    from collective.hostout.config.settings import build_settings
    from collective.hostout.output import QUIET, Output
    from collective.hostout.remote.passwords import Passwords
    from collective.hostout.remote.ssh import SshRemote

    (tmp_path / "ssh_config").touch()
    settings = build_settings("host1", {
        "host": bare_host.hoststring, "user": bare_host.user, "password": bare_host.password,
        "known-hosts": str(tmp_path / "known_hosts"), "ssh-config": str(tmp_path / "ssh_config"),
    }, buildout_directory=tmp_path)
    out = Output(verbosity=QUIET)
    remote = SshRemote(settings, out, Passwords(out, interactive=False))
    big = tmp_path / "big-1.0-py3-none-any.whl"
    big.write_bytes(os.urandom(256 * 1024 * 1024))

    def cut_when_half_there() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            size = bare_host.exec("stat -c %s /tmp/.big-1.0-py3-none-any.whl.*.part"
                                  " 2>/dev/null || echo 0").stdout.split()
            if size and int(size[0]) > 1024 * 1024:
                remote.close()  # the connection drops mid-transfer
                return
            time.sleep(0.05)

    cutter = threading.Thread(target=cut_when_half_there)
    cutter.start()
    with pytest.raises(Exception):  # noqa: B017 - whatever the dropped connection raises
        remote.put(big, "/tmp/big-1.0-py3-none-any.whl")
    cutter.join()
    assert bare_host.exec("test -e /tmp/big-1.0-py3-none-any.whl").returncode != 0
    assert bare_host.exec("ls -a /tmp").stdout.count(".part") <= 1  # at most a hidden part
    # and a complete upload lands under its name
    small = tmp_path / "small.txt"
    small.write_text("complete\n")
    remote.put(small, "/tmp/small.txt")
    assert bare_host.exec("cat /tmp/small.txt").stdout == "complete\n"
    remote.close()


def test_password_asked_once_on_a_terminal_for_all_hosts(tmp_path: Path, host_factory):
    """No password option: on a terminal hostout asks once per login user, never echoes it,
    and uses it for login and sudo on every host."""
    import os
    import pty
    import select
    import time

    hosts = host_factory(2)
    (tmp_path / "ssh_config").touch()
    parts = "".join(
        f"[h{i}]\nrecipe = collective.hostout\nhost = {h.hoststring}\nuser = {h.user}\n"
        f"known-hosts = {tmp_path / 'known_hosts'}\nssh-config = {tmp_path / 'ssh_config'}\n"
        for i, h in enumerate(hosts, 1))
    (tmp_path / "buildout.cfg").write_text(f"[buildout]\nparts = h1 h2\n{parts}")
    buildout(tmp_path)
    pid, fd = pty.fork()
    if pid == 0:  # the child: bin/hostout on a terminal
        os.chdir(tmp_path)
        os.execv(str(tmp_path / "bin" / "hostout"),
                 ["hostout", "--serial", "h1", "h2", "sudo", "id", "-u"])
    seen, prompts, deadline = b"", 0, time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        if seen.count(b"Password for deploy") > prompts:
            prompts += 1
            os.write(fd, hosts[0].password.encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    text = seen.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert prompts == 1
    assert "[h1] out: 0" in text and "[h2] out: 0" in text
    assert hosts[0].password not in text
