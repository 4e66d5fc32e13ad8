"""The tests' name for :mod:`collective.hostout.testing`, the throwaway hosts hostout ships.

Tests (and the other helpers of tests/) may keep writing ``import hosts`` or
``from hosts import TestHost, start_host``; everything lives in the package. What is only the
tests' own is here: the type of the conftest fixture ``host_factory``.
"""

from __future__ import annotations

from typing import Protocol

from collective.hostout.testing import (
    IMAGE,
    TestHost,
    TestHostError,
    capability_problem,
    cleanup_stale,
    ensure_image,
    podman,
    start_host,
    start_hosts,
    unused_port,
)
from collective.hostout.testing.hosts import LABEL, PID_LABEL

__all__ = [
    "IMAGE",
    "LABEL",
    "PID_LABEL",
    "HostFactory",
    "TestHost",
    "TestHostError",
    "capability_problem",
    "cleanup_stale",
    "ensure_image",
    "podman",
    "start_host",
    "start_hosts",
    "unused_port",
]


class HostFactory(Protocol):
    """Type of the conftest fixture host_factory."""

    def __call__(self, n: int = 1, network: str | None = None) -> list[TestHost]: ...
