"""Every error hostout raises on purpose, in one place.

Every error a user can cause is a :class:`HostoutError`: the command line prints
``Error: <host>: <message>`` on one line and exits non-zero. Anything else is a bug and
gets a traceback. Each error carries the host part it belongs to (``host``) and the
lower-level exception that explains it (``cause``).
"""

from __future__ import annotations


class HostoutError(Exception):
    """Root of every user-facing error."""

    exit_code = 1

    def __init__(
        self, message: str, *, host: str | None = None, cause: BaseException | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.cause = cause
        if cause is not None:
            self.__cause__ = cause

    def __str__(self) -> str:
        line = " ".join(self.message.split())  # always one line
        return f"{self.host}: {line}" if self.host else line


# -- the command line and the buildout's configuration --------------------------------------
class UsageError(HostoutError):
    """Bad command line: unknown host, unknown command, wrong arguments."""

    exit_code = 2


class ConfigError(HostoutError):
    """A missing, malformed, unsafe or inconsistent option, or an unreadable options file."""


class StaleConfigError(ConfigError):
    """A .cfg changed after the last bin/buildout wrote the options file."""


class PluginError(HostoutError):
    """A fabfile or plugin egg could not be loaded."""


# -- talking to a host ------------------------------------------------------------------------
class RemoteError(HostoutError):
    """Something went wrong talking to a host."""


class ConnectError(RemoteError):
    """The host could not be reached."""


class AuthError(RemoteError):
    """Login or sudo was refused (wrong password or key)."""


class HostKeyError(RemoteError):
    """The host's key is unknown under strict checking, or has changed."""


class CommandFailed(RemoteError):
    """A remote or local command exited non-zero."""

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        cause: BaseException | None = None,
        exit_status: int | None = None,
        stderr: str = "",
        tail: tuple[str, ...] = (),
        tail_shown: bool = True,
    ) -> None:
        super().__init__(message, host=host, cause=cause)
        self.exit_status = exit_status
        self.stderr = stderr
        self.tail = tail  # the last lines the command printed (both streams, in order)
        self.tail_shown = tail_shown  # whether they were on the screen already


class NotBootstrapped(RemoteError):
    """The host has no buildout at its path yet."""


# -- deploying ----------------------------------------------------------------------------------
class BootstrapError(HostoutError):
    """A bootstrap step failed; it can simply be rerun."""


class UnsupportedSystem(HostoutError):
    """The host's OS cannot provide the Python asked for."""


class ReleaseError(HostoutError):
    """A develop package could not be released (build failure, version not settable)."""


class DistributionError(HostoutError):
    """A pinned distribution could not be found or fetched."""


class DownloadError(HostoutError):
    """A file a recipe or ``extends`` downloads could be had neither by the server nor here,
    or only with other content than the local build got."""


class ImageError(HostoutError):
    """A container image could not be found, pulled, built or named (``docker``)."""


# -- releases, the lock, health -------------------------------------------------------------------
class LayoutError(HostoutError):
    """The server's layout is not the one the options describe (e.g. releases on the server,
    ``releases = false`` in the options), or a release operation does not apply."""


class RollbackError(HostoutError):
    """No such release to go back to (unknown id, failed build, pruned, or no previous)."""


class LockHeld(HostoutError):
    """Another deploy, rollback, buildout or bootstrap holds the server's lock."""


class LockLost(HostoutError):
    """The lock went stale while held (no heartbeat got through) and another run took it."""


class Interrupted(HostoutError):
    """The run was interrupted (Ctrl-C); the lock was released."""

    exit_code = 130


class HealthCheckFailed(HostoutError):
    """The health check did not pass within healthcheck-timeout after post-commands."""


class ResolutionError(HostoutError):
    """The cfg built on the server does not build on this machine (so it would not there)."""
