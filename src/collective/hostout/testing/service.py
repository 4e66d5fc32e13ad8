"""Podman's Docker-compatible service, started for a test run or a benchmark.

    from collective.hostout.testing import ensure_base_image, podman_service

    ensure_base_image()
    with podman_service() as address:        # unix:///tmp/.../podman.sock
        os.environ["DOCKER_HOST"] = address  # bin/hostout PART docker finds it there
        ...

The service (``podman system service --time=0``) listens on a socket in a temporary
directory of its own and is stopped when the block ends. It creates containers with the
settings this machine needs (see :mod:`.podman`), through ``CONTAINERS_CONF``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .podman import TestHostError, containers_conf


@contextlib.contextmanager
def podman_service(*, image: str | None = None, timeout: float = 30.0) -> Iterator[str]:
    """Run ``podman system service`` on a socket of its own for the block; yields its
    address. ``image`` is one podman can run here, to probe the settings it needs."""
    env = dict(os.environ)
    conf = containers_conf(image)
    if conf is not None:
        env["CONTAINERS_CONF"] = str(conf)
    with tempfile.TemporaryDirectory(prefix="hostout-podman.") as tmp:
        socket = Path(tmp) / "podman.sock"
        log = Path(tmp) / "service.log"
        with log.open("w") as out:
            try:
                service = subprocess.Popen(
                    ["podman", "system", "service", "--time=0", f"unix://{socket}"],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
            except FileNotFoundError:
                raise TestHostError("podman is not installed (on Debian/Ubuntu, as root: "
                                    "apt-get install podman runc)") from None
            try:
                deadline = time.monotonic() + timeout
                while not socket.exists():
                    if service.poll() is not None or time.monotonic() > deadline:
                        raise TestHostError("podman system service did not start: "
                                            + log.read_text()[-500:].strip())
                    time.sleep(0.1)
                yield f"unix://{socket}"
            finally:
                service.terminate()
                try:
                    service.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    service.kill()
                    service.wait()
