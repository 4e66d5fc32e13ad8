"""One invocation of bin/hostout: which hosts run which commands, with what, and how it went.

Hosts run side by side, each in its own thread with its own connection, settings and
registry (:class:`Invocation` makes them once per host, in the main thread, before anything
runs). A host runs its commands in order; a failing host stops only itself unless
``fail_fast`` is set, which stops starting hosts and commands once any host failed.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from .commands.context import Context
from .commands.discovery import registry_for
from .commands.registry import Registry
from .config.optionsfile import OptionsFile
from .config.settings import HostSettings
from .errors import HostoutError, UsageError
from .output import Output
from .packaging.packager import Packager
from .remote.base import Remote
from .remote.passwords import Passwords
from .shared import Shared
from .status import HostOutcome

#: Makes the remote of a host: SSH unless an invocation is given another kind.
RemoteFactory = Callable[[HostSettings], Remote]

#: How many hosts run at once when ``--parallel`` is not given.
MAX_THREADS = 32


@dataclass(frozen=True)
class Plan:
    """``hostout host1 host2 cmd1 cmd2 arg1 arg2``: the last command gets the arguments."""

    hosts: tuple[str, ...]
    commands: tuple[str, ...]
    args: tuple[str, ...] = ()

    def arguments_for(self, index: int) -> tuple[str, ...]:
        return self.args if index == len(self.commands) - 1 else ()


def thread_count(hosts: int, parallel: int | None) -> int:
    """Threads for ``hosts`` hosts: ``parallel`` if given, else all of them up to the cap."""
    if parallel is None:
        return min(hosts, MAX_THREADS)
    if parallel < 1:
        raise UsageError(f"--parallel {parallel}: give a number of hosts >= 1")
    return min(hosts, parallel)


class Invocation:
    """Settings, registries and connections of one bin/hostout run, made once per host."""

    def __init__(self, options: OptionsFile, out: Output, passwords: Passwords, *,
                 remote_factory: RemoteFactory | None = None,
                 packager: Packager | None = None) -> None:
        self.options = options
        self.out = out
        self.passwords = passwords
        self._contexts: dict[str, Context] = {}
        self._lock = threading.Lock()
        self._shared = Shared()  # work a command does once for all hosts (e.g. a release)
        self._packager = packager or Packager(options.facts, self._shared)
        self._remote_factory = remote_factory or self._ssh_factory()

    def _ssh_factory(self) -> RemoteFactory:
        from .remote.ssh import KnownHosts, SshRemote  # Fabric is imported only here

        known_hosts = KnownHosts()  # each known_hosts file read once, not per host
        return lambda settings: SshRemote(settings, self.out, self.passwords, known_hosts)

    @property
    def host_names(self) -> list[str]:
        return self.options.host_names

    @cached_property
    def _settings(self) -> dict[str, HostSettings]:
        return {name: self.options.settings(name) for name in self.options.host_names}

    def settings(self, host: str) -> HostSettings:
        if host not in self._settings:
            raise UsageError(f"unknown host {host!r}; valid hosts are: "
                             f"{', '.join(self.host_names)}")
        return self._settings[host]

    def registry(self, host: str) -> Registry:
        return self.context(host).registry

    def context(self, host: str) -> Context:
        with self._lock:
            ctx = self._contexts.get(host)
            if ctx is None:
                settings = self.settings(host)
                self.out.add_secret(settings.password)
                self.out.add_public(settings.name, settings.hostname, settings.user,
                                    settings.buildout_user, settings.effective_user,
                                    settings.buildout_group)
                ctx = Context(settings, self._remote_factory(settings), registry_for(settings),
                              self.out, self.options.facts, packager=self._packager,
                              shared=self._shared, remote_factory=self._remote_factory,
                              peers=self, reload=lambda: self._reload(host))
                self._contexts[host] = ctx
        return ctx

    def _reload(self, host: str) -> tuple[HostSettings, Remote]:
        """The host's settings read afresh (with what a command recorded), and a remote for
        them: ``Context.reload``."""
        settings = self.options.settings(host)
        self.out.add_secret(settings.password)
        self.out.add_public(settings.name, settings.hostname, settings.user,
                            settings.buildout_user, settings.effective_user,
                            settings.buildout_group)
        with self._lock:
            self._settings[host] = settings
        return settings, self._remote_factory(settings)

    def validate(self, plan: Plan) -> None:
        """Every host knows every command, and the arguments fit, before anything runs."""
        for host in plan.hosts:
            registry = self.registry(host)
            for index, name in enumerate(plan.commands):
                registry.get(name, host).check_arguments(plan.arguments_for(index), {}, host)

    def run_host(self, host: str, plan: Plan, stop: threading.Event | None = None, *,
                 stop_on_failure: bool = True) -> HostOutcome:
        """The plan's commands on one host, in order, until one fails.

        ``stop`` is shared by hosts that stop together: no command starts once it is set,
        and with ``stop_on_failure`` (``--fail-fast``) a failure here sets it.
        """
        ctx = self.context(host)
        outcome = HostOutcome(host, plan.commands)
        start = time.monotonic()
        ctx.lock.acquire()  # another host's command may call this host's (hostouts)
        try:
            for index, name in enumerate(plan.commands):
                if stop is not None and stop.is_set():
                    break
                self.out.command_started(host, name)
                began = time.monotonic()
                try:
                    outcome.results.append(ctx.call(name, *plan.arguments_for(index)))
                except Exception as err:
                    outcome.error = self._host_error(host, name, err)
                    outcome.failed_command = name
                    if stop is not None and stop_on_failure:
                        stop.set()
                    self.out.command_ended(host, name, error=outcome.error_line,
                                           seconds=time.monotonic() - began)
                    break
                self.out.command_ended(host, name, seconds=time.monotonic() - began)
                outcome.completed.append(name)
        finally:
            ctx.lock.release()
            outcome.seconds = time.monotonic() - start
            outcome.warnings = list(ctx.warnings)
        return outcome

    def _host_error(self, host: str, command: str, err: Exception) -> HostoutError:
        if isinstance(err, HostoutError):
            if err.host is None:
                err.host = host
            return err
        # Not hostout's own error: a fabfile's bug, most likely. Show where, keep going.
        for line in "".join(traceback.format_exception(err)).rstrip().splitlines():
            self.out.error(f"[{host}] {line}")
        return HostoutError(f"command {command} raised {type(err).__name__}: {err}",
                            host=host, cause=err)

    def run(self, plan: Plan, *, parallel: int | None = None,
            fail_fast: bool = False) -> list[HostOutcome]:
        """Every host of the plan, ``parallel`` at a time (default: all, up to MAX_THREADS),
        taken in the plan's order; outcomes come back in that order."""
        self.validate(plan)
        outcomes = {host: HostOutcome(host, plan.commands) for host in plan.hosts}
        waiting = deque(plan.hosts)
        stop = threading.Event()
        lock = threading.Lock()
        go = threading.Event()

        def worker() -> None:
            go.wait()
            while True:
                with lock:
                    if not waiting:
                        return
                    host = waiting.popleft()
                if not stop.is_set():
                    try:
                        outcomes[host] = self.run_host(host, plan, stop,
                                                       stop_on_failure=fail_fast)
                    except Exception as err:  # e.g. stdout closed under us: still a result
                        outcomes[host].error = self._host_error(host, "(output)", err)
                    finally:
                        # Done with this host: hang up now, side by side with the others.
                        with contextlib.suppress(Exception):
                            self.context(host).close()
                with contextlib.suppress(Exception):
                    self.out.host_finished(host, outcomes[host].status,
                                           outcomes[host].error_line,
                                           outcomes[host].warnings)

        threads = [threading.Thread(target=worker, name=f"hostout-{i}", daemon=True)
                   for i in range(thread_count(len(plan.hosts), parallel))]
        with self.out.progress(plan.hosts):
            # Start every thread before any connects: Thread.start() waits for the new
            # thread to run, which takes long once others are busy with SSH handshakes.
            for thread in threads:
                thread.start()
            go.set()
            try:
                for thread in threads:
                    thread.join()
            except KeyboardInterrupt:
                stop.set()  # no new host, no next command; the caller hangs up
                raise
        return [outcomes[host] for host in plan.hosts]

    def close(self) -> None:
        with self._lock:
            contexts = list(self._contexts.values())
        for ctx in contexts:
            ctx.close()
