"""What a command leaves to undo (a build container, say) is undone when the invocation hangs
up on its host: after its commands, or from another thread while a command still runs (what
Ctrl-C does); and a command can read another host part's settings."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from collective.hostout import RecordingRemote
from collective.hostout.config.facts import BuildoutFacts
from collective.hostout.config.optionsfile import OptionsFile
from collective.hostout.output import QUIET, Output
from collective.hostout.remote.passwords import Passwords
from collective.hostout.runner import Invocation, Plan

FABFILE = '''
import threading
from pathlib import Path


def hold(c):
    """Leave something to undo"""
    c.on_close(lambda: Path(c.options["mark"]).write_text("closed " + c.name))


def block(c):
    """Wait until the invocation hangs up"""
    hung_up = threading.Event()
    c.on_close(hung_up.set)
    Path(c.options["mark"]).write_text("waiting")
    if hung_up.wait(20):
        Path(c.options["mark"]).write_text("released")


def links(c):
    """Name the part another one links to"""
    return c.peer(c.options["other"]).name
'''


def invocation(tmp_path: Path) -> Invocation:
    fabfile = tmp_path / "fab.py"
    fabfile.write_text(FABFILE)
    hosts = {name: {"options": {"fabfiles": str(fabfile), "mark": str(tmp_path / name),
                                "other": "host2" if name == "host1" else "host1"}}
             for name in ("host1", "host2")}
    options = OptionsFile(tmp_path / "parts" / "hostout" / "hostout.json",
                          BuildoutFacts.of_directory(tmp_path), hosts)
    out = Output(verbosity=QUIET)
    return Invocation(options, out, Passwords(out, interactive=False),
                      remote_factory=lambda settings: RecordingRemote(settings.name))


def test_closed_after_the_hosts_commands(tmp_path: Path):
    inv = invocation(tmp_path)
    outcomes = inv.run(Plan(("host1", "host2"), ("hold",)))
    assert [o.ok for o in outcomes] == [True, True]
    assert (tmp_path / "host1").read_text() == "closed host1"
    assert (tmp_path / "host2").read_text() == "closed host2"
    assert inv.context("host1").remote.closed  # type: ignore[attr-defined]


def test_closed_from_another_thread_while_a_command_runs(tmp_path: Path):
    inv = invocation(tmp_path)
    running = threading.Thread(target=inv.run, args=(Plan(("host1",), ("block",)),))
    running.start()
    deadline = time.monotonic() + 10
    while not (tmp_path / "host1").exists():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    inv.close()  # what the command line does on Ctrl-C
    running.join(10)
    assert not running.is_alive()
    assert (tmp_path / "host1").read_text() == "released"


def test_a_command_reads_another_parts_settings(tmp_path: Path):
    outcomes = invocation(tmp_path).run(Plan(("host1", "host2"), ("links",)))
    assert [o.results for o in outcomes] == [["host2"], ["host1"]]
