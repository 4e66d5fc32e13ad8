"""Finding commands: the built-in fabfile, plugin eggs' ``fabric`` entry points, fabfiles,
and the plugins shipped with hostout (:data:`BUILTIN_PLUGINS`).

Modules are imported once per process however many hosts use them; each host gets its own
:class:`Registry` because hosts may name different plugins and fabfiles.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

from ..config.settings import HostSettings
from ..errors import PluginError
from .registry import Command, Registry, commands_of

BUILTIN_ORIGIN = "collective.hostout"
BUILTIN_MODULE = "collective.hostout.builtin.fabfile"
#: Built-in modules, in order: deploy's commands, then those hostout 1 also had.
BUILTIN_MODULES = (BUILTIN_MODULE, "collective.hostout.builtin.legacy")

#: Plugins shipped inside collective.hostout, under their hostout 1 egg names so that
#: ``extends = hostout.supervisor`` keeps working: name -> package. The package's ``fabfile``
#: module holds the commands; its ``Recipe`` (optional) checks and defaults the options at
#: buildout time, and ``REQUIRES`` names the distributions bin/hostout then needs.
#: These names win over an installed egg of the same name (hostout 1's, say).
BUILTIN_PLUGINS = {
    "hostout.supervisor": "collective.hostout.plugins.supervisor",
    "hostout.cloud": "collective.hostout.plugins.cloud",
}


@cache
def _builtin() -> tuple[Command, ...]:
    return tuple(cmd for module in BUILTIN_MODULES
                 for cmd in commands_of(importlib.import_module(module), BUILTIN_ORIGIN))


@cache
def plugin_commands(egg: str) -> tuple[Command, ...]:
    """Commands of every ``fabric`` entry point of the installed distribution ``egg`` (or of
    the plugin shipped with hostout under that name)."""
    if egg in BUILTIN_PLUGINS:
        name = BUILTIN_PLUGINS[egg] + ".fabfile"
        try:
            module = importlib.import_module(name)
        except ImportError as err:
            raise PluginError(f"cannot load {egg}: {err}", cause=err) from err
        return tuple(commands_of(module, egg))
    try:
        dist = importlib.metadata.distribution(egg)
    except importlib.metadata.PackageNotFoundError:
        raise PluginError(f"plugin egg {egg} is not installed; run bin/buildout") from None
    found: list[Command] = []
    for ep in dist.entry_points.select(group="fabric"):
        try:
            module = ep.load()
        except Exception as err:
            raise PluginError(f"cannot load fabfile {ep.value} of {egg}: {err}",
                              cause=err) from err
        if not isinstance(module, ModuleType):
            raise PluginError(f"fabric entry point {ep.value} of {egg} is not a module")
        found.extend(commands_of(module, egg))
    return tuple(found)


@cache
def fabfile_commands(path: str) -> tuple[Command, ...]:
    """Commands of a fabfile given by path, imported under a name unique to that path."""
    location = Path(path)
    if not location.is_file():
        raise PluginError(f"fabfile {path} does not exist; fix fabfiles and run bin/buildout")
    name = "hostout_fabfile_" + hashlib.sha1(str(location).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, location)
    if spec is None or spec.loader is None:
        raise PluginError(f"fabfile {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[name]
        raise PluginError(f"fabfile {path} failed to import: {type(err).__name__}: {err}",
                          cause=err) from err
    return tuple(commands_of(module, str(location)))


def registry_for(settings: HostSettings) -> Registry:
    """Built-ins, then plugins in ``extends`` order, then fabfiles: later overrides earlier."""
    registry = Registry(_builtin())
    for egg in settings.plugins:
        for cmd in plugin_commands(egg):
            registry.add(cmd)
    for fabfile in settings.fabfiles:
        for cmd in fabfile_commands(fabfile):
            registry.add(cmd)
    return registry
