"""A host over SSH, through Fabric 3 (paramiko, invoke).

:class:`SshRemote` implements the :class:`~collective.hostout.remote.base.Remote` protocol. It
holds at most one Fabric ``Connection`` per account (the login ``user`` and, when it differs,
the ``buildout-user``), opened on first use and reused by every command of the invocation.
Root and other users are reached through the login user's sudo, whose password goes only to
hostout's own sudo prompt, on stdin. Transport errors become hostout's errors here, in one
place (:meth:`SshRemote._connect`).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath

import fabric
import paramiko
from invoke.exceptions import Failure, ResponseNotAccepted, ThreadException
from invoke.watchers import FailingResponder

from ...config.settings import HostSettings
from ...errors import (
    AuthError,
    CommandFailed,
    ConnectError,
    HostKeyError,
    HostoutError,
    NotBootstrapped,
)
from ...output import LOG_ONLY, NORMAL, VERBOSE, Output
from ...output.console import TAIL_LINES
from ...shell import Account, RemoteCommand, join
from ..base import Result, failure_message
from ..passwords import Passwords
from . import hostkeys, tunnel

#: The prompt hostout asks sudo to print, so the password is only ever sent to this prompt.
SUDO_PROMPT = "[hostout] sudo password:"


def wire(cmd: RemoteCommand) -> str:
    """Exactly what is sent over SSH for ``cmd`` (without the sudo password: stdin)."""
    if not cmd.sudo:
        return cmd.body
    user = ["-u", cmd.sudo_user] if cmd.sudo_user else []
    return join(["sudo", "-S", "-p", SUDO_PROMPT, "-H", *user, "--", "sh", "-c", cmd.body])


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


class SshRemote:
    """One host's SSH side for one invocation."""

    key_login = True  # the buildout user logs in with its own key

    def __init__(self, settings: HostSettings, out: Output, passwords: Passwords,
                 known_hosts: hostkeys.KnownHosts | None = None) -> None:
        self.settings = settings
        self.out = out
        self.passwords = passwords
        self.known_hosts = known_hosts or hostkeys.KnownHosts()  # shared by an invocation
        self._connections: dict[Account, fabric.Connection] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.settings.name

    # -- connecting ----------------------------------------------------------------------
    def _fabric_config(self) -> fabric.Config:
        if self.settings.ssh_config is not None:
            return fabric.Config(runtime_ssh_path=str(self.settings.ssh_config))
        return fabric.Config()

    def _user_for(self, account: Account) -> str | None:
        """Who logs in for ``account``: None lets ssh_config (or the local user) decide."""
        if account is Account.BUILDOUT and self.settings.buildout_user != self.settings.user:
            return self.settings.buildout_user
        return self.settings.user

    @property
    def login_user(self) -> str:
        """The login user: the ``user`` option, else ssh_config's User, else the local user
        (what Fabric decides, read without connecting)."""
        if self.settings.user:
            return self.settings.user
        with self._lock:
            conn = self._connections.get(Account.LOGIN)
        if conn is None:
            conn = fabric.Connection(host=self.settings.hostname, port=self.settings.port,
                                     config=self._fabric_config())
        return str(conn.user)

    def _key(self) -> list[str]:
        key = self.settings.identity_file
        return [str(key)] if key.is_file() else []

    def connection(self, account: Account = Account.LOGIN) -> fabric.Connection:
        """The open Fabric connection of ``account``, made on first use."""
        if account is Account.BUILDOUT and self._user_for(account) == self.settings.user:
            account = Account.LOGIN
        with self._lock:
            conn = self._connections.get(account)
            if conn is None:
                conn = self._open(account)
                self._connections[account] = conn
        return conn

    def _make(self, account: Account, password: str | None) -> fabric.Connection:
        kwargs: dict[str, object] = {}
        if self._key():
            kwargs["key_filename"] = self._key()
        if account is Account.BUILDOUT:  # key only: a normal deploy needs no password
            kwargs["look_for_keys"] = False
            kwargs["allow_agent"] = False
        elif password is not None:
            kwargs["password"] = password
        conn = fabric.Connection(
            host=self.settings.hostname,
            user=self._user_for(account),
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

    def _open(self, account: Account) -> fabric.Connection:
        password = (None if account is Account.BUILDOUT
                    else self.passwords.configured(self.settings, self._user_for(account)))
        conn = self._make(account, password)
        try:
            self._connect(conn, account)
        except paramiko.AuthenticationException:
            if (account is Account.BUILDOUT or password is not None
                    or not self.passwords.interactive):
                raise self._auth_error(conn, account, password) from None
            password = self.passwords.get(self.settings, conn.user)
            conn = self._make(account, password)
            try:
                self._connect(conn, account)
            except paramiko.AuthenticationException:
                raise self._auth_error(conn, account, password) from None
        return conn

    def _connect(self, conn: fabric.Connection, account: Account) -> None:
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

    def _auth_error(self, conn: fabric.Connection, account: Account,
                    password: str | None) -> AuthError:
        where = f"{conn.user}@{self.settings.hoststring}"
        if account is Account.BUILDOUT:
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
        """Run ``cmd``; a non-zero exit raises CommandFailed unless ``warn``. A ``network``
        command on a host with ``tunnel = true`` runs with the tunnel's proxy, open for it."""
        conn = self.connection(cmd.account)
        if not (cmd.network and self.settings.tunnel):
            return self._execute(conn, cmd, warn=warn, hide=hide, echo=echo)
        with tunnel.opened(conn.client.get_transport(), self._tunnel_log) as t:
            self.out.add_secret(t.token)
            env = tunnel.proxy_env(t.port or 0, t.token)
            proxied = replace(cmd, env=cmd.env + env, secrets=(*cmd.secrets, t.token))
            try:
                return self._execute(conn, proxied, warn=warn, hide=hide, echo=echo)
            finally:
                self.out.line(self.name, f"tunnel closed after {t.summary()}")

    def _tunnel_log(self, text: str) -> None:
        refused = text.startswith("refused")
        self.out.line(self.name, f"tunnel: {text}", level=NORMAL if refused else VERBOSE)

    def _execute(self, conn: fabric.Connection, cmd: RemoteCommand, *, warn: bool,
                 hide: bool, echo: bool) -> Result:
        self.out.line(self.name, cmd.display(), level=NORMAL if echo else LOG_ONLY)
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        show = not hide
        out = self.out.host_stream(self.name, show=show, tail=tail)
        err = self.out.host_stream(self.name, stderr=True, drop=SUDO_PROMPT, show=show,
                                   tail=tail)
        watchers = []
        if cmd.sudo:
            user = conn.user
            watchers.append(_SudoPassword(lambda: self.passwords.get(self.settings, user)))
        try:
            raw = conn.run(wire(cmd), warn=True, hide=False, out_stream=out, err_stream=err,
                           in_stream=False, watchers=watchers)
        except (Failure, ThreadException) as failure:
            if _refused(failure):
                raise AuthError(f"sudo refused the password of {conn.user}", host=self.name,
                                cause=failure) from None
            ours = _hostout_error(failure)  # e.g. no password to give sudo: one clear line
            if ours is not None:
                raise ours from None
            raise
        finally:
            out.finish()
            err.finish()
        result = Result(cmd, raw.stdout, raw.stderr.replace(SUDO_PROMPT, ""), raw.exited)
        if not result.ok and not warn:
            raise CommandFailed(
                failure_message(cmd, result.exited, result.stderr),
                host=self.name,
                exit_status=result.exited,
                stderr=result.stderr,
                tail=tuple(tail),
                tail_shown=show and self.out.shows_output(self.name),
            )
        return result

    def put(self, local: str | Path, remote: str | PurePosixPath, *,
            account: Account = Account.LOGIN, mode: int | None = None) -> None:
        """Upload to a temporary name, then rename: never a truncated file at ``remote``."""
        conn = self.connection(account)
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
            account: Account = Account.LOGIN) -> None:
        self.connection(account).sftp().get(str(remote), str(local))


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


def _hostout_error(failure: BaseException) -> HostoutError | None:
    """A hostout error raised in one of invoke's threads (the sudo password watcher's)."""
    for found in getattr(failure, "exceptions", ()):
        if isinstance(found.value, HostoutError):
            return found.value
    return None


def _refused(failure: BaseException) -> bool:
    if isinstance(failure, Failure):
        return isinstance(failure.reason, ResponseNotAccepted)
    return any(isinstance(e.value, ResponseNotAccepted)
               for e in getattr(failure, "exceptions", ()))
