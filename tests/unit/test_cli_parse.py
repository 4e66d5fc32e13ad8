from pathlib import Path

import pytest

from collective.hostout import cli
from collective.hostout.commands.registry import Command, Registry
from collective.hostout.errors import UsageError


class FakeInvocation:
    host_names = ["host1", "host2"]

    def registry(self, host):
        def no_params(c):
            pass

        def varargs(c, *cmd):
            pass

        def one(c, cmdline1):
            pass

        funcs = {"deploy": no_params, "predeploy": no_params, "run": varargs, "echo": one}
        if host == "host2":
            funcs["only2"] = no_params
        return Registry([Command(n, f, "x", True) for n, f in funcs.items()])


def plan(*words):
    return cli.plan_from(list(words), FakeInvocation())


def test_split_argv_keeps_command_options():
    assert cli.split_argv(["-v", "-c", "f.json", "host1", "buildout", "-N"]) == (
        ["-v", "-c", "f.json"], ["host1", "buildout", "-N"])
    assert cli.split_argv(["--", "-weird-host"]) == ([], ["-weird-host"])


def test_hosts_commands_args():
    p = plan("host1", "run", "ls", "-la")
    assert (p.hosts, p.commands, p.args) == (("host1",), ("run",), ("ls", "-la"))
    p = plan("all", "deploy", "echo", "is cool")
    assert p.hosts == ("host1", "host2") and p.commands == ("deploy", "echo")
    assert p.arguments_for(0) == () and p.arguments_for(1) == ("is cool",)


def test_a_command_with_parameters_takes_the_rest_as_arguments():
    p = plan("host1", "run", "deploy", "x")
    assert p.commands == ("run",) and p.args == ("deploy", "x")
    p = plan("host1", "predeploy", "deploy", "run", "echo")
    assert p.commands == ("predeploy", "deploy", "run") and p.args == ("echo",)


def test_double_dash_ends_commands():
    p = plan("host2", "deploy", "--", "deploy")
    assert p.commands == ("deploy",) and p.args == ("deploy",)


def test_no_command_means_listing():
    assert plan() is None
    assert plan("host1").commands == ()


def test_unknown_host_and_command():
    with pytest.raises(UsageError, match="unknown host 'nope'; valid hosts are: host1, host2"):
        plan("nope", "deploy")
    with pytest.raises(UsageError, match="unknown command 'bogus'"):
        plan("host1", "bogus")


def test_missing_options_file_is_one_line_error(tmp_path: Path, capsys):
    code = cli.run(["host1", "run"], options_file=str(tmp_path / "none.json"))
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("Error: no hostout options at") and err.count("\n") == 1
