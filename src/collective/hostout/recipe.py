"""The ``recipe = collective.hostout`` buildout recipe.

Buildout resolves every option (``<=`` macros, ``${...}``, ``+=``); the recipe only adds
hostout's own ``extends`` (inherit another part, or load a plugin egg), then writes all hostout
parts of the buildout into one options file and generates ``bin/hostout`` bound to it.

Every hostout part registers itself when buildout initialises it, which happens for all parts
before any is installed, so whichever part installs or updates writes the complete file.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from collections.abc import Iterator, MutableMapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .commands.discovery import BUILTIN_PLUGINS
from .config import optionsfile
from .config.facts import BuildoutFacts
from .config.optionsfile import RELATIVE_LOCATION, OptionsFile, digests
from .config.settings import MERGED_OPTIONS, build_settings, lines, words
from .errors import HostoutError
from .packaging import downloads, versions
from .packaging.scratch import SCRATCH_ENV
from .packaging.usage import UsageRecorder

log = logging.getLogger("collective.hostout")

_REGISTRY_ATTR = "_collective_hostout_parts"
_RECORDER_ATTR = "_collective_hostout_usage"
SCRIPT_EGG = "collective.hostout"


def _registry(buildout: Any) -> dict[str, Recipe]:
    registry = getattr(buildout, _REGISTRY_ATTR, None)
    if registry is None:
        registry = {}
        setattr(buildout, _REGISTRY_ATTR, registry)
    return registry


def _recorder(buildout: Any) -> UsageRecorder:
    """What this buildout run uses, watched from the first hostout part's initialisation on
    (before any part installs; recipes loaded earlier are added at the end)."""
    recorder = getattr(buildout, _RECORDER_ATTR, None)
    if recorder is None:
        recorder = UsageRecorder().start()
        setattr(buildout, _RECORDER_ATTR, recorder)
        # Buildout calls this last, and only when every part installed: a run that failed
        # half-way used only half the distributions, so it must not rewrite the file.
        done = buildout._print_namespace_packages

        def completed() -> None:
            recorder.completed = True
            done()

        buildout._print_namespace_packages = completed
    return recorder


def _config_sources(buildout: Any) -> set[str]:
    """Every local file buildout read its configuration from (extends chain, defaults)."""
    found: set[str] = set()
    annotated = getattr(buildout, "_annotated", None) or {}
    for section in annotated.values():
        for key in section.values():
            for entry in getattr(key, "history", ()):
                source = getattr(entry, "source", "")
                if source and Path(source).is_file():
                    found.add(str(Path(source).resolve()))
    return found


def _has_recipe(egg: str, entry: str) -> bool:
    """Whether the installed plugin egg declares the ``zc.buildout`` entry point ``entry``."""
    import pkg_resources

    try:
        dist = pkg_resources.get_distribution(egg)
    except pkg_resources.DistributionNotFound:
        return False
    return dist.get_entry_info("zc.buildout", entry) is not None


class Recipe:
    def __init__(self, buildout: Any, name: str, options: MutableMapping[str, str]) -> None:
        try:
            self._init(buildout, name, options)
        except HostoutError as err:  # buildout prints a UserError as one clean line
            import zc.buildout

            raise zc.buildout.UserError(str(err)) from err

    def _init(self, buildout: Any, name: str, options: MutableMapping[str, str]) -> None:
        self.buildout, self.name, self.options = buildout, name, options
        self.directory = Path(buildout["buildout"]["directory"])
        self.location = (
            Path(buildout["buildout"]["parts-directory"]) / RELATIVE_LOCATION
        )
        self.plugins: list[str] = []
        self.requires: list[str] = []  # what the plugins shipped with hostout need
        self.subrecipes: list[Any] = []
        self.recorder = _recorder(buildout)
        with self.recorder.paused():  # plugin eggs are hostout's, not the build's
            self._extend(options, seen=[name])

        fabfiles = [str((self.directory / f).resolve()) for f in lines(options.get("fabfiles"))]
        for fabfile in fabfiles:
            if not Path(fabfile).is_file():
                raise HostoutError(f"fabfiles: no such file {fabfile}", host=name)
        options["fabfiles"] = "\n".join(fabfiles)
        # Defaults live in config.settings, never in options: a part that extends this one
        # must get its own defaults (path /var/buildout/<its name>), not ours.
        # Fail at buildout time, not at deploy time, on options that cannot be right.
        settings = build_settings(name, dict(options), buildout_directory=self.directory)
        registry = _registry(buildout)
        if not registry:  # once per buildout run: record versions when buildout is done
            atexit.register(self._record_versions)
        registry[name] = self
        # what recipes and extends download, so a deploy can fetch or ship it
        downloads.watch(buildout).add_config(self.directory / settings.buildout_cfg)
        self.versionsfile = settings.versionsfile

    # -- hostout's extends: another part, or a plugin egg --------------------------------
    def _extend(self, options: MutableMapping[str, str], seen: list[str]) -> None:
        for ext in words(options.get("extends")):
            if ext in seen:
                continue
            seen.append(ext)
            part = self._section(ext)
            if part is None:
                self._load_plugin(ext)
                continue
            self._extend(part, seen)
            for key, value in part.items():
                if key in MERGED_OPTIONS:  # the extended part's first: ours run (override) later
                    merged = list(lines(value))
                    merged += [v for v in lines(self.options.get(key)) if v not in merged]
                    self.options[key] = "\n".join(merged)
                elif key not in self.options and key != "recipe":
                    self.options[key] = value

    def _section(self, name: str) -> MutableMapping[str, str] | None:
        if name not in self.buildout._raw:
            return None
        return self.buildout[name]

    def _load_plugin(self, spec: str) -> None:
        from zc.buildout.buildout import _install_and_load

        egg, _, entry = spec.partition(":")
        if egg in BUILTIN_PLUGINS:  # shipped with hostout: never looked up on an index
            self._load_builtin(egg)
            return
        try:
            recipe_class = _install_and_load(egg, "zc.buildout", entry or "default", self.buildout)
        except ImportError as err:
            if _has_recipe(egg, entry or "default"):  # it is there and failed: say so
                raise HostoutError(
                    f"extends = {spec}: the plugin's recipe failed to import "
                    f"({type(err).__name__}: {err}); its option defaults would be lost",
                    host=self.name, cause=err) from err
            if entry:
                raise HostoutError(f"extends = {spec}: {egg} has no zc.buildout entry point "
                                   f"{entry!r}", host=self.name, cause=err) from err
            recipe_class = None  # an egg with fabfiles only, no recipe of its own
        except Exception as err:
            raise HostoutError(
                f"extends = {spec}: not a part of this buildout, and the egg could not be "
                f"installed ({err})",
                host=self.name,
                cause=err,
            ) from err
        if recipe_class is not None:
            self.subrecipes.append(recipe_class(self.buildout, self.name, self.options))
        if egg not in self.plugins:
            self.plugins.append(egg)

    def _load_builtin(self, name: str) -> None:
        import importlib

        module = importlib.import_module(BUILTIN_PLUGINS[name])
        recipe_class = getattr(module, "Recipe", None)
        if recipe_class is not None:
            self.subrecipes.append(recipe_class(self.buildout, self.name, self.options))
        for requirement in getattr(module, "REQUIRES", ()):
            if requirement not in self.requires:
                self.requires.append(requirement)
        if name not in self.plugins:
            self.plugins.append(name)

    # -- install / update ---------------------------------------------------------------
    def install(self) -> list[str]:
        return self._write()

    def update(self) -> list[str]:
        return self._write()

    def _write(self) -> list[str]:
        installed: list[str] = []
        for sub in self.subrecipes:
            result = sub.update() if hasattr(sub, "update") else sub.install()
            if isinstance(result, str):
                installed.append(result)
            elif result:
                installed.extend(result)
        parts = _registry(self.buildout)
        eggs = {p for recipe in parts.values() for p in recipe.plugins
                if p not in BUILTIN_PLUGINS}  # those are modules of collective.hostout
        eggs |= {r for recipe in parts.values() for r in recipe.requires}
        with self.recorder.paused():  # bin/hostout's eggs are not the build's
            installed += self._script(sorted(eggs))
        OptionsFile(
            location=self.location,
            facts=self._buildout_facts(),
            hosts={
                name: {"options": dict(recipe._own_options()), "plugins": recipe.plugins}
                for name, recipe in sorted(parts.items())
            },
            sources=digests(_config_sources(self.buildout)),
        ).write()
        installed.append(str(self.location))
        return installed

    def _record_versions(self) -> None:
        """At the end of bin/buildout: write every hostout part's versionsfile with every
        distribution the build used (hostout's own parts and plugins left out)."""
        b = self.buildout["buildout"]
        section = b.get("versions", "versions")
        pins = dict(self.buildout._raw.get(section, {}))
        registry = _registry(self.buildout)
        plugins = {p for recipe in registry.values() for p in recipe.plugins}
        self.recorder.stop()
        if not self.recorder.completed or os.environ.get(SCRATCH_ENV):
            return  # a failed build, or deploy's scratch build of the chosen cfg
        used = self.recorder.finish(self.buildout, skip=[SCRIPT_EGG, *sorted(plugins)])
        used_versions = versions.used_versions(
            [(u.name, u.version) for u in used if not u.develop], pins=pins,
            environment=versions.environment_versions(versions.BOOTSTRAP_DISTS))
        written: set[Path] = set()
        for recipe in _registry(self.buildout).values():
            path = recipe.versionsfile.resolve()
            if path not in written:
                written.add(path)
                versions.write(path, used_versions, section)
        # A versions file the buildout extends is one of its sources: keep bin/hostout's
        # staleness check about the user's edits, not about this file we just wrote.
        try:
            options = optionsfile.load(self.location)
        except HostoutError:
            return
        refreshed = {src: (optionsfile.digest(Path(src)) if Path(src) in written else was)
                     for src, was in options.sources.items()}
        if refreshed != dict(options.sources):
            replace(options, sources=refreshed).write()

    def _own_options(self) -> Iterator[tuple[str, str]]:
        for key in self.options:
            if not key.startswith("_") and key != "__buildout_signature__":
                yield key, self.options[key]

    def _buildout_facts(self) -> BuildoutFacts:
        b = self.buildout["buildout"]
        cache = b.get("download-cache", "")
        return BuildoutFacts(
            directory=self.directory,
            bin_directory=Path(b["bin-directory"]),
            parts_directory=Path(b["parts-directory"]),
            develop=tuple((self.directory / d).resolve() for d in words(b.get("develop"))),
            download_cache=(self.directory / cache) if cache else None,
            versions_section=b.get("versions", "versions"),
            python=sys.executable,
            eggs_directory=Path(b["eggs-directory"]),
        )

    def _script(self, plugins: list[str]) -> list[str]:
        """bin/hostout, made by zc.recipe.egg's scripts recipe as buildout loads any recipe:
        at the version the buildout pins, from its eggs or index. hostout does not depend on
        zc.recipe.egg itself, so a copy in the environment of buildout cannot clash with a
        buildout pinning another version (Zope pins zc.recipe.egg = 4.0.0)."""
        from zc.buildout.buildout import _install_and_load

        scripts = _install_and_load("zc.recipe.egg", "zc.buildout", "scripts", self.buildout)
        options = {
            "eggs": "\n".join([SCRIPT_EGG, *plugins]),
            "scripts": "hostout",
            "arguments": f"sys.argv[1:], options_file={str(self.location)!r}",
        }
        return list(scripts(self.buildout, self.name, options).install())

