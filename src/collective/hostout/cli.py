"""``bin/hostout [options] [host1 host2...] [all] cmd1 [cmd2...] [arg1 arg2...]``."""

from __future__ import annotations

import argparse
import shlex
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from .config import optionsfile
from .errors import CommandFailed, HostoutError, StaleConfigError, UsageError
from .output import NORMAL, QUIET, VERBOSE, Output
from .output.summary import print_summary, rollout_lines
from .remote.passwords import Passwords
from .runner import MAX_THREADS, Invocation, Plan
from .status import HostOutcome, Status

USAGE = "cmdline is: bin/hostout host1 [host2...] [all] cmd1 [cmd2...] [arg1 arg2...]"

DESCRIPTION = """\
Run hostout commands on the hosts of this buildout (its 'recipe = collective.hostout' parts).
Options go before the first host. Arguments after the commands go to the last command;
'--' ends the commands, so an argument may share a command's name.
Several hosts run side by side (see --parallel, --serial); --batch N rolls a deploy out N
hosts at a time. The exit status is non-zero if any host failed.
Examples: bin/hostout host1 deploy | bin/hostout all run uptime | bin/hostout host1 buildout -N
| bin/hostout host1 deploy --dry-run | bin/hostout --batch 2 all deploy
"""

#: Global options that take a value as the next word.
_VALUED = ("-c", "--options-file", "--parallel", "--batch", "--max-failed", "--lock-wait")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hostout", usage=USAGE.removeprefix("cmdline is: "),
                                description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--options-file", metavar="FILE", type=Path,
                   help="the options file written by bin/buildout (or its buildout directory)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="everything: each remote command and its output")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="only errors, warnings and the summary (and what run/sudo print)")
    many = p.add_argument_group("many hosts")
    order = many.add_mutually_exclusive_group()
    order.add_argument("--parallel", metavar="N", type=int,
                       help=f"run at most N hosts at once (default: all, up to {MAX_THREADS})")
    order.add_argument("--serial", action="store_true", help="run the hosts one after another, "
                       "in the order given")
    order.add_argument("--batch", metavar="N", type=int,
                       help="roll out N hosts at a time, in the order given; stop after the "
                       "first batch with a failed host and print the command that resumes")
    many.add_argument("--max-failed", metavar="N", type=int,
                      help="with --batch: go on while at most N hosts failed (default 0)")
    many.add_argument("--fail-fast", action="store_true",
                      help="once a host fails, start no other host or command")
    many.add_argument("--json", action="store_true",
                      help="print one JSON event per line on stdout (start, output, end)")
    server = p.add_argument_group("the server's lock and plans")
    server.add_argument("--lock-wait", metavar="SECONDS", type=float, default=0.0,
                        help="wait up to SECONDS for a server locked by another deploy, "
                        "rollback, buildout or bootstrap (default: refuse at once)")
    server.add_argument("--dry-run", action="store_true",
                        help="with deploy: print what it would do, change nothing (= plan)")
    return p


def split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Global options are the leading dash tokens (and -c's value); the rest is positional."""
    argv = list(argv)
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        if argv[i] in _VALUED:
            i += 1
        i += 1
    rest = argv[i:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    return argv[:i], rest


def plan_from(words: Sequence[str], inv: Invocation) -> Plan | None:
    """Hosts, then commands, then arguments. None when no command was named."""
    valid = inv.host_names
    hosts: list[str] = []
    i = 0
    while i < len(words) and (words[i] in valid or words[i] == "all"):
        for h in valid if words[i] == "all" else [words[i]]:
            if h not in hosts:
                hosts.append(h)
        i += 1
    if not hosts:
        if i < len(words):
            raise UsageError(f"unknown host {words[i]!r}; valid hosts are: {', '.join(valid)}")
        return None
    commands: list[str] = []
    while i < len(words) and words[i] != "--" and any(words[i] in inv.registry(h)
                                                      for h in hosts):
        commands.append(words[i])
        i += 1
        # After a command that takes parameters, the rest are its arguments, so
        # 'sudo whoami' runs whoami even where a fabfile defines a whoami command.
        registry = next(inv.registry(h) for h in hosts if commands[-1] in inv.registry(h))
        if registry.get(commands[-1]).parameters:
            break
    if i < len(words) and words[i] == "--":
        i += 1
    elif not commands and i < len(words):
        inv.registry(hosts[0]).chain(words[i], hosts[0])  # raises: names the valid ones
    if not commands:
        return Plan(tuple(hosts), ())
    return Plan(tuple(hosts), tuple(commands), tuple(words[i:]))


def _listing(inv: Invocation, plan: Plan | None, out: Output) -> None:
    out.plain([USAGE])
    if plan is None:
        out.plain([f"Valid hosts are: {' '.join(inv.host_names)}"])
        return
    summaries = inv.registry(plan.hosts[0]).summaries()
    width = max(len(name) for name, _ in summaries)
    out.plain(["Valid commands are:"])
    out.plain([f"  {name:<{width}} : {summary}".rstrip() for name, summary in summaries])


def _locate(path: Path | None, default: str | None) -> Path:
    if path is None:
        return Path(default) if default else Path.cwd() / "parts" / optionsfile.RELATIVE_LOCATION
    return path / "parts" / optionsfile.RELATIVE_LOCATION if path.is_dir() else path


def run(argv: Sequence[str], options_file: str | None = None, out: Output | None = None) -> int:
    opts_argv, words = split_argv(argv)
    args = _parser().parse_args(opts_argv)
    verbosity = QUIET if args.quiet else VERBOSE if args.verbose else NORMAL
    out = out or Output(verbosity=verbosity)
    out.verbosity = verbosity
    out.json = out.json or args.json
    inv: Invocation | None = None
    words, dry_run = _dry_run(words, args.dry_run)
    try:
        if args.lock_wait < 0:
            raise UsageError(f"--lock-wait {args.lock_wait:g}: give seconds >= 0")
        if args.max_failed is not None and args.batch is None:
            raise UsageError("--max-failed goes with --batch N")
        options = optionsfile.load(_locate(args.options_file, options_file))
        inv = Invocation(options, out, Passwords(out, ask=out.ask_secret),
                         lock_wait=args.lock_wait)
        plan = plan_from(words, inv)
        if dry_run and plan is not None and plan.commands:
            if plan.commands != ("deploy",) or plan.args:
                raise UsageError("--dry-run plans a deploy only ('bin/hostout HOST deploy "
                                 f"--dry-run'), not {' '.join(plan.commands)}")
            plan = Plan(plan.hosts, ("plan",))
        if plan is None or not plan.commands:
            try:
                options.check_fresh()
            except StaleConfigError as err:
                out.error(f"Warning: {err}")
            _listing(inv, plan, out)
            return 0
        options.check_fresh()
        out.open_log(options.facts.parts_directory / "hostout" / "logs",
                     "-".join([*plan.hosts[:3], *plan.commands]))
        outcomes = inv.run(plan, parallel=1 if args.serial else args.parallel,
                           fail_fast=args.fail_fast, batch=args.batch,
                           max_failed=args.max_failed or 0)
        if len(outcomes) > 1 and not out.json:
            print_summary(out, outcomes)
        if args.batch is not None and any(not o.ok for o in outcomes):
            resume = _resume(opts_argv, words, plan, outcomes)
            for line in rollout_lines(outcomes, resume):
                if out.json:  # stdout is for the JSON events
                    out.error(line)
                else:
                    out.plain([line])
        for outcome in outcomes:
            for warning in outcome.warnings:
                out.error(f"Warning: {outcome.host}: {warning}")
        failed = [o for o in outcomes if o.error is not None]
        for outcome in failed:
            assert outcome.error is not None
            failure = _command_failure(outcome.error)
            if failure is not None and not failure.tail_shown and failure.tail:
                out.failure_tail(outcome.host, failure.tail, shown=False)
                if out.log_path is not None:
                    out.error(f"[{outcome.host}] | (the full log: "
                              f"{_shown_path(out.log_path)})")
            out.error(f"Error: {outcome.error}")
        return max((o.error.exit_code for o in failed if o.error), default=0)
    except HostoutError as err:
        out.error(f"Error: {err}")
        return err.exit_code
    except KeyboardInterrupt:
        out.error("Error: interrupted")
        return 130
    finally:
        if inv is not None:
            inv.close()
        out.close_log()


def _dry_run(words: list[str], flag: bool) -> tuple[list[str], bool]:
    """``deploy --dry-run``: the word after deploy (before any ``--``) is the flag too."""
    end = words.index("--") if "--" in words else len(words)
    for i in range(1, end):
        if words[i] == "--dry-run" and words[i - 1] == "deploy":
            return words[:i] + words[i + 1:], True
    return words, flag


def _program() -> str:
    """How the user called bin/hostout, for a command line to copy."""
    called = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("bin/hostout")
    if called.name != "hostout":
        return "bin/hostout"
    try:
        return str(called.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(called)


def _resume(opts_argv: Sequence[str], words: Sequence[str], plan: Plan,
            outcomes: Sequence[HostOutcome]) -> str:
    """The command that resumes a stopped rollout: the same options and commands, for the
    hosts not deployed (the failed ones first)."""
    rest = ([o.host for o in outcomes if o.status is Status.FAILED]
            + [o.host for o in outcomes if o.status is Status.SKIPPED])
    tail = list(words)
    while tail and (tail[0] in plan.hosts or tail[0] == "all"):
        tail.pop(0)
    return shlex.join([_program(), *opts_argv, *rest, *tail])


def _command_failure(err: BaseException) -> CommandFailed | None:
    """The failed command behind an error, if one is (a step's error wraps it)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, CommandFailed):
            return seen
        seen = seen.__cause__
    return None


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None, options_file: str | None = None) -> None:
    try:
        code = run(sys.argv[1:] if argv is None else argv, options_file)
    except Exception:  # a bug: show everything
        traceback.print_exc()
        code = 70
    sys.exit(code)
