"""Seed-style fabfiles: ``from collective.hostout import api`` for ``from fabric import api``.

A thin layer over the :class:`~collective.hostout.commands.context.Context` of the command
that is running (held in a context variable, so hosts running side by side never see each
other's): ``api.env`` shows the host's options as attributes (with hostout's defaults), and
``run``, ``sudo``, ``put``, ``get``, ``cd``, ``lcd``, ``local``, ``settings``, ``hide``,
``require`` and ``abort`` behave as Fabric 1's did for hostout 1 fabfiles.
``api.env.superfun()`` calls the overridden command and ``api.env.hostout.<command>()``
any other command. The implementation is in :mod:`collective.hostout.legacy`.
"""

from __future__ import annotations

from .legacy.env import env
from .legacy.operations import (
    OutputString,
    abort,
    cd,
    fastprint,
    get,
    hide,
    lcd,
    local,
    prefix,
    put,
    puts,
    quiet,
    require,
    run,
    runs_once,
    settings,
    shell_env,
    show,
    sudo,
    task,
    warn,
    warn_only,
)

__all__ = ["OutputString", "abort", "cd", "env", "fastprint", "get", "hide", "lcd", "local",
           "prefix", "put", "puts", "quiet", "require", "run", "runs_once", "settings",
           "shell_env", "show", "sudo", "task", "warn", "warn_only"]
