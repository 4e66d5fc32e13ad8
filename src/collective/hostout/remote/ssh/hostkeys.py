"""Host key verification, as OpenSSH's StrictHostKeyChecking accept-new / yes."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry, InvalidHostKey


class KnownHosts:
    """known_hosts files read once per invocation (again only when changed, e.g. by
    :class:`AcceptNew`) and shared by its hosts; each client learns its own host's keys only.

    (paramiko's ``HostKeys.load`` checks every line against all lines before it, so loading
    a file of n lines into each of n connections costs n**3 name matches and n**2 key
    parses: a known_hosts of 50 hosts made a 50-host run spend most of its CPU there.)
    """

    def __init__(self) -> None:
        self._files: dict[Path, tuple[tuple[int, int], list[tuple[tuple[str, ...], str, int]]]]
        self._files = {}
        self._lock = threading.Lock()

    def _lines(self, known_hosts: Path) -> list[tuple[tuple[str, ...], str, int]]:
        """(host patterns, line, line number) of every entry; keys are parsed on demand."""
        try:
            st = known_hosts.stat()
            version = (st.st_mtime_ns, st.st_size)
        except OSError:
            version = (0, -1)
        with self._lock:
            cached = self._files.get(known_hosts)
            if cached is not None and cached[0] == version:
                return cached[1]
            try:
                text = known_hosts.read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            lines = []
            for number, raw in enumerate(text.splitlines(), 1):
                line = raw.strip()
                if line and not line.startswith("#"):
                    lines.append((tuple(line.split(None, 1)[0].split(",")), line, number))
            self._files[known_hosts] = (version, lines)
            return lines

    def install(self, client: paramiko.SSHClient, known_hosts: Path, hostname: str,
                port: int) -> None:
        """Teach the client the keys ``known_hosts`` has for this host (as ``load`` does)."""
        name = entry_name(hostname, port)
        target = client.get_host_keys()
        for patterns, line, number in self._lines(known_hosts):
            if not any(_matches(pattern, name) for pattern in patterns):
                continue
            try:
                entry = HostKeyEntry.from_line(line, number)
            except (InvalidHostKey, paramiko.SSHException, ValueError):
                continue  # as paramiko's own load: a broken line is no key
            if entry is not None and entry.key is not None:
                target.add(name, entry.key.get_name(), entry.key)


def _matches(pattern: str, name: str) -> bool:
    """paramiko's rule: the name itself, or its salted hash (``|1|salt|hash``)."""
    if pattern.startswith("|1|"):
        return paramiko.HostKeys.hash_host(name, pattern) == pattern
    return pattern == name


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
