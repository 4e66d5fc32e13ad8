"""The context every command gets: its host's settings, its remote, the other commands."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar

from ..config.facts import BuildoutFacts
from ..config.settings import HostSettings, own_option
from ..errors import CommandFailed, ConfigError, HostoutError, NotBootstrapped, UsageError
from ..output import VERBOSE, Output
from ..packaging.packager import Packager
from ..remote.base import Remote, Result
from ..shared import Shared
from ..shell import Account, RemoteCommand, q
from .registry import Command, Registry

T = TypeVar("T")

#: The context of the seed-style command running in this thread (see collective.hostout.api).
current: contextvars.ContextVar[Context] = contextvars.ContextVar("hostout_context")

#: A command of this name, in any fabfile or plugin, runs before every command called by
#: name (hostout 1's hook: plugins used it to choose the host or login first).
INIT_HOOK = "initcommand"


class Peers(Protocol):
    """The other hosts of the invocation (the runner's :class:`Invocation`)."""

    @property
    def host_names(self) -> list[str]: ...

    def context(self, host: str) -> Context: ...


class _Overlay(Mapping[str, str]):
    """Read-only: options set by commands over the part's own."""

    def __init__(self, written: Mapping[str, str], raw: Mapping[str, str]) -> None:
        self._written, self._raw = written, raw

    def __getitem__(self, key: str) -> str:
        return self._written[key] if key in self._written else self._raw[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._written
        yield from (k for k in self._raw if k not in self._written)

    def __len__(self) -> int:
        return len(set(self._written) | set(self._raw))


@dataclass(frozen=True)
class _Frame:
    name: str
    index: int  # position in the command's chain
    cwd_depth: int = 0  # c.cd() blocks open when the command started
    lcwd_depth: int = 0


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
    ``peers`` are the other hosts of the invocation (:meth:`peer`).
    """

    def __init__(self, settings: HostSettings, remote: Remote, registry: Registry,
                 out: Output, facts: BuildoutFacts, *, packager: Packager | None = None,
                 shared: Shared | None = None,
                 remote_factory: Callable[[HostSettings], Remote] | None = None,
                 peers: Peers | None = None,
                 reload: Callable[[], tuple[HostSettings, Remote]] | None = None) -> None:
        self.settings = settings
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
        self._written: dict[str, str] = {}  # options set by commands (set_option)
        self._remote_factory = remote_factory
        self._peers = peers
        self._in_hook = False
        #: Held by the thread running this host's commands (the runner's, or another
        #: host's command calling this one's: see :meth:`peer`).
        self.lock = threading.RLock()
        self._reload = reload

    # -- facts -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def options(self) -> Mapping[str, str]:
        """The part's raw options, and over them those a command set (:meth:`set_option`)."""
        if not self._written:
            return self.settings.options
        return _Overlay(self._written, self.settings.options)

    def set_option(self, name: str, value: Any) -> None:
        """Set a plugin's option for the later commands of this invocation on this host.

        hostout's own options (``OWN_OPTIONS``: path, users, python-version...) were
        validated by bin/buildout and cannot change while commands run: a ConfigError
        says where to set them instead."""
        if own_option(name):
            current_value = self.settings.options.get(name)
            if current_value is not None and current_value == value:
                return  # writing back what is there changes nothing
            raise ConfigError(
                f"option {name} is hostout's own and cannot change while a command runs; "
                f"set it in the part [{self.name}] of the buildout (or in a plugin recipe's "
                "options.setdefault) and run bin/buildout",
                host=self.name)
        self._written[name] = value

    def retarget(self, **changes: Any) -> None:
        """Log in elsewhere for the rest of this invocation: ``hostname``, ``port``,
        ``user``, ``password`` or ``identity_file`` replaced (hostout 1 plugins set
        ``env.hosts`` or ``env.user`` for this). The open connections are closed; the next
        command connects anew, host keys checked as always."""
        unknown = set(changes) - {"hostname", "port", "user", "password", "identity_file"}
        if unknown:
            raise TypeError(f"retarget() cannot change {', '.join(sorted(unknown))}")
        settings = dataclasses.replace(self.settings, **changes)
        if settings == self.settings:
            return
        if self._remote_factory is None:
            raise HostoutError(f"this host's {type(self.remote).__name__} cannot log in "
                               "elsewhere (no remote factory)", host=self.name)
        self.out.add_secret(settings.password)
        self.out.add_public(settings.hostname, settings.user)
        self.remote.close()
        self.settings = settings
        self.remote = self._remote_factory(settings)

    def peer(self, name: str) -> Context:
        """The context of another host part of this buildout (hostout 1's ``hostouts``).
        Run its commands while holding its ``lock`` (see ``collective.hostout.api``)."""
        if name == self.name:
            return self
        if self._peers is None or name not in self._peers.host_names:
            known = ", ".join(self._peers.host_names) if self._peers else self.name
            raise UsageError(f"unknown host {name!r}; valid hosts are: {known}",
                             host=self.name)
        return self._peers.context(name)

    @property
    def peer_names(self) -> list[str]:
        return list(self._peers.host_names) if self._peers else [self.name]

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

    def reload(self) -> None:
        """Read this host's settings again and connect afresh with them: after a command
        recorded where the host now is (:mod:`collective.hostout.config.records`), e.g. the
        VM hostout.cloud created, so the next commands of this run go there."""
        if self._reload is None:
            raise HostoutError("this context cannot reload its settings", host=self.name)
        settings, remote = self._reload()
        self.remote.close()
        self.settings, self.remote = settings, remote

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
        return RemoteCommand(command, cwd=self.cwd, **kwargs)

    def run(self, command: str | RemoteCommand, *, warn: bool = False,
            hide: bool = False, account: Account = Account.LOGIN) -> Result:
        """Run a shell command as the login user, or ``account`` (in the directory of
        ``c.cd()``, if any)."""
        return self.remote.execute(self._command(command, account=account), warn=warn,
                                   hide=hide)

    def sudo(self, command: str | RemoteCommand, *, user: str | None = None,
             warn: bool = False, hide: bool = False) -> Result:
        """Run a shell command as root (or ``user``) through the login user's sudo."""
        cmd = self._command(command, sudo=True, sudo_user=user)
        return self.remote.execute(cmd, warn=warn, hide=hide)

    def buildout_run(self, command: str, *, warn: bool = False, hide: bool = False,
                     network: bool = False) -> Result:
        """Run a shell command as the buildout user inside the buildout's ``path``
        (``network``: it downloads, so with ``tunnel = true`` it gets the tunnel's proxy)."""
        self.require_path()
        cmd = RemoteCommand(command, cwd=str(self.path), account=Account.BUILDOUT,
                            network=network)
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
        cwd = self.lcwd
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
        base = PurePosixPath(self.cwd) if self.cwd else None
        target = str(base / str(path)) if base is not None else str(path)
        self._cwd.append(target)
        try:
            yield
        finally:
            self._cwd.pop()

    @property
    def lcwd(self) -> str:
        """The local directory of ``c.local()``: ``c.lcd()``'s, else the buildout's."""
        base = str(self.settings.buildout_directory)
        return str(Path(base) / self._lcwd[-1]) if self._lcwd and self._lcwd[-1] else base

    @property
    def cwd(self) -> str | None:
        """The remote directory of ``c.cd()`` (or ``set_cwd``), None when there is none."""
        return (self._cwd[-1] or None) if self._cwd else None

    def set_cwd(self, path: str | None, *, local: bool = False) -> None:
        """The directory of the following remote (``local``: local) commands, until the
        innermost ``cd`` block, or the running command, ends: Fabric 1's ``env.cwd``.
        None or '' means none."""
        stack, depth = ((self._lcwd, self._frames[-1].lcwd_depth if self._frames else 0)
                        if local else
                        (self._cwd, self._frames[-1].cwd_depth if self._frames else 0))
        if len(stack) > depth:
            stack[-1] = str(path or "")
        else:
            stack.append(str(path or ""))

    @contextmanager
    def lcd(self, path: str | Path) -> Iterator[None]:
        self._lcwd.append(str(Path(self.lcwd) / path))
        try:
            yield
        finally:
            self._lcwd.pop()

    # -- commands calling commands -----------------------------------------------------------
    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run the newest definition of command ``name`` and return what it returns.

        Every definition of ``initcommand`` (plugins' and fabfiles') runs first, with the
        name, as in hostout 1."""
        chain = self.registry.chain(name, self.name)
        if name != INIT_HOOK and INIT_HOOK in self.registry and not self._in_hook:
            self._init_hooks(name)
        return self._invoke(chain[-1], len(chain) - 1, args, kwargs)

    def _init_hooks(self, name: str) -> None:
        self._in_hook = True
        token = current.set(self)
        try:
            for hook in self.registry.chain(INIT_HOOK, self.name):
                if hook.native:
                    hook.func(self, name)
                else:
                    hook.func(name)
        finally:
            current.reset(token)
            self._in_hook = False

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
            frame = _Frame(cmd.name, index, len(self._cwd), len(self._lcwd))
            self._frames.append(frame)
            token = current.set(self)
            try:
                if cmd.native:
                    return cmd.func(self, *args, **kwargs)
                return cmd.func(*args, **kwargs)
            finally:
                del self._cwd[frame.cwd_depth:]  # a command's directory ends with it
                del self._lcwd[frame.lcwd_depth:]
                current.reset(token)
                self._frames.pop()

    def quote(self, value: object) -> str:
        return q(value)
