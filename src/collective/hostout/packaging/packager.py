"""The local side of a deploy: develop releases and distribution files, made here once for
all the hosts of an invocation (they may run side by side), in hostout's working directory
``parts/hostout``. Unit tests give a Context another object with the same two methods."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..config.facts import BuildoutFacts
from ..files import write_atomically
from ..shared import Shared
from . import dists, resolve
from .release import Release, release_all

#: Each shipped wheel's Requires-Python, by file name, so an unchanged deploy opens no wheel.
REQUIRES_PYTHON = ".requires-python.json"


class Packager:
    def __init__(self, facts: BuildoutFacts, shared: Shared | None = None) -> None:
        self.facts = facts
        self.shared = shared or Shared()

    def releases(self) -> list[Release]:
        """Every develop package released (content-hashed, rebuilt only when changed)."""
        return self.shared.once(("releases",), lambda: release_all(
            list(self.facts.develop), self.facts.work_dir("releases"), self.facts.outputs()))

    def distributions(self, pins: Mapping[str, str], target: dists.Target) -> dict[str, Path]:
        """A distribution file for every pin that fits ``target``: from buildout's download
        cache, hostout's own, else downloaded once."""
        caches = [resolve.scratch_cache(self.facts) / "dist"]
        key = ("dists", tuple(sorted(pins.items())), target)
        return self.shared.once(key, lambda: self._collect(pins, caches, target))

    def _collect(self, pins: Mapping[str, str], caches: list[Path], target: dists.Target
                 ) -> dict[str, Path]:
        known_file = self.facts.work_dir("dists") / REQUIRES_PYTHON
        try:
            known = json.loads(known_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = {}
        before = dict(known)
        found = dists.collect(pins, self.facts.work_dir("dists"), caches=caches, target=target,
                              known=known)
        if known != before:
            write_atomically(known_file, json.dumps(known, indent=0, sort_keys=True))
        return found

    def resolution(self, cfg: Path, *, pins: Mapping[str, str], pinned_by_cfg: Mapping[str, str],
                   parts: Sequence[str] = (), skip_parts: Sequence[str] = (),
                   markers: Mapping[str, str] | None = None) -> resolve.Resolution:
        """The chosen cfg's distributions and parts, resolved here by buildout (once for all
        hosts building the same cfg; cached on disk by the digest of its inputs)."""
        key = ("resolution", str(cfg), tuple(sorted(pins.items())), tuple(parts),
               tuple(skip_parts), tuple(sorted((markers or {}).items())))
        # hosts building the same cfg with other parts (or markers) resolve it in the same
        # scratch directory: one at a time
        scratch = self.shared.once(("scratch", str(cfg)), threading.Lock)

        def make() -> resolve.Resolution:
            with scratch:
                return resolve.resolve(self.facts, cfg, pins=pins, pinned_by_cfg=pinned_by_cfg,
                                       parts=parts, skip_parts=skip_parts, markers=markers)

        return self.shared.once(key, make)
