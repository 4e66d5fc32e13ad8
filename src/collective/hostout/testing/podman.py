"""Podman as the throwaway hosts use it: one function that runs it, and the settings it needs.

On some machines podman cannot create a container with its default settings (a VM whose
cgroup layout crun refuses, or where raising the open files limit is denied). For those,
this package ships ``containers.conf`` (runc, no default ulimits). It is used only where it
is needed: when ``CONTAINERS_CONF`` is not set and a probe container fails with podman's
defaults but starts with the shipped file. Only ``podman run`` and ``podman create`` get it;
everything else podman does to a container works with the defaults (measured).
"""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
from pathlib import Path

from ..errors import HostoutError

SHIPPED_CONF = Path(__file__).with_name("containers.conf")
CREATING = frozenset({"run", "create"})

Completed = subprocess.CompletedProcess[str]


class TestHostError(HostoutError):
    """A throwaway host could not be made, found or removed."""

    __test__ = False  # not a pytest test class


class PodmanError(TestHostError):
    """podman exited non-zero; ``stderr`` says why."""

    def __init__(self, message: str, *, stderr: str = "", returncode: int | None = None):
        super().__init__(message)
        self.stderr = stderr
        self.returncode = returncode


def podman(*args: str, check: bool = True, timeout: float = 300, input: str | None = None,
           image: str | None = None) -> Completed:
    """Run ``podman ARGS``; with ``check``, a failure raises PodmanError with podman's stderr.

    ``input`` goes to podman's stdin (never to a terminal). ``podman run``/``create`` get the
    settings this machine needs (see the module's doc); ``image`` names the image they run,
    for the probe.
    """
    env = None
    if args and args[0] in CREATING:
        conf = containers_conf(image or _image_of(args))
        if conf is not None:
            env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    return _podman(args, check=check, timeout=timeout, input=input, env=env)


def _podman(args: tuple[str, ...], *, check: bool, timeout: float, input: str | None = None,
            env: dict[str, str] | None = None) -> Completed:
    cmd = ["podman", *args]
    try:
        proc = subprocess.run(
            cmd, text=True, capture_output=True, timeout=timeout, env=env, input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )  # fmt: skip
    except FileNotFoundError:
        raise TestHostError(NO_PODMAN) from None
    if check and proc.returncode != 0:
        raise PodmanError(
            f"{shlex.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}",
            stderr=proc.stderr, returncode=proc.returncode,
        )  # fmt: skip
    return proc


NO_PODMAN = ("podman is not installed (on Debian/Ubuntu, as root: "
             "apt-get install podman runc debootstrap)")


def _image_of(args: tuple[str, ...]) -> str | None:
    """The image of a ``podman run``/``create`` command line: its first non-option word."""
    takes_value = {"--name", "--label", "--network", "--publish", "-p", "--user", "-u",
                   "--env", "-e", "--entrypoint", "--volume", "-v", "--workdir", "-w",
                   "--hostname", "--ulimit", "--mount", "--cap-add", "--cap-drop"}
    words = iter(args[1:])
    for word in words:
        if word in takes_value:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def containers_conf(image: str | None) -> Path | None:
    """The containers.conf that ``podman run`` needs here: None (podman's own settings) or
    the shipped one.

    Decided by a probe: a container that runs ``true`` in ``image``, without network. If
    both settings fail, podman's own are kept, so the real command reports podman's error.
    A CONTAINERS_CONF of the user's is always respected.
    """
    if os.environ.get("CONTAINERS_CONF") or image is None:
        return None
    if _podman(("image", "exists", image), check=False, timeout=60).returncode != 0:
        return None  # nothing to probe with (yet): podman's own settings, not remembered
    return _probed_conf(image)


@functools.cache
def _probed_conf(image: str) -> Path | None:
    """Probed once per process: which settings podman needs is a fact of this machine."""
    probe = ("run", "--rm", "--network", "none", "--entrypoint", "true", image)
    if _podman(probe, check=False, timeout=120).returncode == 0:
        return None
    env = {**os.environ, "CONTAINERS_CONF": str(SHIPPED_CONF)}
    if _podman(probe, check=False, timeout=120, env=env).returncode == 0:
        return SHIPPED_CONF
    return None
