import types
from pathlib import Path

import pytest

from collective.hostout.commands.context import Context
from collective.hostout.commands.registry import Command, Registry, command, commands_of
from collective.hostout.config.facts import BuildoutFacts
from collective.hostout.config.settings import build_settings
from collective.hostout.errors import HostoutError, UsageError
from collective.hostout.output import QUIET, Output
from collective.hostout.remote.recording import RecordingRemote


def module(source: str, name: str = "fab") -> types.ModuleType:
    mod = types.ModuleType(name)
    exec(compile(source, name, "exec"), mod.__dict__)
    return mod


def test_plain_fabfile_exports_its_own_public_functions_only():
    mod = module("from os.path import join\n"
                 "def echo(x): 'Echo it'\n"
                 "def _helper(): pass\n"
                 "helper_lambda = lambda: 1\n")
    cmds = {c.name: c for c in commands_of(mod, "fab")}
    assert set(cmds) == {"echo"}
    assert cmds["echo"].summary == "Echo it" and not cmds["echo"].native


def test_decorated_commands_win_over_plain_functions():
    mod = module("from collective.hostout.commands.registry import command\n"
                 "@command\ndef deploy(c): pass\n"
                 "@command(name='up-time')\ndef uptime(c): pass\n"
                 "def helper(): pass\n")
    assert sorted(c.name for c in commands_of(mod, "fab")) == ["deploy", "up-time"]


def test_dunder_all_exports():
    mod = module("__all__ = ['a']\ndef a(): pass\ndef b(): pass\n")
    assert [c.name for c in commands_of(mod, "fab")] == ["a"]


def test_native_detection():
    mod = module("def n(c, x): pass\ndef s(x): pass\ndef a(context): pass\n"
                 "def t(ctx: 'Context'): pass\ndef e(): pass\n")
    native = {c.name: c.native for c in commands_of(mod, "fab")}
    assert native == {"n": True, "s": False, "a": True, "t": True, "e": False}


def make_context(registry: Registry) -> Context:
    settings = build_settings("host1", {"option1": "v"}, buildout_directory=Path("/tmp"))
    return Context(settings, remote=RecordingRemote(), registry=registry,
                   out=Output(verbosity=QUIET), facts=BuildoutFacts.of_directory(Path("/tmp")))


def test_override_chain_super_and_call():
    calls = []

    def base(c, x):
        calls.append(("base", x))
        return f"base:{x}"

    def mid(c, x):
        calls.append(("mid", x))
        return "mid>" + c.super(x)

    def top(x):  # seed style, superfun through the api
        from collective.hostout import api
        calls.append(("top", x))
        return "top>" + api.env.superfun(x)

    def other(c):
        return c.commands.greet("y") + "|" + c.call("greet", "z")

    reg = Registry([Command("greet", base, "builtin", True), Command("greet", mid, "egg", True),
                    Command("greet", top, "fabfile", False), Command("other", other, "f", True)])
    ctx = make_context(reg)
    assert ctx.call("greet", "x") == "top>mid>base:x"
    assert calls == [("top", "x"), ("mid", "x"), ("base", "x")]
    assert ctx.call("other") == "top>mid>base:y|top>mid>base:z"
    assert [c.origin for c in reg.chain("greet")] == ["builtin", "egg", "fabfile"]


def test_super_of_the_first_definition_is_an_error():
    reg = Registry([Command("only", lambda c: c.super(), "x", True)])
    with pytest.raises(HostoutError, match="overrides nothing"):
        make_context(reg).call("only")


def test_unknown_command_names_the_valid_ones():
    reg = Registry([Command("b", lambda c: 1, "x", True), Command("a", lambda c: 1, "x", True)])
    with pytest.raises(UsageError, match="unknown command 'zz'; valid commands are: a, b"):
        reg.chain("zz")


def test_wrong_arguments_are_a_usage_error():
    cmd = Command("echo", lambda cmdline1: None, "x", False)
    with pytest.raises(UsageError, match="echo takes: echo cmdline1"):
        cmd.check_arguments(("a", "b"), {})
    cmd.check_arguments(("a",), {})


def test_seed_env_reads_options_and_overrides_stay_per_context():
    def read():
        from collective.hostout import api
        api.env.extra = "set"
        return (api.env.option1, api.env.hostout.options["option1"], api.env.get("missing", 7),
                api.env.extra)

    reg = Registry([Command("read", read, "f", False)])
    ctx1, ctx2 = make_context(reg), make_context(reg)
    assert ctx1.call("read") == ("v", "v", 7, "set")
    assert ctx1.env == {"extra": "set"} and ctx2.env == {}


def test_api_outside_a_command_is_a_clear_error():
    from collective.hostout import api
    with pytest.raises(HostoutError, match="only usable inside a command"):
        api.run("true")


def test_command_decorator_keeps_function():
    @command
    def f(c):
        return 3
    assert f(None) == 3
