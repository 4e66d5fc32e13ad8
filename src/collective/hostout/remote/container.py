"""Containers as hosts, through the Docker Engine API: Docker, or Podman's compatible service
(``podman system service``). The only module that imports the ``docker`` package.

:class:`Engine` is the service, found the standard way (``DOCKER_HOST``, else the default
socket): images, containers, commits. :class:`ContainerRemote` implements the
:class:`~collective.hostout.remote.base.Remote` protocol on one container at a time, so the
deploy steps run in a container as they run on a server:

* ``Account.LOGIN`` is root; ``Account.BUILDOUT`` is the ``buildout-user`` (the container
  switches user itself: no sudo, no password, no key login); ``sudo``/``sudo_user`` run as
  root or that user; a command's ``env`` and ``cwd`` travel in its body, as over SSH;
* ``put`` writes a temporary name beside the target, owned by the account, and renames it;
  ``get`` reads through the account's permissions.

Lifecycle: ``start(image)`` makes the remote's container (``sleep`` keeps it up), the steps
run, ``commit()`` makes an image of it, ``discard()`` removes it. ``close()`` removes any
container still there, from any thread: an interrupted build (Ctrl-C) leaves none behind.
Build containers are named ``hostout-build.MACHINE.PID....``, so the next build removes those
of a process that was killed (:meth:`Engine.remove_stale`).

Errors of the service become hostout errors in one place, :func:`_service_errors`.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import re
import socket
import tarfile
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import docker
import docker.errors
import requests.exceptions

from ..config.settings import HostSettings
from ..errors import CommandFailed, ConnectError, ImageError, RemoteError
from ..output import LOG_ONLY, NORMAL, Output
from ..output.console import TAIL_LINES
from ..shell import Account, RemoteCommand, join, q
from .base import Result, failure_message

#: Who ``Account.LOGIN`` is in a container.
LOGIN = "root"
#: How long one call to the service may take (a commit of a large layer is slow).
TIMEOUT = 600
#: Build containers' names start with this (then MACHINE.PID.PART.RANDOM).
BUILD_PREFIX = "hostout-build"
#: What keeps a build container up while steps run in it.
KEEP_ALIVE = ["sleep", "infinity"]
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
PODMAN_SOCKETS = ("/run/podman/podman.sock",)


def service_address() -> str:
    """Where the service is looked for: ``DOCKER_HOST``, else Docker's default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def _podman_socket() -> str | None:
    """Podman's service socket, when one exists here (the hint for a missing service)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    candidates = [*PODMAN_SOCKETS, *([f"{runtime}/podman/podman.sock"] if runtime else [])]
    return next((c for c in candidates if Path(c).exists()), None)


def _no_service(host: str | None, err: BaseException) -> ConnectError:
    where = service_address()
    reason = str(err).split(": ", 1)[-1] if str(err) else type(err).__name__
    if "No such file" in str(err) or "FileNotFoundError" in str(err):
        reason = "no such socket"
    elif "Connection refused" in str(err):
        reason = "connection refused"
    podman = _podman_socket()
    hint = (f"Podman's socket is at {podman}: export DOCKER_HOST=unix://{podman}" if podman
            and not os.environ.get("DOCKER_HOST") else
            "start Docker, or Podman's service (podman system service --time=0 "
            "unix:///run/podman/podman.sock &), and set DOCKER_HOST to its socket")
    return ConnectError(f"no Docker or Podman service answers at {where} ({reason}); {hint}",
                        host=host, cause=err)


@contextlib.contextmanager
def _service_errors(host: str | None, doing: str) -> Iterator[None]:
    """The one place where the service's and the transport's errors become hostout's."""
    try:
        yield
    except docker.errors.APIError as err:
        explanation = err.explanation or str(err)
        if isinstance(explanation, bytes):
            explanation = explanation.decode(errors="replace")
        raise RemoteError(f"the container service failed to {doing}: {explanation}",
                          host=host, cause=err) from None
    except (requests.exceptions.ConnectionError, docker.errors.DockerException) as err:
        raise _no_service(host, err) from None
    except requests.exceptions.RequestException as err:  # a timeout, a broken stream
        raise RemoteError(f"the container service failed to {doing}: {err}", host=host,
                          cause=err) from None


@dataclass(frozen=True)
class Image:
    """An image the service has: its id, names and labels."""

    id: str
    tags: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    created: str = ""


def _image(found: Any) -> Image:
    attrs = found.attrs or {}
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return Image(found.id, tuple(found.tags), dict(labels), str(attrs.get("Created", "")))


def _machine() -> str:
    """This machine's name as a container name may hold it."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:24] or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class Engine:
    """The Docker Engine API service: images and containers, errors made hostout's."""

    def __init__(self, client: Any, host: str | None = None) -> None:
        self._client = client
        self.host = host

    @classmethod
    def connect(cls, host: str | None = None, *, timeout: int = TIMEOUT) -> Engine:
        """The service ``DOCKER_HOST`` names (else the default socket), or ConnectError."""
        with _service_errors(host, "answer"):
            client = docker.from_env(timeout=timeout)
            client.ping()
        return cls(client, host)

    @property
    def address(self) -> str:
        return service_address()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()

    # -- images ------------------------------------------------------------------------------
    def image(self, ref: str) -> Image | None:
        """The image ``ref`` names or ids, if the service has it."""
        with _service_errors(self.host, f"look up image {ref}"):
            try:
                return _image(self._client.images.get(ref))
            except docker.errors.ImageNotFound:
                return None

    def require_image(self, ref: str) -> Image:
        """``ref`` from the service, pulled if it lacks it; ImageError saying what to do."""
        found = self.image(ref)
        if found is not None:
            return found
        try:
            with _service_errors(self.host, f"pull {ref}"):
                self._client.images.pull(ref)
        except RemoteError as err:
            raise ImageError(
                f"base image {ref} is not there and cannot be pulled ({_short(err)}); pull or "
                "build it (hostout-testhost image --base makes a bare Debian one), or set "
                "docker-image to one that exists (podman images / docker images)",
                host=self.host, cause=err) from None
        found = self.image(ref)
        if found is None:
            raise ImageError(f"base image {ref} was pulled but cannot be found", host=self.host)
        return found

    def find(self, labels: Mapping[str, str]) -> Image | None:
        """The newest image carrying all of ``labels``."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        with _service_errors(self.host, "list images"):
            found = [_image(i) for i in self._client.images.list(all=True, filters=filters)]
        found = [i for i in found if all(i.labels.get(k) == v for k, v in labels.items())]
        return max(found, key=lambda i: i.created, default=None)

    def tag(self, image: str, repository: str, tag: str) -> None:
        with _service_errors(self.host, f"tag {repository}:{tag}"):
            self._client.images.get(image).tag(repository, tag)

    def remove_image(self, ref: str) -> None:
        """Remove an image name (the image goes with its last name); absent is fine."""
        with _service_errors(self.host, f"remove image {ref}"), \
                contextlib.suppress(docker.errors.ImageNotFound, docker.errors.NotFound):
            self._client.images.remove(ref, force=True)

    # -- containers --------------------------------------------------------------------------
    def build_name(self, part: str) -> str:
        return f"{BUILD_PREFIX}.{_machine()}.{os.getpid()}.{part}.{uuid.uuid4().hex[:6]}"

    def create(self, image: str, name: str) -> str:
        """Create and start a container of ``image`` that stays up (for steps to run in)."""
        with _service_errors(self.host, f"start a container of {image}"):
            container = self._client.containers.create(
                image, entrypoint=KEEP_ALIVE, command=[], name=name, detach=True)
            try:
                container.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    container.remove(force=True)
                raise
            return str(container.id)

    def remove_container(self, container: str) -> None:
        with _service_errors(self.host, "remove a container"), \
                contextlib.suppress(docker.errors.NotFound):
            self._client.api.remove_container(container, force=True, v=True)

    def containers(self, name_prefix: str) -> list[tuple[str, str]]:
        """(id, name) of every container whose name starts with ``name_prefix``."""
        with _service_errors(self.host, "list containers"):
            listed = self._client.api.containers(all=True, filters={"name": name_prefix})
        found = []
        for entry in listed:
            names = [n.lstrip("/") for n in entry.get("Names") or []]
            found += [(entry["Id"], n) for n in names if n.startswith(name_prefix)]
        return found

    def remove_stale(self) -> list[str]:
        """Remove the build containers of processes of this machine that are gone (killed
        while they built); returns their names."""
        prefix = f"{BUILD_PREFIX}.{_machine()}."
        stale = []
        for container, name in self.containers(prefix):
            pid = name.removeprefix(prefix).split(".", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                self.remove_container(container)
                stale.append(name)
        return stale

    def commit(self, container: str, *, changes: Sequence[str] = ()) -> Image:
        with _service_errors(self.host, "commit a layer"):
            # no pause: nothing runs in a build container between steps, and pausing needs
            # the cgroup freezer, which some machines' runtimes fail to use
            result = self._client.api.commit(container, changes=list(changes), pause=False)
            image_id = result["Id"] if isinstance(result, dict) else str(result)
            return _image(self._client.images.get(image_id))

    def exec(self, container: str, argv: Sequence[str], *, user: str,
             out: Any = None, err: Any = None) -> tuple[str, str, int]:
        """Run ``argv`` in the container as ``user``; output is streamed to ``out``/``err``
        (``write(str)``) as it comes, and returned."""
        stdout: list[str] = []
        stderr: list[str] = []
        decoders = (codecs.getincrementaldecoder("utf-8")("replace"),
                    codecs.getincrementaldecoder("utf-8")("replace"))
        with _service_errors(self.host, "run a command in the container"):
            made = self._client.api.exec_create(container, list(argv), user=user,
                                                stdout=True, stderr=True)
            for chunk_out, chunk_err in self._client.api.exec_start(made["Id"], stream=True,
                                                                    demux=True):
                for data, decoder, kept, sink in ((chunk_out, decoders[0], stdout, out),
                                                  (chunk_err, decoders[1], stderr, err)):
                    if data:
                        text = decoder.decode(data)
                        kept.append(text)
                        if sink is not None:
                            sink.write(text)
            exited = self._client.api.exec_inspect(made["Id"]).get("ExitCode")
        return "".join(stdout), "".join(stderr), -1 if exited is None else int(exited)

    def put_archive(self, container: str, directory: str, data: Any) -> None:
        with _service_errors(self.host, f"copy a file into {directory}"):
            if not self._client.api.put_archive(container, directory, data):
                raise RemoteError(f"the container service refused a file for {directory}",
                                  host=self.host)

    def get_archive(self, container: str, path: str) -> bytes:
        with _service_errors(self.host, f"copy {path} out of the container"):
            stream, _ = self._client.api.get_archive(container, path)
            return b"".join(stream)


def _short(err: BaseException) -> str:
    text = str(err)
    return text.split(": ", 1)[-1] if ": " in text else text


class ContainerRemote:
    """The :class:`~collective.hostout.remote.base.Remote` of one host part on a container
    of ``engine`` (see the module's doc for the lifecycle)."""

    #: The buildout user is switched to, never logged in as with a key.
    key_login = False

    def __init__(self, settings: HostSettings, out: Output, engine: Engine) -> None:
        self.settings = settings
        self.out = out
        self.engine = engine
        self.container: str | None = None
        self._lock = threading.RLock()
        self._closed = False
        self._ids: dict[str, tuple[int, int, str]] = {}

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def login_user(self) -> str:
        return LOGIN

    # -- the container -----------------------------------------------------------------------
    def start(self, image: str) -> None:
        """Make this remote's container, from ``image`` (after ``discard()`` of the last)."""
        with self._lock:
            if self._closed:
                raise RemoteError("interrupted: the build was stopped", host=self.name)
            if self.container is not None:
                raise RemoteError("a container is running already", host=self.name)
            self.container = self.engine.create(image, self.engine.build_name(self.name))
            self._ids.clear()

    def commit(self, *, changes: Sequence[str] = ()) -> Image:
        """An image of the container as it is now (``changes``: Dockerfile-style
        instructions such as ``LABEL k=v`` or ``CMD [...]``)."""
        return self.engine.commit(self._running(), changes=changes)

    def discard(self) -> None:
        """Remove the container (if any)."""
        with self._lock:
            container, self.container = self.container, None
        if container is not None:
            self.engine.remove_container(container)

    def close(self) -> None:
        """Remove the container, even while another thread uses it; no more commands."""
        with self._lock:
            self._closed = True
        with contextlib.suppress(Exception):
            self.discard()

    def _running(self) -> str:
        container = self.container
        if container is None:
            raise RemoteError("no container: start() one first", host=self.name)
        return container

    # -- running -----------------------------------------------------------------------------
    def user_for(self, cmd: RemoteCommand) -> str:
        """Who runs ``cmd``: root for the login account and sudo, the buildout user for
        ``Account.BUILDOUT``, or the sudo user."""
        if cmd.sudo:
            return cmd.sudo_user or LOGIN
        return self._account_user(cmd.account)

    def _account_user(self, account: Account) -> str:
        if account is Account.BUILDOUT:
            return self.settings.buildout_user or LOGIN
        return LOGIN

    def execute(self, cmd: RemoteCommand, *, warn: bool = False, hide: bool = False,
                echo: bool = True) -> Result:
        container = self._running()
        self.out.line(self.name, cmd.display(), level=NORMAL if echo else LOG_ONLY)
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        show = not hide
        out = self.out.host_stream(self.name, show=show, tail=tail)
        err = self.out.host_stream(self.name, stderr=True, show=show, tail=tail)
        try:
            stdout, stderr, exited = self.engine.exec(
                container, ["/bin/sh", "-c", cmd.body], user=self.user_for(cmd),
                out=out, err=err)
        finally:
            out.finish()
            err.finish()
        result = Result(cmd, stdout, stderr, exited)
        if not result.ok and not warn:
            raise CommandFailed(
                failure_message(cmd, exited, stderr),
                host=self.name, exit_status=exited, stderr=stderr, tail=tuple(tail),
                tail_shown=show and self.out.shows_output(self.name))
        return result

    def _who(self, user: str) -> tuple[int, int, str]:
        """uid, gid and home of ``user`` in the container."""
        if user not in self._ids:
            res = self.execute(RemoteCommand(
                f"id -u {q(user)} && id -g {q(user)} && getent passwd {q(user)} | "
                "cut -d: -f6"), hide=True, echo=False)
            uid, gid, home = [*res.stdout.split("\n"), "", ""][:3]
            self._ids[user] = (int(uid), int(gid), home.strip() or "/")
        return self._ids[user]

    def _absolute(self, path: str | PurePosixPath, user: str) -> PurePosixPath:
        path = PurePosixPath(path)
        return path if path.is_absolute() else PurePosixPath(self._who(user)[2]) / path

    def put(self, local: str | Path, remote: str | PurePosixPath, *,
            account: Account = Account.LOGIN, mode: int | None = None) -> None:
        """Copy ``local`` in as a temporary name owned by the account, then rename it (as
        the account) to ``remote``: never a truncated file there."""
        container = self._running()
        user = self._account_user(account)
        uid, gid, _ = self._who(user)
        target = self._absolute(remote, user)
        tmp = f".{target.name}.{uuid.uuid4().hex[:8]}.part"
        local = Path(local)
        stat = local.stat()
        with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
            with tarfile.open(fileobj=spool, mode="w") as tar:
                info = tarfile.TarInfo(tmp)
                info.size, info.mtime = stat.st_size, int(stat.st_mtime)
                info.uid, info.gid = uid, gid
                info.mode = 0o644 if mode is None else mode
                with local.open("rb") as fh:
                    tar.addfile(info, fh)
            spool.seek(0)
            self.engine.put_archive(container, str(target.parent), spool)
        moved = self.execute(RemoteCommand(join(["mv", "-f", str(target.parent / tmp),
                                                 str(target)]), account=account),
                             warn=True, hide=True, echo=False)
        if not moved.ok:
            self.execute(RemoteCommand(join(["rm", "-f", str(target.parent / tmp)])),
                         warn=True, hide=True, echo=False)
            raise CommandFailed(f"cannot put {target} as {user}: {moved.stderr.strip()}",
                                host=self.name, exit_status=moved.exited,
                                stderr=moved.stderr)

    def get(self, remote: str | PurePosixPath, local: str | Path, *,
            account: Account = Account.LOGIN) -> None:
        """Copy ``remote`` out (it must be a file the account may read) to ``local``."""
        container = self._running()
        user = self._account_user(account)
        source = self._absolute(remote, user)
        readable = self.execute(RemoteCommand(f"test -f {q(source)} && test -r {q(source)}",
                                              account=account), warn=True, hide=True,
                                echo=False)
        if not readable.ok:
            raise CommandFailed(f"no file {source} that {user} may read", host=self.name,
                                exit_status=readable.exited)
        data = self.engine.get_archive(container, str(source))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = next((m for m in tar.getmembers() if m.isfile()), None)
            extracted = tar.extractfile(member) if member is not None else None
            if extracted is None:
                raise CommandFailed(f"{source} is not a file", host=self.name)
            content = extracted.read()
        local = Path(local)
        partial = local.with_name(f".{local.name}.{os.getpid()}.part")
        try:
            partial.write_bytes(content)
            partial.replace(local)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

