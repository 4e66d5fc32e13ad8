"""Real SSH hosts for the tests: podman containers of a bare Debian server.

The image (localhost/hostout-bare:bookworm) is built by ci/setup-hosts.sh: sshd, sudo and
CA certificates, no python. User ``deploy`` (password ``deploypw``) may log in with its
password and sudo after giving it again; root cannot log in. Every container makes its own
SSH host keys when it first starts, and keeps them across stop()/start().

Hosts are published on a free port of 127.0.0.1, or, on an ``--internal`` podman network
(no way out, as a firewalled server), reached at their address on that network, port 22.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

REPO = Path(__file__).resolve().parent.parent
IMAGE = "localhost/hostout-bare:bookworm"
LABEL = "hostout-test"
PID_LABEL = "hostout-test.pid"  # the process that started the container, for cleanup_stale()
BANNER_TIMEOUT = 30.0

Completed = subprocess.CompletedProcess[str]

# runc and no default ulimits: what podman needs on this kind of machine.
os.environ.setdefault("CONTAINERS_CONF", str(REPO / "ci" / "containers.conf"))


def podman(*args: str, check: bool = True, timeout: float = 300) -> Completed:
    """Run podman; with check, a failure raises RuntimeError carrying podman's stderr."""
    cmd = ["podman", *args]
    proc = subprocess.run(
        cmd, text=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


@dataclass
class TestHost:
    """A running test host (one podman container)."""

    __test__ = False  # not a pytest test class

    name: str  # the container's name
    container: str  # the container's id
    port: int
    address: str = "127.0.0.1"
    user: str = "deploy"
    password: str = "deploypw"
    network: str | None = None  # set when on an internal network (then port is 22)
    ports: dict[int, int] = field(default_factory=dict)  # container port -> reachable port

    def url(self, port: int, path: str = "/") -> str:
        """Where the controller reaches a published container port over HTTP."""
        return f"http://{self.address}:{self.ports[port]}{path}"

    @property
    def hoststring(self) -> str:
        return f"{self.address}:{self.port}"

    def exec(self, cmd: str, user: str = "root") -> Completed:
        """Run a bash command line in the host, bypassing SSH. Does not check the exit status."""
        return podman("exec", "--user", user, self.container, "bash", "-c", cmd, check=False)

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
        proc = self.exec(cmd, user=self.user)
        if proc.returncode != 0:
            raise RuntimeError(f"{self.name}: authorize_key failed: {proc.stderr.strip()}")

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
                raise TimeoutError(
                    f"{self.name}: no SSH banner at {self.hoststring} after {timeout:.0f}s;"
                    f" podman logs:\n{self.logs()}"
                )
            time.sleep(0.1)


class HostFactory(Protocol):
    """Type of the conftest fixture host_factory."""

    def __call__(self, n: int = 1, network: str | None = None) -> list[TestHost]: ...


def unused_port() -> int:
    """A port of 127.0.0.1 where nothing listens (for now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(name_prefix: str, network: str | None, publish: tuple[int, ...] = (),
         keep: bool = False) -> TestHost:
    """Create and start a container, without waiting for its sshd.

    ``publish`` names more container ports to reach from 127.0.0.1 (``host.ports``);
    ``keep`` makes a host that outlives the process (the demo's), which cleanup_stale
    leaves alone.
    """
    name = f"{name_prefix}-{uuid.uuid4().hex[:8]}"
    labels = [] if keep else [f"--label={LABEL}=1", f"--label={PID_LABEL}={os.getpid()}"]
    run = ["run", "--detach", "--name", name, *labels]
    if network:
        container = podman(*run, "--network", network, IMAGE).stdout.strip()
        host = TestHost(name, container, 22, network=network)
        host.address = host.inspect_ip()
        host.ports = {p: p for p in publish}
        return host
    for _ in range(5):
        port = unused_port()
        extra = {p: unused_port() for p in publish}
        published = [f"--publish=127.0.0.1:{h}:{c}" for c, h in extra.items()]
        proc = podman(*run, "--publish", f"127.0.0.1:{port}:22", *published, IMAGE,
                      check=False)
        if proc.returncode == 0:
            return TestHost(name, proc.stdout.strip(), port, ports=extra)
        podman("rm", "--force", name, check=False)  # created, then failed to start
        if "address already in use" not in proc.stderr:
            break
    raise RuntimeError(f"podman run {name} failed: {proc.stderr.strip()}")


def start_hosts(
    n: int, name_prefix: str = "hostout-test", network: str | None = None,
    publish: tuple[int, ...] = (), keep: bool = False,
) -> list[TestHost]:
    """Start n hosts and wait until all of them answer SSH."""
    hosts: list[TestHost] = []
    try:
        for _ in range(n):
            hosts.append(_run(name_prefix, network, publish, keep))
        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(TestHost.wait_for_ssh, hosts))
    except BaseException:
        for host in hosts:
            host.remove()
        raise
    return hosts


def start_host(name_prefix: str = "hostout-test", network: str | None = None,
               publish: tuple[int, ...] = (), keep: bool = False) -> TestHost:
    return start_hosts(1, name_prefix, network, publish, keep)[0]


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass  # alive, another user's
    return True


def cleanup_stale() -> None:
    """Remove test hosts left behind by runs that were killed (their process is gone)."""
    listing = podman(
        "ps", "--all", "--filter", f"label={LABEL}=1",
        "--format", f'{{{{.ID}}}} {{{{index .Labels "{PID_LABEL}"}}}}',
    )  # fmt: skip
    owners = (line.partition(" ") for line in listing.stdout.splitlines())
    stale = [container for container, _, pid in owners if not _alive(pid)]
    if stale:
        podman("rm", "--force", "--time", "0", *stale, check=False)


def ensure_image() -> None:
    """Build the image (ci/setup-hosts.sh) unless it exists."""
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        script = REPO / "ci" / "setup-hosts.sh"
        subprocess.run(["bash", str(script)], check=True, stdin=subprocess.DEVNULL)


def capability_problem() -> str | None:
    """Why test hosts cannot run here, or None. Tries a container once the image exists."""
    if shutil.which("podman") is None:
        return "podman is not installed (bash ci/setup-hosts.sh installs it)"
    info = podman("info", check=False)
    if info.returncode != 0:
        return f"podman does not work here: {info.stderr.strip()}"
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        if os.geteuid() != 0:
            return f"image {IMAGE} is missing; building it needs root: sudo bash ci/setup-hosts.sh"
        return None  # ensure_image() can build it
    probe = podman("run", "--rm", "--network", "none", IMAGE, "true", check=False)
    if probe.returncode != 0:
        return f"podman cannot run containers here: {probe.stderr.strip()}"
    return None
