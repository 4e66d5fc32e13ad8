"""One invocation of bin/hostout: which hosts run which commands, with what, and how it went."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

from .commands.context import Context
from .commands.discovery import registry_for
from .commands.registry import Registry
from .config.optionsfile import OptionsFile
from .config.settings import HostSettings
from .errors import HostoutError, UsageError
from .output import Output
from .remote.connection import Passwords, Remote


@dataclass(frozen=True)
class Plan:
    """``hostout host1 host2 cmd1 cmd2 arg1 arg2``: the last command gets the arguments."""

    hosts: tuple[str, ...]
    commands: tuple[str, ...]
    args: tuple[str, ...] = ()

    def arguments_for(self, index: int) -> tuple[str, ...]:
        return self.args if index == len(self.commands) - 1 else ()


@dataclass
class HostOutcome:
    host: str
    commands: tuple[str, ...]
    error: HostoutError | None = None
    seconds: float = 0.0
    results: list[object] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


class Invocation:
    """Settings, registries and connections of one bin/hostout run, made once per host."""

    def __init__(self, options: OptionsFile, out: Output, passwords: Passwords) -> None:
        self.options = options
        self.out = out
        self.passwords = passwords
        self._contexts: dict[str, Context] = {}

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
        ctx = self._contexts.get(host)
        if ctx is None:
            settings = self.settings(host)
            self.out.add_secret(settings.password)
            ctx = Context(settings, Remote(settings, self.out, self.passwords),
                          registry_for(settings), self.out)
            self._contexts[host] = ctx
        return ctx

    def validate(self, plan: Plan) -> None:
        """Every host knows every command, and the arguments fit, before anything runs."""
        for host in plan.hosts:
            registry = self.registry(host)
            for index, name in enumerate(plan.commands):
                registry.get(name, host).check_arguments(plan.arguments_for(index), {}, host)

    def run_host(self, host: str, plan: Plan) -> HostOutcome:
        ctx = self.context(host)
        outcome = HostOutcome(host, plan.commands)
        start = time.monotonic()
        try:
            for index, name in enumerate(plan.commands):
                outcome.results.append(ctx.call(name, *plan.arguments_for(index)))
        except HostoutError as err:
            if err.host is None:
                err.host = host
            outcome.error = err
        finally:
            outcome.seconds = time.monotonic() - start
        return outcome

    def run(self, plan: Plan) -> list[HostOutcome]:
        self.validate(plan)
        outcomes: list[HostOutcome] = []
        for host in plan.hosts:
            outcome = self.run_host(host, plan)
            outcomes.append(outcome)
            if not outcome.ok:
                break
        return outcomes

    def close(self) -> None:
        for ctx in self._contexts.values():
            ctx.remote.close()
