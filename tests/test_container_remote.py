"""The container side of the remote seam, against Podman's Docker-compatible service:
commands as each account, env and cwd, failures, atomic put, get, and a container removed
on close (issue 9, item 1). The image build on top of it is tested in tests/test_docker.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from collective.hostout import Account, RemoteCommand
from collective.hostout.config.settings import build_settings
from collective.hostout.errors import CommandFailed, ConnectError, RemoteError
from collective.hostout.output import QUIET, Output
from collective.hostout.remote.container import BUILD_PREFIX, ContainerRemote, Engine

pytestmark = pytest.mark.integration


@pytest.fixture
def remote(docker_service: str, base_image: str, tmp_path: Path) -> Iterator[ContainerRemote]:
    """A container of the bare base image with a buildout user ``bo`` and a user ``app``."""
    settings = build_settings("box", {"buildout-user": "bo", "effective-user": "app",
                                      "buildout-group": "grp"}, buildout_directory=tmp_path)
    engine = Engine.connect("box")
    container = ContainerRemote(settings, Output(verbosity=QUIET), engine)
    container.start(base_image)
    try:
        container.execute(RemoteCommand("useradd -m bo && useradd -m app"))
        yield container
    finally:
        container.close()
        engine.close()


def out(remote: ContainerRemote, script: str, **kwargs: object) -> str:
    return remote.execute(RemoteCommand(script, **kwargs), hide=True).stdout  # type: ignore[arg-type]


def test_commands_run_as_each_account(remote: ContainerRemote):
    assert remote.login_user == "root" and remote.key_login is False
    assert out(remote, "id -un") == "root\n"
    assert out(remote, "id -un; echo $HOME", account=Account.BUILDOUT) == "bo\n/home/bo\n"
    assert out(remote, "id -un", sudo=True, account=Account.BUILDOUT) == "root\n"
    assert out(remote, "id -un", sudo=True, sudo_user="app") == "app\n"


def test_env_and_cwd_travel_with_the_command(remote: ContainerRemote):
    assert out(remote, 'printf "%s|" "$GREETING"; pwd', env=(("GREETING", "a 'b' $c"),),
               cwd="/tmp") == "a 'b' $c|/tmp\n"
    assert out(remote, "pwd", cwd="/nonexistent", cwd_optional=True) == "/\n"


def test_a_failed_command_raises_unless_warned(remote: ContainerRemote):
    with pytest.raises(CommandFailed) as failed:
        remote.execute(RemoteCommand("echo out; echo 'it broke' >&2; exit 3"), hide=True)
    assert failed.value.exit_status == 3
    assert str(failed.value).endswith("exited 3: it broke")
    assert failed.value.tail == ("out", "it broke")
    result = remote.execute(RemoteCommand("exit 4"), warn=True, hide=True)
    assert (result.ok, result.exited) == (False, 4)


def test_put_is_atomic_and_owned_by_the_account(remote: ContainerRemote, tmp_path: Path):
    local = tmp_path / "settings.cfg"
    local.write_text("first\n")
    remote.put(local, "/home/bo/settings.cfg", account=Account.BUILDOUT, mode=0o600)
    assert out(remote, "stat -c '%U %a' /home/bo/settings.cfg; cat /home/bo/settings.cfg") \
        == "bo 600\nfirst\n"
    inode = out(remote, "stat -c %i /home/bo/settings.cfg")
    local.write_text("second\n")
    remote.put(local, "settings.cfg", account=Account.BUILDOUT)  # relative: in its home
    assert out(remote, "cat /home/bo/settings.cfg") == "second\n"
    assert out(remote, "stat -c %i /home/bo/settings.cfg") != inode  # renamed over, not
    assert out(remote, "ls -A /home/bo | grep -c part || true") == "0\n"  # rewritten
    # a directory the account may not write: refused, and no temporary file left there
    with pytest.raises(CommandFailed, match="cannot put /root/x as bo"):
        remote.put(local, "/root/x", account=Account.BUILDOUT)
    assert out(remote, "ls -A /root | grep -c part || true") == "0\n"


def test_get_reads_through_the_accounts_permissions(remote: ContainerRemote, tmp_path: Path):
    out(remote, "echo secret > /root/secret && chmod 600 /root/secret "
                "&& echo mine > /home/bo/mine")
    remote.get("/home/bo/mine", tmp_path / "mine", account=Account.BUILDOUT)
    assert (tmp_path / "mine").read_text() == "mine\n"
    with pytest.raises(CommandFailed, match="no file /root/secret that bo may read"):
        remote.get("/root/secret", tmp_path / "secret", account=Account.BUILDOUT)
    assert not (tmp_path / "secret").exists()
    remote.get("/root/secret", tmp_path / "secret")  # root may
    assert (tmp_path / "secret").read_text() == "secret\n"


def test_close_removes_the_container_and_refuses_more(remote: ContainerRemote,
                                                      base_image: str):
    container = remote.container
    assert container is not None
    assert remote.engine.containers(f"{BUILD_PREFIX}.")  # it is there, under its name
    remote.close()
    assert all(found != container for found, _ in remote.engine.containers(BUILD_PREFIX))
    with pytest.raises(RemoteError, match="interrupted"):
        remote.start(base_image)


def test_build_containers_of_killed_processes_are_removed(docker_service: str,
                                                          base_image: str):
    engine = Engine.connect()
    try:
        name = engine.build_name("box")
        dead = name.replace(f".{os.getpid()}.", ".999999999.")  # no such process
        engine.create(base_image, dead)
        engine.create(base_image, name)  # ours: we are alive
        assert engine.remove_stale() == [dead]
        assert [n for _, n in engine.containers(BUILD_PREFIX)].count(name) == 1
    finally:
        for container, found in engine.containers(BUILD_PREFIX):
            if found in (name, dead):
                engine.remove_container(container)
        engine.close()


def test_no_service_is_one_line_saying_what_to_do(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    with pytest.raises(ConnectError) as failed:
        Engine.connect("box")
    message = str(failed.value)
    assert message.startswith(f"box: no Docker or Podman service answers at "
                              f"unix://{tmp_path}/none.sock (no such socket); ")
    assert "DOCKER_HOST" in message and "\n" not in message
