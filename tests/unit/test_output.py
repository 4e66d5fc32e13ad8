"""What people see: whole lines, quiet steps with one report each, masking, the kept log."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from collective.hostout.cli import _command_failure
from collective.hostout.commands.context import Context
from collective.hostout.commands.registry import Command, Registry, command
from collective.hostout.config.facts import BuildoutFacts
from collective.hostout.config.settings import build_settings
from collective.hostout.errors import BootstrapError, CommandFailed
from collective.hostout.output import NORMAL, QUIET, VERBOSE, Output
from collective.hostout.remote.recording import RecordingRemote


def output(verbosity: int = NORMAL, *, json_: bool = False) -> Output:
    return Output(verbosity=verbosity, stream=io.StringIO(), err=io.StringIO(), json=json_)


def printed(out: Output) -> list[str]:
    return out.stream.getvalue().splitlines()  # type: ignore[attr-defined]


def test_lines_are_never_split_whatever_the_writes_and_flushes():
    out = output()
    stream = out.host_stream("host1")
    for chunk in ("Installing l", "xml-4.5.0.tar.gz\nnext ", "line\r", "\nprogress 10%\r",
                  "progress 100%\n", "no newline at the end"):
        stream.write(chunk)
        stream.flush()  # invoke flushes after every write
    assert printed(out) == ["[host1] out: Installing lxml-4.5.0.tar.gz",
                            "[host1] out: next line", "[host1] out: progress 100%"]
    stream.finish()
    assert printed(out)[-1] == "[host1] out: no newline at the end"


@command(quiet=True)
def step(c):
    """A quiet step: one report"""
    c.out.line(c.name, "run: something")
    c.out.output(c.name, "what it printed")
    c.report("did one thing")


@command
def loud(c):
    """Not quiet: its output is the point"""
    c.out.line(c.name, "run: cat file")
    c.out.output(c.name, "the file")
    c.call("step")


def context(out: Output) -> Context:
    settings = build_settings("host1", {"user": "deploy"}, buildout_directory=Path("/tmp"))
    registry = Registry([Command("step", step, "t", True), Command("loud", loud, "t", True)])
    return Context(settings, RecordingRemote(), registry, out,
                   BuildoutFacts.of_directory(Path("/tmp")))


@pytest.mark.parametrize(("verbosity", "expected"), [
    (QUIET, ["[host1] out: the file"]),
    (NORMAL, ["[host1] Hostout: Running command 'loud' from 't'", "[host1] run: cat file",
              "[host1] out: the file", "[host1] step: did one thing"]),
    (VERBOSE, ["[host1] Hostout: Running command 'loud' from 't'", "[host1] run: cat file",
               "[host1] out: the file", "[host1] Hostout: Running command 'step' from 't'",
               "[host1] run: something", "[host1] out: what it printed",
               "[host1] step: did one thing"]),
])
def test_quiet_steps_say_one_line_by_default_and_everything_with_v(verbosity, expected):
    out = output(verbosity)
    context(out).call("loud")
    assert printed(out) == expected


def test_everything_goes_to_the_log_whatever_the_verbosity(tmp_path: Path):
    out = output(QUIET)
    log = out.open_log(tmp_path / "logs", "host1-loud")
    context(out).call("loud")
    out.close_log()
    kept = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    assert "[host1] run: something" in kept and "[host1] out: what it printed" in kept
    assert "[host1] step: did one thing" in kept
    assert log.stat().st_mode & 0o777 == 0o600


def test_old_logs_are_pruned(tmp_path: Path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for n in range(40):
        (logs / f"20200101-0000{n:02d}-old.log").write_text("x")
    Output(stream=io.StringIO()).open_log(logs, "new")
    assert len(list(logs.glob("*.log"))) == 30


def test_a_secret_is_masked_on_screen_in_json_and_in_the_log(tmp_path: Path):
    for json_ in (False, True):
        out = output(NORMAL, json_=json_)
        out.add_secret("hunter2")
        log = out.open_log(tmp_path / f"logs{json_}", "x")
        out.output("host1", "the password is hunter2!")
        out.report("host1", "step", "used hunter2")
        out.error("Error: host1: hunter2 refused")
        out.close_log()
        everything = (out.stream.getvalue() + out.err.getvalue()  # type: ignore[attr-defined]
                      + log.read_text())
        assert "hunter2" not in everything
        assert everything.count("****") >= 3 + 3  # the screen (or events) and the log
        if json_:
            events = [json.loads(line) for line in printed(out)]
            assert events[0]["output"] == "the password is ****!"


def test_a_secret_equal_to_a_public_name_does_not_mask_that_name():
    out = output()
    out.add_secret("vagrant")  # the password of user vagrant is vagrant
    out.add_public("vagrant", "host1")
    out.output("host1", "logged in as vagrant in /home/vagrant")
    out.add_secret("s3cret")
    out.output("host1", "s3cret")
    assert printed(out) == ["[host1] out: logged in as vagrant in /home/vagrant",
                            "[host1] out: ****"]


def test_the_failed_command_behind_a_step_error_brings_its_tail():
    failed = CommandFailed("'x' exited 1", tail=("a", "b"), tail_shown=False)
    wrapped = BootstrapError("bootstrap_python failed", cause=failed)
    assert _command_failure(wrapped) is failed
    out = output()
    out.failure_tail("host1", failed.tail, failed.tail_shown)
    assert out.err.getvalue().splitlines() == ["[host1] | a", "[host1] | b"]  # type: ignore[attr-defined]
    out = output()
    out.failure_tail("host1", failed.tail, shown=True)  # already on screen: not again
    assert out.err.getvalue() == ""  # type: ignore[attr-defined]
