"""Host key verification, as OpenSSH's StrictHostKeyChecking accept-new / yes."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import paramiko


def load(client: paramiko.SSHClient, known_hosts: Path) -> None:
    """Teach the client every key in ``known_hosts`` (a changed key then fails to connect)."""
    if known_hosts.is_file():
        client.get_host_keys().load(str(known_hosts))


def entry_name(hostname: str, port: int) -> str:
    return hostname if port == 22 else f"[{hostname}]:{port}"


class AcceptNew(paramiko.MissingHostKeyPolicy):
    """Record a host's key the first time it is seen; a known host with another key is
    refused by paramiko itself (BadHostKeyException) before any policy is asked."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        append(self.known_hosts, hostname, key)


class Strict(paramiko.MissingHostKeyPolicy):
    """Refuse any host whose key is not already known."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise paramiko.SSHException(f"host key for {hostname} is not in known_hosts")


def append(known_hosts: Path, hostname: str, key: paramiko.PKey) -> None:
    """Add one line to known_hosts, under a lock so parallel hosts never interleave."""
    known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
    fd = os.open(known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.write(line)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
