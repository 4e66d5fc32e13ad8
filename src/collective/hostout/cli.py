"""``bin/hostout [options] [host1 host2...] [all] cmd1 [cmd2...] [arg1 arg2...]``."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from .config import optionsfile
from .errors import CommandFailed, HostoutError, StaleConfigError, UsageError
from .output import NORMAL, QUIET, VERBOSE, Output
from .output.summary import print_summary
from .remote.passwords import Passwords
from .runner import MAX_THREADS, Invocation, Plan

USAGE = "cmdline is: bin/hostout host1 [host2...] [all] cmd1 [cmd2...] [arg1 arg2...]"

DESCRIPTION = """\
Run hostout commands on the hosts of this buildout (its 'recipe = collective.hostout' parts).
Options go before the first host. Arguments after the commands go to the last command;
'--' ends the commands, so an argument may share a command's name.
Several hosts run side by side (see --parallel, --serial); the exit status is non-zero
if any host failed.
Examples: bin/hostout host1 deploy | bin/hostout all run uptime | bin/hostout host1 buildout -N
"""

#: Global options that take a value as the next word.
_VALUED = ("-c", "--options-file", "--parallel")


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
    many.add_argument("--fail-fast", action="store_true",
                      help="once a host fails, start no other host or command")
    many.add_argument("--json", action="store_true",
                      help="print one JSON event per line on stdout (start, output, end)")
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
    try:
        options = optionsfile.load(_locate(args.options_file, options_file))
        inv = Invocation(options, out, Passwords(out, ask=out.ask_secret))
        plan = plan_from(words, inv)
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
                           fail_fast=args.fail_fast)
        if len(outcomes) > 1 and not out.json:
            print_summary(out, outcomes)
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
