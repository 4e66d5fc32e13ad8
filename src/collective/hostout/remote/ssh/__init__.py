"""Hosts over SSH: the only package that imports Fabric and paramiko."""

from .connection import SUDO_PROMPT, SshRemote, wire
from .hostkeys import KnownHosts

__all__ = ["SUDO_PROMPT", "KnownHosts", "SshRemote", "wire"]
