"""Many hosts at once, without a network: hosts whose commands are native fabfile functions."""

from __future__ import annotations

import io
import json
import re
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text

from collective.hostout import cli
from collective.hostout.config.facts import BuildoutFacts
from collective.hostout.config.optionsfile import OptionsFile
from collective.hostout.errors import UsageError
from collective.hostout.output import QUIET, Output
from collective.hostout.output.summary import plain_summary, summary_rows
from collective.hostout.remote.passwords import Passwords
from collective.hostout.runner import MAX_THREADS, HostOutcome, Invocation, Plan, thread_count

# Commands that never touch a network: they print through hostout's Output like a remote
# command does, and fail when their host's options say so.
FABFILE = '''
import threading
from collective.hostout.errors import CommandFailed

MEETING = threading.Barrier(int(MEET_SIZE), timeout=20)
_LOCK = threading.Lock()
_INSIDE = [0, 0]  # hosts in meet now, most ever


def hello(c, *words):
    """Say hello"""
    c.out.output(c.name, " ".join(("hello from", c.name) + words))
    return c.name


def check(c):
    """Fail on hosts with the option fail"""
    if c.options.get("fail"):
        raise CommandFailed(f"'check' exited 1: {c.options['fail']}", exit_status=1)
    c.out.output(c.name, "checked")


def meet(c):
    """Return only once MEET_SIZE hosts are in this command at the same time"""
    with _LOCK:
        _INSIDE[0] += 1
        _INSIDE[1] = max(_INSIDE)
    try:
        MEETING.wait()
    finally:
        with _LOCK:
            _INSIDE[0] -= 1
    c.out.output(c.name, f"most at once: {_INSIDE[1]}")


def fail_or_wait(c):
    """Meet the others; then fail on hosts with the option fail, elsewhere wait for that"""
    MEETING.wait()
    if c.options.get("fail"):
        raise CommandFailed("failed on purpose", exit_status=1)
    c.out.failure_seen.wait(20)


def release(c):
    """Work done once for all hosts of the invocation"""
    return c.shared.once("release", lambda: c.out.output(c.name, "released") or c.name)


def bug(c):
    """A fabfile with a bug"""
    return {}["missing"]
'''


class RecordingOutput(Output):
    """Output that remembers the command events and whether a host failed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(stream=io.StringIO(), err=io.StringIO(), **kwargs)
        self.events: list[tuple[str, str, str]] = []
        self.failure_seen = threading.Event()

    def command_started(self, host: str, command: str) -> None:
        self.events.append((host, command, "start"))
        super().command_started(host, command)

    def command_ended(self, host: str, command: str, *, error: str | None = None,
                      seconds: float = 0.0) -> None:
        self.events.append((host, command, "failed" if error else "ok"))
        super().command_ended(host, command, error=error, seconds=seconds)
        if error:
            self.failure_seen.set()

    @property
    def text(self) -> str:
        return self.stream.getvalue()  # type: ignore[attr-defined]


def options_file(tmp_path: Path, hosts: dict[str, dict[str, str]], *,
                 meet_size: int = 1) -> OptionsFile:
    fabfile = tmp_path / "fab.py"
    fabfile.write_text(FABFILE.replace("int(MEET_SIZE)", str(meet_size)))
    entries = {name: {"options": {"host": "127.0.0.1:1", "user": "deploy",
                                  "fabfiles": str(fabfile), **extra}}
               for name, extra in hosts.items()}
    return OptionsFile(location=tmp_path / "parts" / "hostout" / "hostout.json",
                       facts=BuildoutFacts.of_directory(tmp_path), hosts=entries)


def invocation(tmp_path: Path, hosts: dict[str, dict[str, str]], *, meet_size: int = 1,
               out: Output | None = None) -> tuple[Invocation, RecordingOutput]:
    out = out or RecordingOutput(verbosity=QUIET)
    assert isinstance(out, RecordingOutput)
    options = options_file(tmp_path, hosts, meet_size=meet_size)
    return Invocation(options, out, Passwords(out, interactive=False)), out


def three(**extra: dict[str, str]) -> dict[str, dict[str, str]]:
    hosts: dict[str, dict[str, str]] = {"host1": {}, "host2": {}, "host3": {}}
    for name, options in extra.items():
        hosts[name] = options
    return hosts


def plan(*commands: str, hosts: tuple[str, ...] = ("host1", "host2", "host3"),
         args: tuple[str, ...] = ()) -> Plan:
    return Plan(hosts, commands, args)


# -- scheduling -------------------------------------------------------------------------------
def test_thread_count():
    assert thread_count(3, None) == 3
    assert thread_count(50, None) == MAX_THREADS
    assert thread_count(50, 5) == 5 and thread_count(2, 5) == 2 and thread_count(50, 1) == 1
    with pytest.raises(UsageError, match="--parallel 0"):
        thread_count(3, 0)


def test_hosts_run_side_by_side_by_default(tmp_path: Path):
    # meet returns only when all three hosts are inside it at once (else the barrier breaks)
    inv, _ = invocation(tmp_path, three(), meet_size=3)
    outcomes = inv.run(plan("meet", "hello"))
    assert [(o.host, o.status) for o in outcomes] == [("host1", "ok"), ("host2", "ok"),
                                                      ("host3", "ok")]
    assert [o.results[1] for o in outcomes] == ["host1", "host2", "host3"]


def test_parallel_bounds_hosts_at_once(tmp_path: Path):
    hosts = {f"host{i}": {} for i in range(1, 7)}
    inv, out = invocation(tmp_path, hosts, meet_size=2)  # pairs meet; never more than 2 in
    outcomes = inv.run(Plan(tuple(hosts), ("meet",)), parallel=2)
    assert [o.status for o in outcomes] == ["ok"] * 6
    assert max(int(line.rsplit(" ", 1)[1]) for line in out.text.splitlines()) == 2


def test_serial_runs_hosts_in_order_and_a_failure_does_not_stop_the_others(tmp_path: Path):
    inv, out = invocation(tmp_path, three(host2={"fail": "disk full"}))
    outcomes = inv.run(plan("check", "hello", hosts=("host3", "host2", "host1")), parallel=1)
    assert out.events == [
        ("host3", "check", "start"), ("host3", "check", "ok"),
        ("host3", "hello", "start"), ("host3", "hello", "ok"),
        ("host2", "check", "start"), ("host2", "check", "failed"),
        ("host1", "check", "start"), ("host1", "check", "ok"),
        ("host1", "hello", "start"), ("host1", "hello", "ok"),
    ]
    assert [(o.host, o.status) for o in outcomes] == [("host3", "ok"), ("host2", "failed"),
                                                      ("host1", "ok")]
    failed = outcomes[1]
    assert failed.failed_command == "check" and failed.completed == []
    assert failed.error is not None and str(failed.error) == "host2: 'check' exited 1: disk full"
    lines = out.text.splitlines()
    assert lines == ["[host3] out: checked", "[host3] out: hello from host3",
                     "[host1] out: checked", "[host1] out: hello from host1"]


def test_fail_fast_starts_no_further_host(tmp_path: Path):
    inv, out = invocation(tmp_path, three(host1={"fail": "no"}))
    outcomes = inv.run(plan("check", "hello"), parallel=1, fail_fast=True)
    assert [o.status for o in outcomes] == ["failed", "skipped", "skipped"]
    assert out.events == [("host1", "check", "start"), ("host1", "check", "failed")]


def test_fail_fast_skips_the_remaining_commands_of_running_hosts(tmp_path: Path):
    # host2 is inside its first command when host1 fails: its second one must not start.
    inv, out = invocation(tmp_path, {"host1": {"fail": "no"}, "host2": {}}, meet_size=2)
    outcomes = inv.run(Plan(("host1", "host2"), ("fail_or_wait", "hello")), fail_fast=True)
    assert [o.status for o in outcomes] == ["failed", "skipped"]
    assert outcomes[1].completed == ["fail_or_wait"]
    assert ("host2", "hello", "start") not in out.events


def test_without_fail_fast_running_hosts_go_on(tmp_path: Path):
    inv, out = invocation(tmp_path, {"host1": {"fail": "no"}, "host2": {}}, meet_size=2)
    outcomes = inv.run(Plan(("host1", "host2"), ("fail_or_wait", "hello")))
    assert [o.status for o in outcomes] == ["failed", "ok"]
    assert out.events[-2:] == [("host2", "hello", "start"), ("host2", "hello", "ok")]


def test_a_fabfile_bug_fails_its_host_only(tmp_path: Path):
    inv, out = invocation(tmp_path, {"host1": {}, "host2": {}})
    outcomes = inv.run(Plan(("host1", "host2"), ("bug",)))
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert outcomes[0].error_line == "command bug raised KeyError: 'missing'"
    err = out.err.getvalue()  # type: ignore[attr-defined]
    assert "[host1] Traceback (most recent call last):" in err
    assert "[host2] KeyError: 'missing'" in err


def test_arguments_go_to_the_last_command(tmp_path: Path):
    inv, out = invocation(tmp_path, {"host1": {}})
    (outcome,) = inv.run(Plan(("host1",), ("check", "hello"), ("big", "world")))
    assert outcome.ok and outcome.results == [None, "host1"]
    assert out.text.splitlines()[-1] == "[host1] out: hello from host1 big world"


# -- once per invocation, not per host ---------------------------------------------------------
def test_fifty_hosts_import_their_fabfile_once(tmp_path: Path):
    marker = tmp_path / "imports.log"
    fabfile = tmp_path / "counted.py"
    fabfile.write_text(textwrap.dedent(f"""
        from pathlib import Path
        with Path({str(marker)!r}).open("a") as fh:
            fh.write("imported\\n")

        def hello(c):
            c.out.output(c.name, "hi")
    """))
    hosts = {f"h{i:02}": {"options": {"host": f"10.0.0.{i}", "fabfiles": str(fabfile)}}
             for i in range(50)}
    options = OptionsFile(location=tmp_path / "x.json", facts=BuildoutFacts.of_directory(tmp_path),
                          hosts=hosts)
    out = RecordingOutput(verbosity=QUIET)
    inv = Invocation(options, out, Passwords(out, interactive=False))
    inv.validate(Plan(tuple(options.host_names), ("hello",)))
    assert marker.read_text() == "imported\n"
    registries = {id(inv.registry(h)) for h in options.host_names}
    assert len(registries) == 50  # each host its own registry (plugins may differ)...
    funcs = {inv.registry(h).get("hello").func for h in options.host_names}
    assert len(funcs) == 1  # ...of the same imported function


def test_hosts_side_by_side_share_work_done_once(tmp_path: Path):
    inv, out = invocation(tmp_path, three(), meet_size=3)
    outcomes = inv.run(plan("meet", "release"))
    assert len({o.results[1] for o in outcomes}) == 1  # every host got the one result
    assert [line for line in out.text.splitlines() if "released" in line] == [
        f"[{outcomes[0].results[1]}] out: released"]


# -- events and summary ------------------------------------------------------------------------
def json_records(out: Output) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.stream.getvalue().splitlines()]  # type: ignore[attr-defined]


def test_json_events_one_per_line_with_secrets_masked(tmp_path: Path):
    out = RecordingOutput(verbosity=QUIET, json=True)
    hosts = {"host1": {"password": "s3cr3t!"}, "host2": {"fail": "password s3cr3t! leaked"}}
    inv, _ = invocation(tmp_path, hosts, out=out)
    out.add_secret("s3cr3t!")
    inv.run(Plan(("host1", "host2"), ("check", "hello"), ("s3cr3t!",)))
    assert "s3cr3t!" not in out.text
    records = json_records(out)
    for record in records:
        assert set(record) >= {"host", "command", "event", "time"}
        assert isinstance(record["time"], float)
    by_host = {h: [(r["command"], r["event"], r.get("status")) for r in records
                   if r["host"] == h] for h in ("host1", "host2")}
    assert by_host["host1"] == [("check", "start", None), ("check", "output", None),
                                ("check", "end", "ok"), ("hello", "start", None),
                                ("hello", "output", None), ("hello", "end", "ok"),
                                (None, "finished", "ok")]
    assert by_host["host2"] == [("check", "start", None), ("check", "end", "failed"),
                                (None, "finished", "failed")]
    failed = next(r for r in records if r.get("status") == "failed")
    assert failed["error"] == "'check' exited 1: password **** leaked"
    said = [r["output"] for r in records if r["event"] == "output"]
    assert said == ["checked", "hello from host1 ****"]
    assert all(r["stream"] == "stdout" for r in records if r["event"] == "output")


def test_summary_rows_and_plain_text():
    ok = HostOutcome("web1", ("check", "hello"), seconds=1.234, completed=["check", "hello"])
    from collective.hostout.errors import ConnectError
    bad = HostOutcome("web2", ("check", "hello"), seconds=0.5, failed_command="check",
                      error=ConnectError("cannot reach deploy@10.0.0.2:22:\n  refused",
                                         host="web2"))
    skipped = HostOutcome("web3", ("check", "hello"))
    rows = summary_rows([ok, bad, skipped])
    assert [(r.host, r.commands, r.result, r.error) for r in rows] == [
        ("web1", "check hello", "ok", ""),
        ("web2", "check (0/2 ok)", "FAILED", "cannot reach deploy@10.0.0.2:22: refused"),
        ("web3", "(0/2 ok)", "skipped", ""),
    ]
    assert plain_summary(rows) == [
        "Summary: 3 hosts, 1 ok, 1 FAILED, 1 skipped",
        "host  commands        result   seconds  error",
        "web1  check hello     ok          1.23",
        "web2  check (0/2 ok)  FAILED      0.50  cannot reach deploy@10.0.0.2:22: refused",
        "web3  (0/2 ok)        skipped     0.00",
    ]


# -- the command line --------------------------------------------------------------------------
def run_cli(tmp_path: Path, hosts: dict[str, dict[str, str]],
            *argv: str) -> tuple[int, str, str]:
    options = options_file(tmp_path, hosts)
    options.write()
    out = Output(stream=io.StringIO(), err=io.StringIO())
    code = cli.run(list(argv), options_file=str(options.location), out=out)
    return code, out.stream.getvalue(), out.err.getvalue()  # type: ignore[attr-defined]


def test_cli_summary_and_exit_status(tmp_path: Path):
    code, stdout, stderr = run_cli(tmp_path, three(host2={"fail": "nope"}),
                                   "--serial", "all", "check")
    assert code == 1
    assert stderr == "Error: host2: 'check' exited 1: nope\n"  # printed nothing to show
    (log,) = (tmp_path / "parts" / "hostout" / "logs").glob("*-host1-host2-host3-check.log")
    assert log.parent == tmp_path / "parts" / "hostout" / "logs"
    kept = log.read_text()
    assert re.search(r"^\S+ \[host1\] out: checked$", kept, re.M)  # with a timestamp
    assert "[host2] check: failed" in kept and log.stat().st_mode & 0o777 == 0o600
    summary = stdout.splitlines()[stdout.splitlines().index(
        "Summary: 3 hosts, 2 ok, 1 FAILED"):]
    assert [line.split()[:3] for line in summary[2:]] == [
        ["host1", "check", "ok"], ["host2", "check", "(0/1"], ["host3", "check", "ok"]]


def test_cli_json_prints_events_only(tmp_path: Path):
    code, stdout, stderr = run_cli(tmp_path, three(), "--json", "-v", "all", "hello")
    assert code == 0
    records = [json.loads(line) for line in stdout.splitlines()]
    assert {(r["host"], r["event"]) for r in records} == {
        (h, e) for h in ("host1", "host2", "host3")
        for e in ("start", "output", "end", "finished")}
    assert "Running command 'hello'" in stderr  # narration goes to stderr


def test_cli_one_host_has_no_summary(tmp_path: Path):
    code, stdout, _ = run_cli(tmp_path, three(), "-q", "host1", "hello")
    assert (code, stdout) == (0, "[host1] out: hello from host1\n")


@pytest.mark.parametrize(("argv", "message"), [
    (["--parallel", "0", "all", "hello"], "--parallel 0"),
    (["--parallel", "2", "--serial", "all", "hello"], "not allowed with argument"),
])
def test_cli_bad_parallel(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          argv: list[str], message: str):
    try:
        code, _, stderr = run_cli(tmp_path, three(), *argv)
    except SystemExit as exit_:  # argparse's own usage errors
        code, stderr = exit_.code, capsys.readouterr().err  # type: ignore[assignment]
    assert code == 2
    assert message in stderr


def test_split_argv_knows_parallel_takes_a_value():
    assert cli.split_argv(["--parallel", "4", "--fail-fast", "host1", "run", "-x"]) == (
        ["--parallel", "4", "--fail-fast"], ["host1", "run", "-x"])
    assert cli.split_argv(["--parallel=4", "--json", "all", "hello"]) == (
        ["--parallel=4", "--json"], ["all", "hello"])


def test_live_view_shows_hosts_states_and_errors():
    from rich.console import Console

    from collective.hostout.output.live import LiveView

    console = Console(file=io.StringIO(), force_terminal=True, width=100, height=30)
    view = LiveView(["web1", "web2", "web3"], console, mask=lambda t: t.replace("pw", "**"))
    view.started("web1", "deploy")
    view.started("web2", "deploy")
    view.finished("web2", "failed", "cannot log in with pw")
    console.print(view.render())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "hostout: 1/3 hosts done · 1 running · 1 waiting · 1 failed" in Text.from_ansi(
        text).plain
    plain = Text.from_ansi(text).plain.splitlines()
    assert [line.split()[:2] for line in plain[1:4]] == [
        ["web1", "running"], ["web2", "failed"], ["web3", "waiting"]]
    assert "cannot log in with **" in plain[2]


def test_a_password_equal_to_the_user_name_does_not_hide_the_user(tmp_path: Path):
    out = RecordingOutput(verbosity=QUIET)
    inv, _ = invocation(tmp_path, {"host1": {"user": "vagrant", "password": "vagrant"},
                                   "host2": {"password": "s3cr3t!"}}, out=out)
    inv.run(Plan(("host1", "host2"), ("hello",), ("vagrant", "s3cr3t!")))
    assert "[host1] out: hello from host1 vagrant ****" in out.text
    assert "s3cr3t!" not in out.text


# -- rolling deploys (--batch) ------------------------------------------------------------------
def five(**extra: dict[str, str]) -> dict[str, dict[str, str]]:
    hosts: dict[str, dict[str, str]] = {f"h{i}": {} for i in range(1, 6)}
    hosts.update(extra)
    return hosts


def test_batches_stop_after_the_first_batch_with_a_failed_host(tmp_path: Path):
    inv, out = invocation(tmp_path, five(h3={"fail": "disk full"}))
    outcomes = inv.run(Plan(tuple(five()), ("check",)), batch=2)
    assert [(o.host, o.status) for o in outcomes] == [
        ("h1", "ok"), ("h2", "ok"), ("h3", "failed"), ("h4", "ok"), ("h5", "skipped")]
    assert ("h5", "check", "start") not in out.events  # the third batch never started
    # batches run one after another: the second starts when the first is done
    starts = [host for host, _, what in out.events if what == "start"]
    ends = [host for host, _, what in out.events if what != "start"]
    assert set(starts[:2]) == {"h1", "h2"} and set(ends[:2]) == {"h1", "h2"}


def test_max_failed_lets_the_rollout_go_on(tmp_path: Path):
    inv, _ = invocation(tmp_path, five(h3={"fail": "disk full"}))
    outcomes = inv.run(Plan(tuple(five()), ("check",)), batch=2, max_failed=1)
    assert [o.status for o in outcomes] == ["ok", "ok", "failed", "ok", "ok"]


def test_cli_rollout_summary_lists_the_hosts_and_the_command_to_resume(tmp_path: Path):
    code, stdout, stderr = run_cli(tmp_path, five(h2={"fail": "nope"}), "--batch", "2",
                                   "-q", "all", "check")
    assert code == 1
    assert stdout.splitlines()[-5:] == [
        "Rollout stopped: 1 deployed, 1 failed, 3 not started",
        "  deployed: h1",
        "  failed: h2",
        "  not started: h3 h4 h5",
        "Resume with: bin/hostout --batch 2 -q h2 h3 h4 h5 check",
    ]
    assert "Error: h2: 'check' exited 1: nope" in stderr


@pytest.mark.parametrize(("argv", "message"), [
    (["--batch", "0", "all", "hello"], "--batch 0"),
    (["--max-failed", "1", "all", "hello"], "--max-failed goes with --batch N"),
    (["--batch", "2", "--max-failed", "-1", "all", "hello"], "--max-failed -1"),
    (["--batch", "2", "--serial", "all", "hello"], "not allowed with argument"),
    (["--lock-wait", "-5", "all", "hello"], "--lock-wait -5"),
    (["--dry-run", "all", "hello"], "--dry-run plans a deploy only"),
])
def test_cli_bad_rollout_options(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 argv: list[str], message: str):
    try:
        code, _, stderr = run_cli(tmp_path, three(), *argv)
    except SystemExit as exit_:  # argparse's own usage errors
        code, stderr = exit_.code, capsys.readouterr().err  # type: ignore[assignment]
    assert code == 2
    assert message in stderr


def test_deploy_dry_run_is_the_plan_command():
    assert cli._dry_run(["host1", "deploy", "--dry-run"], False) == (["host1", "deploy"], True)
    assert cli._dry_run(["host1", "run", "--", "deploy", "--dry-run"], False) == (
        ["host1", "run", "--", "deploy", "--dry-run"], False)  # an argument, after --
    assert cli.split_argv(["--batch", "2", "--lock-wait", "30", "all", "deploy"]) == (
        ["--batch", "2", "--lock-wait", "30"], ["all", "deploy"])
