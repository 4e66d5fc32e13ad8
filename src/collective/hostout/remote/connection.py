"""SSH to one host through Fabric: the only module that drives fabric and paramiko.

A :class:`Remote` holds at most one Fabric ``Connection`` per account (the login ``user`` and,
when it differs, the ``buildout-user``), opened on first use and reused by every command of
the invocation.
"""

from __future__ import annotations

import contextlib
import getpass
import re
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import fabric
import paramiko
from invoke.exceptions import Failure, ResponseNotAccepted, ThreadException
from invoke.watchers import FailingResponder

from ..config.settings import HostSettings
from ..errors import AuthError, CommandFailed, ConnectError, HostKeyError, NotBootstrapped
from ..output import Output
from ..shell import SUDO_PROMPT, Login, RemoteCommand
from . import hostkeys


@dataclass(frozen=True)
class Result:
    """What a remote command left behind."""

    command: RemoteCommand
    stdout: str
    stderr: str
    exited: int

    @property
    def ok(self) -> bool:
        return self.exited == 0


class Passwords:
    """Login users' passwords: the host's configured one, else asked once per user per
    invocation (on a terminal only) and used for every host that user logs in to."""

    def __init__(self, out: Output, *, interactive: bool | None = None,
                 ask: Callable[[str], str] = getpass.getpass) -> None:
        self.out = out
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self._ask = ask
        self._known: dict[str, str] = {}  # login user -> the password given for it
        self._lock = threading.Lock()

    def configured(self, settings: HostSettings, user: str | None = None) -> str | None:
        if settings.password:
            self.out.add_secret(settings.password)
            return str(settings.password)
        return self._known.get(user or settings.user or "")

    def get(self, settings: HostSettings, user: str) -> str:
        known = self.configured(settings, user)
        if known is not None:
            return known
        if not self.interactive:
            raise AuthError(
                f"a password is needed for {user}@{settings.hoststring}: set the password "
                "option or run bin/hostout from a terminal",
                host=settings.name,
            )
        with self._lock:  # one prompt at a time, even with hosts running side by side
            if user not in self._known:
                answer = self._ask(f"Password for {user} (on {settings.name} and any other "
                                   "host without a password option): ")
                self._known[user] = answer
                self.out.add_secret(answer)
        return self._known[user]


class _SudoPassword(FailingResponder):
    """Answers hostout's own sudo prompt, asking for the password only when sudo asks."""

    def __init__(self, password: Callable[[], str]) -> None:
        super().__init__(re.escape(SUDO_PROMPT), "", "Sorry, try again.")
        self._password = password

    def submit(self, stream: str) -> Iterator[str]:
        for _ in self.pattern_matches(stream, self.pattern, "index"):
            if self.tried:  # sudo asked again: the password was refused
                raise ResponseNotAccepted("sudo refused the password")
            self.tried = True
            yield self._password() + "\n"


def _reachability_error(err: BaseException) -> bool:
    # refused, timed out, unknown name, NoValidConnectionsError: all OSErrors; EOFError is
    # a server that hangs up during the handshake
    return isinstance(err, (OSError, EOFError))


class Remote:
    """One host's SSH side for one invocation."""

    def __init__(self, settings: HostSettings, out: Output, passwords: Passwords,
                 known_hosts: hostkeys.KnownHosts | None = None) -> None:
        self.settings = settings
        self.out = out
        self.passwords = passwords
        self.known_hosts = known_hosts or hostkeys.KnownHosts()  # shared by an invocation
        self._connections: dict[Login, fabric.Connection] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.settings.name

    # -- connecting ----------------------------------------------------------------------
    def _fabric_config(self) -> fabric.Config:
        if self.settings.ssh_config is not None:
            return fabric.Config(runtime_ssh_path=str(self.settings.ssh_config))
        return fabric.Config()

    def _user_for(self, via: Login) -> str | None:
        if via is Login.BUILDOUT and self.settings.buildout_user != self.settings.user:
            return self.settings.buildout_user
        return self.settings.user

    def _key(self) -> list[str]:
        key = self.settings.identity_file
        return [str(key)] if key.is_file() else []

    def connection(self, via: Login = Login.LOGIN) -> fabric.Connection:
        """The open connection for ``via``, made on first use."""
        if via is Login.BUILDOUT and self._user_for(via) == self.settings.user:
            via = Login.LOGIN
        with self._lock:
            conn = self._connections.get(via)
            if conn is None:
                conn = self._open(via)
                self._connections[via] = conn
        return conn

    def _make(self, via: Login, password: str | None) -> fabric.Connection:
        kwargs: dict[str, object] = {}
        if self._key():
            kwargs["key_filename"] = self._key()
        if via is Login.BUILDOUT:  # key only: a normal deploy needs no password
            kwargs["look_for_keys"] = False
            kwargs["allow_agent"] = False
        elif password is not None:
            kwargs["password"] = password
        conn = fabric.Connection(
            host=self.settings.hostname,
            user=self._user_for(via),
            port=self.settings.port,
            config=self._fabric_config(),
            connect_timeout=max(1, int(self.settings.connect_timeout)),
            connect_kwargs=kwargs,
        )
        client = conn.client
        self.known_hosts.install(client, self.settings.known_hosts, conn.host, conn.port)
        if self.settings.host_key_checking == "yes":
            client.set_missing_host_key_policy(hostkeys.Strict())
        else:
            client.set_missing_host_key_policy(hostkeys.AcceptNew(self.settings.known_hosts))
        return conn

    def _open(self, via: Login) -> fabric.Connection:
        password = (None if via is Login.BUILDOUT
                    else self.passwords.configured(self.settings, self._user_for(via)))
        conn = self._make(via, password)
        try:
            self._connect(conn, via)
        except paramiko.AuthenticationException:
            if via is Login.BUILDOUT or password is not None or not self.passwords.interactive:
                raise self._auth_error(conn, via, password) from None
            password = self.passwords.get(self.settings, conn.user)
            conn = self._make(via, password)
            try:
                self._connect(conn, via)
            except paramiko.AuthenticationException:
                raise self._auth_error(conn, via, password) from None
        return conn

    def _connect(self, conn: fabric.Connection, via: Login) -> None:
        where = f"{conn.user}@{self.settings.hoststring}"
        try:
            conn.open()
        except paramiko.AuthenticationException:
            conn.close()
            raise
        except paramiko.BadHostKeyException as err:
            conn.close()
            entry = hostkeys.entry_name(conn.host, conn.port)
            raise HostKeyError(
                f"the host key of {entry} has CHANGED (now {err.key.get_name()} "
                f"{err.key.fingerprint}); refusing to connect. If the server was "
                f"rebuilt on purpose: ssh-keygen -R '{entry}' -f {self.settings.known_hosts}",
                host=self.name,
                cause=err,
            ) from None
        except paramiko.SSHException as err:
            conn.close()
            if "No authentication methods" in str(err):
                raise paramiko.AuthenticationException(str(err)) from None
            if "known_hosts" in str(err):
                raise HostKeyError(
                    f"{err}; with host-key-checking = yes, add it to "
                    f"{self.settings.known_hosts} first",
                    host=self.name,
                    cause=err,
                ) from None
            raise ConnectError(f"cannot connect to {where}: {err}", host=self.name,
                               cause=err) from None
        except Exception as err:
            conn.close()
            if _reachability_error(err):
                reason = _reason(err)
                raise ConnectError(f"cannot reach {where}: {reason}", host=self.name,
                                   cause=err) from None
            raise

    def _auth_error(self, conn: fabric.Connection, via: Login,
                    password: str | None) -> AuthError:
        where = f"{conn.user}@{self.settings.hoststring}"
        if via is Login.BUILDOUT:
            return NotBootstrapped(
                f"cannot log in as buildout-user {conn.user} with key "
                f"{self.settings.identity_file}; the host is not bootstrapped yet: run "
                f"'bin/hostout {self.name} bootstrap' (or deploy)",
                host=self.name,
            )
        if password is None:
            return AuthError(
                f"no key or password to log in as {where}: set the password or identity-file "
                "option, or run bin/hostout from a terminal to be asked", host=self.name)
        return AuthError(f"authentication failed for {where} (wrong password or key?)",
                         host=self.name)

    def close(self) -> None:
        with self._lock:
            for conn in self._connections.values():
                conn.close()
            self._connections.clear()

    # -- running -------------------------------------------------------------------------
    def execute(self, cmd: RemoteCommand, *, warn: bool = False, hide: bool = False,
                echo: bool = True) -> Result:
        """Run ``cmd``; a non-zero exit raises CommandFailed unless ``warn``."""
        conn = self.connection(cmd.via)
        if echo:
            self.out.line(self.name, cmd.display())
        out = self.out.host_stream(self.name)
        err = self.out.host_stream(self.name, stderr=True, drop=SUDO_PROMPT)
        watchers = []
        if cmd.sudo:
            user = conn.user
            watchers.append(_SudoPassword(lambda: self.passwords.get(self.settings, user)))
        try:
            raw = conn.run(cmd.wire, warn=True, hide=hide, out_stream=out, err_stream=err,
                           in_stream=False, watchers=watchers)
        except (Failure, ThreadException) as failure:
            if _refused(failure):
                raise AuthError(f"sudo refused the password of {conn.user}", host=self.name,
                                cause=failure) from None
            raise
        finally:
            out.flush()
            err.flush()
        result = Result(cmd, raw.stdout, raw.stderr.replace(SUDO_PROMPT, ""), raw.exited)
        if not result.ok and not warn:
            last = next((ln for ln in reversed(result.stderr.splitlines()) if ln.strip()), "")
            raise CommandFailed(
                f"'{cmd.display()}' exited {result.exited}" + (f": {last.strip()}" if last else ""),
                host=self.name,
                exit_status=result.exited,
                stderr=result.stderr,
            )
        return result

    def put(self, local: str | Path, remote: str | PurePosixPath, *,
            via: Login = Login.LOGIN, mode: int | None = None) -> None:
        """Upload to a temporary name, then rename: never a truncated file at ``remote``."""
        conn = self.connection(via)
        target = PurePosixPath(remote)
        # a dotfile beside the target: atomic rename, and never listed as a distribution
        tmp = str(target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part"))
        remote = str(target)
        sftp = conn.sftp()
        try:
            sftp.put(str(local), tmp)
            if mode is not None:
                sftp.chmod(tmp, mode)
            sftp.posix_rename(tmp, remote)
        except BaseException:
            with contextlib.suppress(OSError):
                sftp.remove(tmp)
            raise

    def get(self, remote: str | PurePosixPath, local: str | Path, *,
            via: Login = Login.LOGIN) -> None:
        self.connection(via).sftp().get(str(remote), str(local))


def _reason(err: BaseException) -> str:
    """A short human reason for a failed TCP connect."""
    if isinstance(err, paramiko.ssh_exception.NoValidConnectionsError) and err.errors:
        inner = next(iter(err.errors.values()))
        if isinstance(inner, ConnectionRefusedError) or "refused" in str(inner).lower() or (
            getattr(inner, "errno", None) in (None, 111)
        ):
            return "connection refused"
        return getattr(inner, "strerror", None) or str(inner)
    if isinstance(err, socket.gaierror):
        return f"unknown host name ({err.strerror})"
    if isinstance(err, (socket.timeout, TimeoutError)):
        return "timed out"
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def _refused(failure: BaseException) -> bool:
    if isinstance(failure, Failure):
        return isinstance(failure.reason, ResponseNotAccepted)
    return any(isinstance(e.value, ResponseNotAccepted)
               for e in getattr(failure, "exceptions", ()))
