"""Throwaway hosts: podman containers of a bare Debian server, reached over real SSH.

The image (:mod:`.image`) has sshd, sudo and CA certificates, no Python. User ``deploy``
(password ``deploypw``) may log in with its password and sudo after giving it again; root
cannot log in. Every container makes its own SSH host keys when it first starts, and keeps them
across stop()/start().

Hosts are published on a free port of 127.0.0.1, or, on a podman network (``--internal``: no
way out, as a firewalled server), reached at their address on that network, port 22.

Hosts started by a process are labelled with its pid, so :func:`cleanup_stale` can remove those
of runs that were killed; ``keep=True`` makes a host that outlives its process (the demo's,
``hostout-testhost start``), which cleanup_stale leaves alone.
"""

from __future__ import annotations

import http.client
import os
import shlex
import shutil
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .image import IMAGE, LOGIN_PASSWORD, LOGIN_USER, build_problem, image_exists
from .podman import NO_PODMAN, Completed, PodmanError, TestHostError, podman

LABEL = "hostout-test"
PID_LABEL = "hostout-test.pid"  # the process that started the container, for cleanup_stale()
BANNER_TIMEOUT = 30.0


@dataclass
class TestHost:
    """A running throwaway host (one podman container)."""

    __test__ = False  # not a pytest test class

    name: str  # the container's name
    container: str  # the container's id
    port: int
    address: str = "127.0.0.1"
    user: str = LOGIN_USER
    password: str = LOGIN_PASSWORD
    network: str | None = None  # set when on a podman network (then port is 22)
    ports: dict[int, int] = field(default_factory=dict)  # container port -> reachable port

    def url(self, port: int, path: str = "/") -> str:
        """Where this machine reaches a published container port over HTTP."""
        return f"http://{self.address}:{self.ports[port]}{path}"

    @property
    def hoststring(self) -> str:
        """``address:port``, as a host part's ``host`` option takes it."""
        return f"{self.address}:{self.port}"

    def exec(self, cmd: str, user: str = "root", input: str | None = None) -> Completed:
        """Run a bash command line in the host, bypassing SSH. Does not check the exit status."""
        args = ["exec", *(["--interactive"] if input is not None else []), "--user", user,
                self.container, "bash", "-c", cmd]
        return podman(*args, check=False, input=input)

    def logs(self) -> str:
        """What the container printed: sshd's log (sshd -e), e.g. "Accepted password for"."""
        proc = podman("logs", self.container)
        return proc.stdout + proc.stderr

    def inspect_ip(self) -> str:
        """The container's own address (on its network), where other hosts reach it at port 22."""
        template = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
        return podman("inspect", "--format", template, self.container).stdout.split()[0]

    def authorize_key(self, public_key: str) -> None:
        """Let the public key (one authorized_keys line) log in as self.user."""
        line = shlex.quote(public_key.strip())
        cmd = f"umask 077 && mkdir -p ~/.ssh && echo {line} >> ~/.ssh/authorized_keys"
        self._check(self.exec(cmd, user=self.user), "authorize_key")

    def set_login(self, user: str, password: str) -> None:
        """Make ``user`` the sudo-capable login user, with ``password`` (given on stdin, never
        on a command line); the image's own login user is removed if it is another."""
        cmd = "chpasswd"
        if user != LOGIN_USER:
            cmd = (f"useradd --create-home --shell /bin/bash --groups sudo {shlex.quote(user)}"
                   f" && chpasswd && userdel --remove {shlex.quote(LOGIN_USER)}")
        self._check(self.exec(cmd, input=f"{user}:{password}\n"), "set_login")
        self.user, self.password = user, password

    def host_keys(self) -> list[str]:
        """known_hosts lines for this host's SSH keys, as this machine reaches it."""
        who = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        proc = self._check(self.exec("cat /etc/ssh/ssh_host_*_key.pub"), "host_keys")
        return [f"{who} {' '.join(line.split()[:2])}" for line in proc.stdout.splitlines()
                if line.strip()]

    def _check(self, proc: Completed, what: str) -> Completed:
        if proc.returncode != 0:
            raise TestHostError(f"{self.name}: {what} failed: {proc.stderr.strip()}")
        return proc

    def stop(self) -> None:
        podman("stop", "--time", "5", self.container)

    def start(self) -> None:
        """Start the stopped container again: same file system, same host keys, same port."""
        podman("start", self.container)
        if self.network:
            self.address = self.inspect_ip()  # may change on restart
        self.wait_for_ssh()

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.container, check=False)

    def wait_for_ssh(self, timeout: float = BANNER_TIMEOUT) -> None:
        """Wait until sshd greets with its "SSH-2.0-..." banner."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((self.address, self.port), timeout=2) as sock:
                    if sock.recv(256).startswith(b"SSH-2.0"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TestHostError(
                    f"{self.name}: no SSH banner at {self.hoststring} after {timeout:.0f}s;"
                    f" podman logs:\n{self.logs()}"
                )
            time.sleep(0.1)


def fetch(url: str, timeout: float = 30.0) -> str:
    """The page at ``url``; retried while the app (re)starts, never longer than ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class Poller:
    """GET ``url`` every ``interval`` seconds while the block runs (a deploy, say): the
    answers, the failures, and the longest stretch without an answer (the downtime)."""

    def __init__(self, url: str, *, interval: float = 0.05, timeout: float = 2.0) -> None:
        self.url, self.interval, self.timeout = url, interval, timeout
        self.answers: list[str] = []
        self.failures = 0
        self.longest = 0.0
        self._last_ok = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=self.timeout) as response:
                    self.answers.append(response.read().decode())
                now = time.monotonic()
                self.longest = max(self.longest, now - self._last_ok)
                self._last_ok = now
            except (OSError, http.client.HTTPException):  # refused, reset, cut short
                self.failures += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> Poller:
        self._last_ok = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.longest = max(self.longest, time.monotonic() - self._last_ok)


def unused_port() -> int:
    """A port of 127.0.0.1 where nothing listens (for now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Publish = Iterable[int] | Mapping[int, int | None]


def _run(name: str, network: str | None, publish: Mapping[int, int | None],
         labels: Mapping[str, str], image: str) -> TestHost:
    """Create and start a container, without waiting for its sshd."""
    run = ["run", "--detach", "--name", name, *(f"--label={k}={v}" for k, v in labels.items())]
    if network:
        container = podman(*run, "--network", network, image, image=image).stdout.strip()
        host = TestHost(name, container, 22, network=network)
        try:
            host.address = host.inspect_ip()
        except BaseException:
            host.remove()
            raise
        host.ports = {p: p for p in publish}
        return host
    fixed = all(local for local in publish.values())
    for _ in range(1 if fixed else 5):
        port = unused_port()
        extra = {container: local or unused_port() for container, local in publish.items()}
        published = [f"--publish=127.0.0.1:{h}:{c}" for c, h in extra.items()]
        proc = podman(*run, "--publish", f"127.0.0.1:{port}:22", *published, image,
                      check=False, image=image)
        if proc.returncode == 0:
            return TestHost(name, proc.stdout.strip(), port, ports=extra)
        podman("rm", "--force", name, check=False)  # created, then failed to start
        if "address already in use" not in proc.stderr:
            break
    raise PodmanError(f"podman run {name} failed: {proc.stderr.strip()}", stderr=proc.stderr,
                      returncode=proc.returncode)


def start_hosts(
    n: int, name_prefix: str = "hostout-test", network: str | None = None,
    publish: Publish = (), keep: bool = False, *, image: str = IMAGE,
) -> list[TestHost]:
    """Start n hosts named ``name_prefix-RANDOM`` and wait until all of them answer SSH.

    ``publish`` names container ports to reach from 127.0.0.1 (``host.ports``, ``host.url``):
    ports (each on a free port here) or a mapping of container port to port here (None: a
    free one). ``keep`` makes hosts that outlive this process (cleanup_stale leaves them).
    """
    labels = {} if keep else {LABEL: "1", PID_LABEL: str(os.getpid())}
    names = [f"{name_prefix}-{uuid.uuid4().hex[:8]}" for _ in range(n)]
    return _start(names, network, publish, labels, image)


def start_host(name_prefix: str = "hostout-test", network: str | None = None,
               publish: Publish = (), keep: bool = False, *, image: str = IMAGE) -> TestHost:
    """One host; see start_hosts."""
    return start_hosts(1, name_prefix, network, publish, keep, image=image)[0]


def start_named_host(name: str, *, labels: Mapping[str, str], network: str | None = None,
                     publish: Publish = (), image: str = IMAGE) -> TestHost:
    """A host that outlives this process, with the container name and labels given."""
    return _start([name], network, publish, labels, image)[0]


def _start(names: list[str], network: str | None, publish: Publish,
           labels: Mapping[str, str], image: str) -> list[TestHost]:
    ports = dict(publish) if isinstance(publish, Mapping) else dict.fromkeys(publish)
    hosts: list[TestHost] = []
    try:
        for name in names:
            hosts.append(_run(name, network, ports, labels, image))
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            list(pool.map(TestHost.wait_for_ssh, hosts))
    except BaseException:
        for host in hosts:
            host.remove()
        raise
    return hosts


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass  # alive, another user's
    return True


def cleanup_stale() -> None:
    """Remove hosts left behind by runs that were killed (their process is gone)."""
    listing = podman(
        "ps", "--all", "--filter", f"label={LABEL}=1",
        "--format", f'{{{{.ID}}}} {{{{index .Labels "{PID_LABEL}"}}}}',
    )  # fmt: skip
    owners = (line.partition(" ") for line in listing.stdout.splitlines())
    stale = [container for container, _, pid in owners if not _alive(pid)]
    if stale:
        podman("rm", "--force", "--time", "0", *stale, check=False)


def capability_problem(image: str = IMAGE) -> str | None:
    """Why throwaway hosts cannot run here, or None. Runs a container once the image exists;
    a missing image is no problem where it can be built (:func:`.image.ensure_image`)."""
    if shutil.which("podman") is None:
        return NO_PODMAN
    info = podman("info", check=False)
    if info.returncode != 0:
        return f"podman does not work here: {info.stderr.strip()}"
    if not image_exists(image):
        problem = build_problem()
        return f"image {image} is missing; {problem}" if problem else None
    probe = podman("run", "--rm", "--network", "none", image, "true", check=False, image=image)
    if probe.returncode != 0:
        return f"podman cannot run containers here: {probe.stderr.strip()}"
    return None
