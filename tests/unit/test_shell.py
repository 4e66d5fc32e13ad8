import shlex

from collective.hostout.remote.ssh import SUDO_PROMPT, wire
from collective.hostout.shell import Account, RemoteCommand, join, mask


def test_every_argument_is_quoted():
    evil = "x; rm -rf / #"
    cmd = RemoteCommand.argv(["echo", evil, "$HOME", "a'b"])
    assert shlex.split(cmd.script) == ["echo", evil, "$HOME", "a'b"]


def test_cwd_and_sudo_wire():
    cmd = RemoteCommand("ls -l", cwd="/var/buildout/my app", sudo=True, sudo_user="bo")
    assert cmd.body == "cd '/var/buildout/my app' && ls -l"
    words = shlex.split(wire(cmd))
    assert words[:8] == ["sudo", "-S", "-p", SUDO_PROMPT, "-H", "-u", "bo", "--"]
    assert words[8:] == ["sh", "-c", cmd.body]


def test_optional_cwd_falls_back():
    cmd = RemoteCommand("id", cwd="/nope", cwd_optional=True)
    assert cmd.body == "cd /nope 2>/dev/null; id"


def test_display_masks_secrets_and_says_how():
    cmd = RemoteCommand(join(["login", "--password", "hunter2"]), secrets=("hunter2",))
    assert cmd.display() == "run: login --password ****"
    assert RemoteCommand("id", sudo=True).display() == "sudo: id"
    assert RemoteCommand("id", account=Account.BUILDOUT).account is Account.BUILDOUT


def test_mask_longest_first():
    assert mask("pw pwlong", ["pw", "pwlong"]) == "**** ****"
    assert mask("nothing", [""]) == "nothing"
