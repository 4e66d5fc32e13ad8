"""The test hosts themselves: what the deployment tests rely on."""

from __future__ import annotations

import socket
from pathlib import Path

import paramiko
import pytest

from hosts import HostFactory, TestHost
from registries import reach_mirror_probe

pytestmark = pytest.mark.integration


def banner(address: str, port: int) -> bytes:
    with socket.create_connection((address, port), timeout=5) as sock:
        return sock.recv(256)


def host_key(host: TestHost) -> str:
    return host.exec("cat /etc/ssh/ssh_host_ed25519_key.pub").stdout


def test_bare_host_answers_ssh(bare_host: TestHost) -> None:
    assert bare_host.hoststring == f"127.0.0.1:{bare_host.port}"
    assert banner(bare_host.address, bare_host.port).startswith(b"SSH-2.0-OpenSSH")


def test_deploy_logs_in_with_password_root_may_not(bare_host: TestHost) -> None:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        bare_host.address, bare_host.port, bare_host.user, bare_host.password,
        allow_agent=False, look_for_keys=False,
    )  # fmt: skip
    with client:
        _, stdout, _ = client.exec_command("id -un; echo $SHELL")
        assert stdout.read().decode().split() == ["deploy", "/bin/bash"]
    config = bare_host.exec("sshd -T").stdout.splitlines()
    assert "permitrootlogin no" in config
    assert "passwordauthentication yes" in config


def test_bare_host_has_no_python(bare_host: TestHost) -> None:
    assert bare_host.exec("command -v sudo").returncode == 0  # so exec itself works
    assert bare_host.exec("command -v python3").returncode != 0
    assert bare_host.exec("ls /usr/bin/python*").returncode != 0


def test_bare_host_trusts_the_controllers_cas(bare_host: TestHost) -> None:
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    controller = Path(bundle).read_text()
    assert bare_host.exec(f"cat {bundle}").stdout == controller
    # and where update-ca-certificates keeps it:
    kept = bare_host.exec("cat /usr/local/share/ca-certificates/controller.crt")
    assert kept.stdout == controller


def test_sudo_asks_deploy_for_the_password(bare_host: TestHost) -> None:
    asked = bare_host.exec("sudo -k; sudo -n true", user="deploy")
    assert asked.returncode != 0 and "a password is required" in asked.stderr
    right = bare_host.exec("sudo -k; echo deploypw | sudo -S -p '' -u root id -un", user="deploy")
    assert right.returncode == 0 and right.stdout == "root\n"
    wrong = bare_host.exec("sudo -k; echo wrongpw | sudo -S -p '' -u root true", user="deploy")
    assert wrong.returncode != 0 and "incorrect password" in wrong.stderr


def test_key_login_after_authorize_key(bare_host: TestHost, ssh_key: Path) -> None:
    bare_host.authorize_key(ssh_key.with_suffix(".pub").read_text())
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        bare_host.address, bare_host.port, bare_host.user, key_filename=str(ssh_key),
        allow_agent=False, look_for_keys=False,
    )  # fmt: skip
    with client:
        _, stdout, _ = client.exec_command("id -un")
        assert stdout.read() == b"deploy\n"
    assert f"Accepted publickey for {bare_host.user}" in bare_host.logs()


def test_hosts_have_their_own_keys_and_reach_each_other(host_factory: HostFactory) -> None:
    first, second = host_factory(2)
    keys = [host_key(first), host_key(second)]
    assert all(key.startswith("ssh-ed25519 ") for key in keys)
    assert keys[0] != keys[1]
    # as a jump host reaches its target:
    reach = first.exec(f"timeout 5 bash -c '</dev/tcp/{second.inspect_ip()}/22'")
    assert reach.returncode == 0, reach.stderr


def test_restarted_host_keeps_keys_and_port(bare_host: TestHost) -> None:
    key, port = host_key(bare_host), bare_host.port
    bare_host.stop()
    with pytest.raises(OSError):
        banner(bare_host.address, port)
    bare_host.start()
    assert bare_host.port == port
    assert banner(bare_host.address, port).startswith(b"SSH-2.0")
    assert host_key(bare_host) == key


def test_internal_network_host_has_no_way_out(host_factory: HostFactory, internal_network: str):
    (outside,) = host_factory(1)
    (inside,) = host_factory(1, network=internal_network)
    probe = reach_mirror_probe()
    assert outside.exec(probe).returncode == 0  # the same probe works from the bridge
    assert inside.exec(probe).returncode != 0
    assert (inside.port, inside.network) == (22, internal_network)
    assert inside.address not in ("", "127.0.0.1")
    assert banner(inside.address, inside.port).startswith(b"SSH-2.0")
