"""The context every command gets: its host's settings, its remote, the other commands."""

from __future__ import annotations

import contextlib
import contextvars
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from ..config.facts import BuildoutFacts
from ..config.settings import HostSettings
from ..errors import CommandFailed, HostoutError, NotBootstrapped, UsageError
from ..output import VERBOSE, Output
from ..packaging.packager import Packager
from ..remote.base import Remote, Result
from ..shared import Shared
from ..shell import Account, RemoteCommand, q
from .registry import Command, Registry

T = TypeVar("T")

#: The context of the seed-style command running in this thread (see collective.hostout.api).
current: contextvars.ContextVar[Context] = contextvars.ContextVar("hostout_context")


@dataclass(frozen=True)
class _Frame:
    name: str
    index: int  # position in the command's chain


class Commands:
    """``c.commands.deploy()``: every command of the host, as callables."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._ctx.registry:
            raise AttributeError(f"no command {name!r} for host {self._ctx.name}")
        return lambda *args, **kwargs: self._ctx.call(name, *args, **kwargs)

    def __contains__(self, name: str) -> bool:
        return name in self._ctx.registry

    def __dir__(self) -> list[str]:
        return self._ctx.registry.names()


class Context:
    """What a command knows and can do. One per host per invocation.

    ``settings`` are the host part's typed options (``options`` the raw ones, for plugins),
    ``facts`` what bin/buildout resolved about the local buildout, ``remote`` the host.
    ``packager`` releases develop packages and finds distributions once for all hosts;
    ``shared`` is for a plugin's own once-for-all work (``c.shared.once(key, make)``).
    ``peers`` gives the settings of the buildout's other host parts by name.
    """

    def __init__(self, settings: HostSettings, remote: Remote, registry: Registry,
                 out: Output, facts: BuildoutFacts, *, packager: Packager | None = None,
                 shared: Shared | None = None,
                 peers: Callable[[str], HostSettings] | None = None) -> None:
        self.settings = settings
        self._peers = peers
        self._closers: list[Callable[[], None]] = []
        self.facts = facts
        self.shared = shared or Shared()
        self.packager = packager or Packager(facts, self.shared)
        self.remote = remote
        self.registry = registry
        self.out = out
        self.commands = Commands(self)
        self.env: dict[str, Any] = {}  # seed-style fabfiles' env overrides, per host
        self.warnings: list[str] = []  # warnings of this run, for the summary
        self._states: dict[type, Any] = {}
        self._frames: list[_Frame] = []
        self._cwd: list[str] = []
        self._lcwd: list[str] = []

    # -- facts -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def options(self) -> Mapping[str, str]:
        return self.settings.options

    @property
    def path(self) -> PurePosixPath:
        return self.settings.path

    @property
    def connection(self) -> Any:
        """The Fabric connection of the login user, opened on first use (SSH hosts only;
        hostout's own steps use ``remote``, which containers and tests also provide)."""
        connection = getattr(self.remote, "connection", None)
        if connection is None:
            raise HostoutError(f"{type(self.remote).__name__} has no SSH connection",
                               host=self.name)
        return connection(Account.LOGIN)

    def peer(self, name: str) -> HostSettings:
        """The settings of another host part of this buildout (a part this one links to,
        say); a UsageError naming the part when there is none."""
        if name == self.name:
            return self.settings
        if self._peers is None:
            raise UsageError(f"no host part {name!r} known here", host=self.name)
        return self._peers(name)

    def on_close(self, close: Callable[[], None]) -> None:
        """Call ``close`` when the invocation hangs up on this host: after its commands, or
        when it is interrupted (Ctrl-C), from another thread (a container to remove, say)."""
        self._closers.append(close)

    def close(self) -> None:
        """What ``on_close`` registered, newest first, then the remote; errors ignored."""
        while self._closers:
            with contextlib.suppress(Exception):
                self._closers.pop()()
        self.remote.close()

    def state(self, kind: type[T]) -> T:
        """This host's instance of a typed state, made with ``kind()`` on first use: what one
        step learns for the next (``c.state(DeployState).target``)."""
        found = self._states.get(kind)
        if found is None:
            found = self._states[kind] = kind()
        return found

    def report(self, text: str) -> None:
        """One line for people saying what the running command did (``1 of 12 dists
        changed, 14 KB``), shown as ``[host] command: text``. Say nothing when nothing
        changed: a command without news prints nothing by default."""
        self.out.report(self.name, self._frames[-1].name if self._frames else "", text)

    def warn(self, text: str) -> None:
        """A warning: printed now, and listed again in the summary of the run."""
        self.warnings.append(text)
        self.out.line(None, f"Warning: {self.name}: {text}", level=VERBOSE)

    # -- running things ----------------------------------------------------------------------
    def _command(self, command: str | RemoteCommand, **kwargs: Any) -> RemoteCommand:
        if isinstance(command, RemoteCommand):
            return command
        cwd = self._cwd[-1] if self._cwd else None
        return RemoteCommand(command, cwd=cwd, **kwargs)

    def run(self, command: str | RemoteCommand, *, warn: bool = False,
            hide: bool = False) -> Result:
        """Run a shell command as the login user (in the directory of ``c.cd()``, if any)."""
        return self.remote.execute(self._command(command), warn=warn, hide=hide)

    def sudo(self, command: str | RemoteCommand, *, user: str | None = None,
             warn: bool = False, hide: bool = False) -> Result:
        """Run a shell command as root (or ``user``) through the login user's sudo."""
        cmd = self._command(command, sudo=True, sudo_user=user)
        return self.remote.execute(cmd, warn=warn, hide=hide)

    def buildout_run(self, command: str, *, warn: bool = False, hide: bool = False) -> Result:
        """Run a shell command as the buildout user inside the buildout's ``path``."""
        self.require_path()
        cmd = RemoteCommand(command, cwd=str(self.path), account=Account.BUILDOUT)
        return self.remote.execute(cmd, warn=warn, hide=hide)

    def require_path(self) -> None:
        """NotBootstrapped unless the buildout directory exists on the host."""
        probe = RemoteCommand.argv(["test", "-d", str(self.path)], account=Account.BUILDOUT)
        if not self.remote.execute(probe, warn=True, hide=True, echo=False).ok:
            raise NotBootstrapped(
                f"{self.path} does not exist yet: the host is not bootstrapped; run "
                f"'bin/hostout {self.name} deploy' (or bootstrap) first",
                host=self.name,
            )

    def put(self, local: str | Path, remote: str | PurePosixPath, *,
            mode: int | None = None) -> None:
        self.remote.put(local, remote, mode=mode)

    def get(self, remote: str | PurePosixPath, local: str | Path) -> None:
        self.remote.get(remote, local)

    def local(self, command: str, *, warn: bool = False,
              capture: bool = False) -> subprocess.CompletedProcess[str]:
        """Run a shell command on this machine, in the buildout directory (or ``c.lcd()``).

        Its output goes through hostout's output like a remote command's (host-prefixed
        lines, --json events), unless ``capture``.
        """
        cwd = self._lcwd[-1] if self._lcwd else str(self.settings.buildout_directory)
        self.out.line(self.name, f"local: {command}")
        with subprocess.Popen(command, shell=True, cwd=cwd, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            out, err = proc.communicate()
        if not capture:
            for line in out.splitlines():
                self.out.output(self.name, line)
            for line in err.splitlines():
                self.out.output(self.name, line, stderr=True)
        result = subprocess.CompletedProcess(command, proc.returncode, out, err)
        if proc.returncode and not warn:
            raise CommandFailed(f"local command '{command}' exited {proc.returncode}",
                                host=self.name, exit_status=proc.returncode, stderr=err)
        return result

    @contextmanager
    def cd(self, path: str | PurePosixPath) -> Iterator[None]:
        """Remote commands in this block run in ``path`` (relative to an outer cd)."""
        base = PurePosixPath(self._cwd[-1]) if self._cwd else None
        target = str(base / str(path)) if base is not None else str(path)
        self._cwd.append(target)
        try:
            yield
        finally:
            self._cwd.pop()

    @contextmanager
    def lcd(self, path: str | Path) -> Iterator[None]:
        base = Path(self._lcwd[-1]) if self._lcwd else self.settings.buildout_directory
        self._lcwd.append(str(base / path))
        try:
            yield
        finally:
            self._lcwd.pop()

    # -- commands calling commands -----------------------------------------------------------
    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run the newest definition of command ``name`` and return what it returns."""
        chain = self.registry.chain(name, self.name)
        return self._invoke(chain[-1], len(chain) - 1, args, kwargs)

    def super(self, *args: Any, **kwargs: Any) -> Any:
        """Run the definition the running command overrides (hostout 1's superfun)."""
        if not self._frames:
            raise HostoutError("super() called outside a command", host=self.name)
        frame = self._frames[-1]
        if frame.index == 0:
            raise HostoutError(f"command {frame.name} overrides nothing", host=self.name)
        chain = self.registry.chain(frame.name, self.name)
        return self._invoke(chain[frame.index - 1], frame.index - 1, args, kwargs)

    def _invoke(self, cmd: Command, index: int, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        cmd.check_arguments(args, kwargs, self.name)
        with self.out.step(self.name, cmd.name, quiet=cmd.quiet):
            self.out.info(f"Running command '{cmd.name}' from '{cmd.origin}'", host=self.name)
            self._frames.append(_Frame(cmd.name, index))
            token = current.set(self)
            try:
                if cmd.native:
                    return cmd.func(self, *args, **kwargs)
                return cmd.func(*args, **kwargs)
            finally:
                current.reset(token)
                self._frames.pop()

    def quote(self, value: object) -> str:
        return q(value)
