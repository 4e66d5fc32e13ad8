"""collective.hostout 2: standardised deployment of zc.buildout based applications with Fabric.

What fabfile and plugin authors use, importable from here::

    from collective.hostout import command, Context, HostoutError

- :func:`command` marks a fabfile function as a command; :class:`Context` is what a native
  command gets as its first argument (``c.run``, ``c.sudo``, ``c.put``, ``c.settings``...);
- :class:`Remote` is the seam every command and step talks to a host through, with
  :class:`RemoteCommand` (a shell command as data) run as an :class:`Account`;
  :class:`RecordingRemote` stands in for a host in unit tests;
- the errors: :class:`HostoutError` and its subclasses, each printed as one line;
- :mod:`collective.hostout.api`, :mod:`collective.hostout.contrib` and
  :mod:`collective.hostout.hostout` keep hostout 1 (Fabric 1 style) fabfiles and plugins
  working (README: "Porting from hostout 1").

Names are loaded on first use, so ``bin/buildout`` (which imports the recipe) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    AuthError,
    BootstrapError,
    CommandFailed,
    ConfigError,
    ConnectError,
    DistributionError,
    HostKeyError,
    HostoutError,
    NotBootstrapped,
    PluginError,
    ReleaseError,
    RemoteError,
    StaleConfigError,
    UnsupportedSystem,
    UsageError,
)

_LAZY = {
    "command": "collective.hostout.commands.registry",
    "Context": "collective.hostout.commands.context",
    "Remote": "collective.hostout.remote.base",
    "Result": "collective.hostout.remote.base",
    "RecordingRemote": "collective.hostout.remote.recording",
    "RemoteCommand": "collective.hostout.shell",
    "Account": "collective.hostout.shell",
    "HostSettings": "collective.hostout.config.settings",
}

__all__ = [
    "Account",
    "AuthError",
    "BootstrapError",
    "CommandFailed",
    "ConfigError",
    "ConnectError",
    "Context",
    "DistributionError",
    "HostKeyError",
    "HostSettings",
    "HostoutError",
    "NotBootstrapped",
    "PluginError",
    "RecordingRemote",
    "ReleaseError",
    "Remote",
    "RemoteCommand",
    "RemoteError",
    "Result",
    "StaleConfigError",
    "UnsupportedSystem",
    "UsageError",
    "command",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'collective.hostout' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
