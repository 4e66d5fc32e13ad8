"""Fixtures giving tests real SSH hosts: podman containers of collective.hostout.testing
(tests/hosts.py is the tests' name for it).

Tests using them should be marked ``@pytest.mark.integration``. Where podman cannot run
containers the tests are skipped with the reason, except on CI (CI=true), where they fail.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import hosts
from collective.hostout import testing
from collective.hostout.testing.podman import containers_conf
from hosts import HostFactory, TestHost

# One per pytest process: parallel workers (pytest-xdist) must not remove each other's network.
INTERNAL_NETWORK = f"hostout-test-internal-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs real SSH hosts (podman containers)")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"test hosts are unavailable (CI must not skip): {reason}", pytrace=False)
    pytest.skip(f"test hosts are unavailable: {reason}")


@pytest.fixture(scope="session")
def host_image() -> str:
    """The image of the test hosts, built if missing; stale hosts of killed runs removed.

    Podman commands that tests run themselves (not through hosts.podman) get the settings
    this machine needs to create containers, through CONTAINERS_CONF.
    """
    problem = hosts.capability_problem()
    if problem is None:
        hosts.ensure_image()
        problem = hosts.capability_problem()  # the image exists now: this runs a container
    if problem is not None:
        _unavailable(problem)
    conf = containers_conf(hosts.IMAGE)
    if conf is not None:
        os.environ.setdefault("CONTAINERS_CONF", str(conf))
    hosts.cleanup_stale()
    return hosts.IMAGE


@pytest.fixture
def bare_host(host_image: str) -> Iterator[TestHost]:
    """A fresh bare host (no python), removed after the test."""
    host = hosts.start_host()
    yield host
    host.remove()


@pytest.fixture
def host_factory(host_image: str) -> Iterator[HostFactory]:
    """host_factory(n=1, network=None) -> n fresh hosts; all removed after the test."""
    started: list[TestHost] = []

    def factory(n: int = 1, network: str | None = None) -> list[TestHost]:
        new = hosts.start_hosts(n, network=network)
        started.extend(new)
        return new

    yield factory
    for host in started:
        host.remove()


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A passphrase-less ed25519 key; its public half is ssh_key.with_suffix(".pub")."""
    key = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    cmd = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hostout-tests", "-f", str(key)]
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)
    return key


@pytest.fixture(scope="session")
def internal_network(host_image: str) -> Iterator[str]:
    """A podman network with no way out; hosts on it are reached at their address, port 22."""
    if hosts.podman("network", "exists", INTERNAL_NETWORK, check=False).returncode != 0:
        hosts.podman("network", "create", "--internal", INTERNAL_NETWORK)
    yield INTERNAL_NETWORK
    hosts.podman("network", "rm", INTERNAL_NETWORK, check=False)


@pytest.fixture(scope="session")
def base_image() -> str:
    """The bare Debian base image (no sshd) image builds start from, built if missing."""
    problem = hosts.capability_problem()
    if problem is not None:
        _unavailable(problem)
    testing.ensure_base_image()
    conf = containers_conf(testing.BASE_IMAGE)
    if conf is not None:
        os.environ.setdefault("CONTAINERS_CONF", str(conf))
    return testing.BASE_IMAGE


@pytest.fixture(scope="session")
def docker_service(base_image: str) -> Iterator[str]:
    """Podman's Docker-compatible service on a socket of its own, for the session; its
    address is DOCKER_HOST while the session runs (so bin/hostout finds it)."""
    try:
        with testing.podman_service(image=base_image) as address, \
                pytest.MonkeyPatch.context() as patch:
            patch.setenv("DOCKER_HOST", address)
            yield address
    except testing.TestHostError as err:
        _unavailable(str(err))
