"""What a zc.buildout run really used: every distribution in the working sets buildout
resolved (the parts' eggs, the recipes and extensions it loaded), wherever buildout found it.

``get_picked_versions()`` misses two kinds (notes/buildout6.md): distributions buildout took
from its own environment (the venv beside zc.buildout: zc.recipe.egg, rich, cryptography...)
and those another distribution's metadata pins with ``==`` (httpx -> ``httpcore==1.*``).
So instead of asking what buildout *picked*, a :class:`UsageRecorder` watches every working
set zc.buildout's ``Installer.install`` returns for the rest of the process, and at the end
adds the recipes and extensions loaded, resolved in the process's working set exactly as
buildout does for a part's signature (``pkg_resources.working_set.resolve([recipe])``).

Runs inside a buildout process only (the recipe, and the scratch resolution's driver):
pkg_resources and zc.buildout are imported lazily.
"""

from __future__ import annotations

import json
import os
import site
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

#: Recorders alive in this process. ``Installer.install`` is patched once per process
#: (it is a class of zc.buildout's) and tells each of them what it resolved.
_RECORDERS: list[UsageRecorder] = []
_PATCH_LOCK = threading.Lock()
_PATCHED_FLAG = "_collective_hostout_usage"

#: zc.recipe.egg keeps every working set its parts computed on the buildout object.
_ZC_RECIPE_EGG_CACHE = "_zc_recipe_egg_working_set_cache"


@dataclass(frozen=True)
class Used:
    """One distribution a build used."""

    name: str  # its project name as its metadata spells it
    version: str
    location: str  # the egg, or the directory holding it (site-packages, develop-eggs)
    develop: bool  # a develop (editable) package: released separately, never pinned


def _requirement(spec: str) -> Any:
    import pkg_resources

    return pkg_resources.Requirement.parse(spec)


def _under(location: str, directory: str) -> bool:
    d = os.path.realpath(directory)
    return location == d or location.startswith(d + os.sep)


def _is_develop(dist: Any, develop_dirs: Iterable[str], installed: Iterable[str] = ()) -> bool:
    """Whether ``dist`` is a develop package: found in (or linked from) buildout's
    develop-eggs directory, or installed editable (pip -e) in buildout's environment.
    Nothing in ``installed`` (the eggs directory, buildout's environment) is, even where it
    lies inside a develop directory (``develop = .``: eggs/ and a .venv beside setup.py).
    (pkg_resources' ``precedence`` cannot tell: everything on a path entry is DEVELOP_DIST.)"""
    location = os.path.realpath(dist.location or "")
    if not any(_under(location, d) for d in installed if d):
        for d in develop_dirs:
            if _under(location, d):
                return True
    # a PEP 660 editable install (pip install -e) in buildout's own environment
    try:
        if dist.has_metadata("direct_url.json"):
            info = json.loads(dist.get_metadata("direct_url.json"))
            return bool(info.get("dir_info", {}).get("editable"))
    except (OSError, ValueError):
        return False
    return False


def _name(dist: Any) -> str:
    """The project name as its metadata spells it (``zc.buildout``, not ``zc-buildout``)."""
    try:
        return str(dist._parsed_pkg_info["Name"]) or dist.project_name
    except (AttributeError, KeyError, TypeError, OSError):
        return dist.project_name


def closure(ws: Any, specs: Iterable[Any]) -> list[Any]:
    """The distributions of ``ws`` that ``specs`` (requirement strings or objects) need,
    their requirements followed with their extras and environment markers, as buildout's
    own resolution does; requirements ``ws`` does not hold are left out."""
    import pkg_resources
    from packaging.utils import canonicalize_name

    by_name = {canonicalize_name(k): d for k, d in ws.by_key.items()}
    todo = [s if not isinstance(s, str) else _requirement(s) for s in specs]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    found: dict[str, Any] = {}
    while todo:
        req = todo.pop()
        if req.marker is not None:
            try:
                if not req.marker.evaluate():
                    continue
            except Exception:  # a marker naming 'extra' outside an extra: not ours to judge
                pass
        key = (req.key, tuple(sorted(req.extras)))
        if key in seen:
            continue
        seen.add(key)
        dist = ws.by_key.get(req.key) or by_name.get(canonicalize_name(req.key))
        if dist is None:
            continue
        found[dist.key] = dist
        try:
            todo.extend(dist.requires(req.extras))
        except pkg_resources.UnknownExtra:
            todo.extend(dist.requires())
    return list(found.values())


class UsageRecorder:
    """Records the distributions of every working set buildout resolves from now on.

    ``start()`` before buildout resolves anything worth recording; ``paused()`` around
    resolutions that are not the build's (hostout's own bin/hostout); ``finish(buildout)``
    at the end adds the recipes and extensions loaded and returns what was used.
    """

    def __init__(self) -> None:
        self._dists: dict[tuple[str, str], Any] = {}
        self._paused = 0
        self._lock = threading.Lock()
        self.completed = False  # set by whoever knows the run finished well

    # -- watching buildout ----------------------------------------------------------------
    def start(self) -> UsageRecorder:
        import zc.buildout.easy_install as easy_install

        with _PATCH_LOCK:
            installer = easy_install.Installer
            if not getattr(installer.install, _PATCHED_FLAG, False):
                original = installer.install

                def install(self: Any, specs: Any, working_set: Any = None) -> Any:
                    ws = original(self, specs, working_set)
                    for recorder in list(_RECORDERS):
                        recorder.add(ws, specs)
                    return ws

                setattr(install, _PATCHED_FLAG, True)
                installer.install = install
            if self not in _RECORDERS:
                _RECORDERS.append(self)
        return self

    def stop(self) -> None:
        with _PATCH_LOCK:
            if self in _RECORDERS:
                _RECORDERS.remove(self)

    @contextmanager
    def paused(self) -> Iterator[None]:
        with self._lock:
            self._paused += 1
        try:
            yield
        finally:
            with self._lock:
                self._paused -= 1

    def add(self, ws: Any, specs: Iterable[Any]) -> None:
        """Record the closure of ``specs`` in the working set ``ws``."""
        if self._paused:
            return
        for dist in closure(ws, list(specs)):
            with self._lock:
                self._dists[(dist.key, dist.version)] = dist

    # -- the end of the run -----------------------------------------------------------------
    def finish(self, buildout: Any, *, skip: Iterable[str] = ()) -> list[Used]:
        """Everything used: the working sets recorded, zc.recipe.egg's cached ones, and the
        recipes of the parts buildout initialised and the extensions it loaded (those found
        in buildout's own environment are never installed, so never seen as resolved).

        ``skip`` names eggs that are not the build's: parts with those recipes, and cached
        working sets made for them (hostout's own part and bin/hostout), are left out."""
        import pkg_resources

        skipped = {_requirement(s).key for s in skip}
        b = buildout["buildout"]
        specs: list[str] = list(b.get("extensions", "").split())
        for part in getattr(buildout, "_parts", ()):
            recipe = buildout[part].get("recipe", "")
            egg = recipe.split(":")[0].strip()
            if egg and _requirement(egg).key not in skipped:
                specs.append(egg)
        for key, ws in getattr(buildout, _ZC_RECIPE_EGG_CACHE, {}).items():
            wanted = [_requirement(d) for d in key[0]]
            if wanted and wanted[0].key not in skipped:
                self.add(ws, wanted)
        self.add(pkg_resources.working_set, specs)
        develop_dirs = [b.get("develop-eggs-directory", "")]
        develop_dirs += [os.path.join(b.get("directory", ""), d)
                         for d in b.get("develop", "").split()]
        develop_dirs = [d for d in develop_dirs if d]
        # (site-packages, not sys.prefix: buildout's docs make the buildout directory the venv)
        installed = [b.get("eggs-directory", ""), *site.getsitepackages()]
        used = {}
        for (key, version), dist in sorted(self._dists.items()):
            used[key, version] = Used(_name(dist), version, dist.location or "",
                                      _is_develop(dist, develop_dirs, installed))
        return list(used.values())


def versions_of(used: Iterable[Used]) -> dict[str, str]:
    """``{name: version}`` of what a build used, develop packages left out."""
    return {u.name: u.version for u in used if not u.develop}


def conflicts(used: Iterable[Used]) -> Mapping[str, list[str]]:
    """Names used at more than one version in one run (a part's own pins, or buildout's
    environment beside an egg): the versions file can pin only one of them."""
    seen: dict[str, list[str]] = {}
    for u in used:
        if not u.develop:
            seen.setdefault(u.name.lower(), []).append(u.version)
    return {k: v for k, v in seen.items() if len(v) > 1}
