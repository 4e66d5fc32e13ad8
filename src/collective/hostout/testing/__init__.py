"""Throwaway hosts: try a deploy, test a plugin or a fabfile against a real sshd.

A throwaway host is a podman container of a bare Debian server (sshd, sudo, CA certificates,
no Python), as a deployment target is found: the login user may sudo after giving its
password, root cannot log in. It is what hostout's own tests, demo and benchmarks deploy to,
and what ``hostout-testhost start`` gives users (see :mod:`.cli`).

From Python (a test suite, say)::

    from collective.hostout.testing import capability_problem, ensure_image, start_host

    problem = capability_problem()          # None, or why hosts cannot run here
    ensure_image()                          # builds the image once (needs root)
    host = start_host(publish=(8080,))      # waits until sshd answers
    try:
        ...  # host.hoststring, host.user, host.password, host.url(8080), host.exec("...")
        ...  # fetch(host.url(8080)): the page, retried while the app starts
        ...  # with Poller(host.url(8080)) as poll: deploy  -> poll.failures, poll.longest
    finally:
        host.remove()

``ensure_base_image()`` makes :data:`BASE_IMAGE`, a bare Debian base image (no sshd) for
``hostout docker`` where no registry can be reached (``docker-image = localhost/...``), and
``podman_service()`` runs Podman's Docker-compatible service for a block (its address is
what ``DOCKER_HOST`` takes).

Nothing here imports Fabric or paramiko: the hosts are reached the way users reach theirs.
"""

from __future__ import annotations

from .hosts import (
    Poller,
    TestHost,
    capability_problem,
    cleanup_stale,
    fetch,
    start_host,
    start_hosts,
    start_named_host,
    unused_port,
)
from .image import (
    BASE_IMAGE,
    IMAGE,
    build_image,
    debian_mirrors,
    ensure_base_image,
    ensure_image,
    mirror_host,
)
from .podman import PodmanError, TestHostError, podman
from .service import podman_service

__all__ = [
    "BASE_IMAGE",
    "IMAGE",
    "PodmanError",
    "Poller",
    "TestHost",
    "TestHostError",
    "build_image",
    "capability_problem",
    "cleanup_stale",
    "debian_mirrors",
    "ensure_base_image",
    "ensure_image",
    "fetch",
    "mirror_host",
    "podman",
    "podman_service",
    "start_host",
    "start_hosts",
    "start_named_host",
    "unused_port",
]
