"""The chosen cfg's complete set of distributions, resolved on this machine by buildout itself.

The versions file holds what the *local* build used; the server builds another cfg (the host
part's ``buildout`` option, e.g. prod.cfg) whose parts may need eggs nobody pinned
(collective.recipe.supervisor, supervisor, z3c.recipe.usercrontab). :func:`scratch_build`
runs zc.buildout on that cfg in a scratch directory under ``parts/hostout/scratch/``
(sharing the eggs directory and download cache, at the versions the local build used) and
records what it used; :func:`resolve` turns that into a :class:`Resolution`, cached by the
digest of its inputs so an unchanged deploy does not pay for it again.

What runs here and what does not (see :mod:`.scratch`): every part of the chosen cfg is
initialised, so its recipe is resolved; parts install into the scratch directory only, so a
part's eggs are resolved too; hostout's own parts and sudo-parts are never installed here,
and a part that would run a command (other than pip) or write outside the scratch
directory, the eggs directory and the download cache is stopped there and listed in
``Resolution.not_run``: its recipe and the eggs it resolved before are still recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import cfgfiles
from ..config.facts import BuildoutFacts
from ..errors import ResolutionError
from ..files import sha256_file, write_atomically
from . import versions

FORMAT = 3  # of the cached reports: a change of what is recorded makes old ones stale
#: What the scratch directory does not borrow from the real buildout: what buildout makes.
NOT_LINKED = {"bin", "parts", "develop-eggs", "eggs", "var", "downloads"}
DRIVER = "collective.hostout.packaging.scratch"
#: Extensions that check sources out; their checkouts are shipped as develop releases.
CHECKOUTS = {"mr.developer"}


@dataclass(frozen=True)
class ScratchRun:
    """What a scratch build of a cfg used and found (the driver's report)."""

    directory: Path  # the scratch buildout directory
    log: Path  # everything bin/buildout printed
    used: tuple[tuple[str, str], ...]  # (name, version) of every distribution, develop excluded
    develop: tuple[str, ...]  # develop packages it used
    parts: tuple[str, ...]  # the cfg's parts list as buildout resolved it, hostout parts out
    buildout_options: Mapping[str, str]  # [buildout] options naming other sections, resolved
    not_run: Mapping[str, str]  # part -> what it tried that may not run here
    skipped: tuple[str, ...]  # parts initialised but never installed here
    extensions: tuple[str, ...] = ()  # the buildout extensions it loaded
    hooks: Mapping[str, Any] = field(default_factory=dict)  # each hook's own report

    @classmethod
    def from_report(cls, directory: Path, log: Path, report: Mapping[str, Any]) -> ScratchRun:
        return cls(
            directory=directory, log=log,
            used=tuple((n, v) for n, v, dev in report["used"] if not dev),
            develop=tuple(n for n, _v, dev in report["used"] if dev),
            parts=tuple(report["parts"]), buildout_options=dict(report["buildout"]),
            not_run=dict(report["not_run"]), skipped=tuple(report["skipped"]),
            extensions=tuple(report.get("extensions") or ()),
            hooks=dict(report.get("hooks") or {}))


@dataclass(frozen=True)
class Resolution:
    """The distributions and parts of the cfg a server builds, as buildout resolved them here.

    ``pins``: one version for every distribution that build uses (develop packages excluded);
    ``parts``: its parts list, resolved (hostout's parts left out), which the server is given
    so that no ``${x:parts}`` makes it load a recipe before install-from-cache applies;
    ``buildout_options``: other ``[buildout]`` options that named another section, resolved;
    ``unpinned``: names it pinned that neither the cfg files nor the versions file did.
    """

    cfg: str
    pins: Mapping[str, str]
    parts: tuple[str, ...]
    buildout_options: Mapping[str, str]
    unpinned: tuple[str, ...]
    not_run: Mapping[str, str]
    skipped: tuple[str, ...]
    digest: str
    extensions: tuple[str, ...] = ()
    markers: Mapping[str, str] = field(default_factory=dict)  # the server's, where they differ
    hooks: Mapping[str, Any] = field(default_factory=dict)  # scratch_build hooks' reports
    cached: bool = False

    @property
    def server_extensions(self) -> tuple[str, ...] | None:
        """The extensions the server loads, when they differ from the cfg's: mr.developer
        is left out (its checkouts travel as develop releases; the server has no sources)."""
        kept = tuple(e for e in self.extensions if e.split("[")[0].strip() not in CHECKOUTS)
        return kept if kept != self.extensions else None

    def unpinned_line(self) -> str:
        """The one line deploy prints about versions it chose itself ('' when none)."""
        if not self.unpinned:
            return ""
        names = ", ".join(f"{n} {self.pins[n]}" for n in self.unpinned)
        return (f"pinned {len(self.unpinned)} egg{'s' if len(self.unpinned) > 1 else ''} "
                f"that no cfg pins: {names} (as resolved here; pin them in {self.cfg} "
                "to choose)")


# -- the scratch build ------------------------------------------------------------------------
def _outputs(real: Path) -> set[str]:
    """Top-level names in the real buildout that its parts made (``.installed.cfg``)."""
    import configparser

    installed = real / ".installed.cfg"
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read(installed, encoding="utf-8")
    except (configparser.Error, OSError):
        return set()
    names: set[str] = set()
    for section in parser.sections():
        for line in parser.get(section, "__buildout_installed__", fallback="").splitlines():
            path = Path(line.strip())
            if not line.strip():
                continue
            if not path.is_absolute():
                path = real / path
            try:
                names.add(path.resolve().relative_to(real.resolve()).parts[0])
            except (ValueError, IndexError):
                continue
    return names


def _link_sources(real: Path, scratch: Path, keep_out: Sequence[Path]) -> None:
    """Make the real buildout's files (templates, src/, included cfgs) visible in the
    scratch directory, as links; buildout's own output directories, and whatever the local
    build's parts made (etc/ of a template...), stay the scratch's."""
    avoid = {p.resolve() for p in keep_out}
    outputs = _outputs(real)
    for entry in sorted(real.iterdir()):
        if entry.name in NOT_LINKED or entry.name.startswith(".") or entry.name in outputs:
            if entry.name in outputs and (scratch / entry.name).is_symlink():
                (scratch / entry.name).unlink()
            continue
        if any(a == entry.resolve() or entry.resolve() in a.parents for a in avoid):
            continue
        link = scratch / entry.name
        if link.is_symlink() or link.exists():
            if link.is_symlink() and os.readlink(link) == str(entry):
                continue
            if link.is_symlink() or link.is_file():
                link.unlink()
            else:
                continue  # a directory the scratch build made itself
        link.symlink_to(entry)


def scratch_cache(facts: BuildoutFacts) -> Path:
    """The download cache of scratch builds when the buildout sets none (its dists/ are
    among the places deploy looks for distribution files)."""
    return facts.download_cache or facts.work_dir("cache")


def scratch_build(facts: BuildoutFacts, cfg: Path, *, pins: Mapping[str, str],
                  options: Sequence[str] = (), skip_parts: Sequence[str] = (),
                  hooks: Sequence[str] = (), name: str | None = None,
                  markers: Mapping[str, str] | None = None) -> ScratchRun:
    """Run zc.buildout on ``cfg`` in ``parts/hostout/scratch/NAME`` and report what it used.

    ``pins`` become the versions section (the local build's versions win over the cfg's,
    as on the server); ``options`` are more ``section:option=value`` for bin/buildout;
    ``skip_parts`` are initialised but never installed; ``hooks`` name ``module:function``
    callables run in the build's process before buildout starts, each returning a callable
    whose JSON-able result is the hook's report (``ScratchRun.hooks[spec]``); ``markers``
    are environment-marker values of the server's Python where they differ from this one
    (``python_full_version``), so that buildout resolves what the server needs. Raises
    ResolutionError (one line) when the cfg does not build here.
    """
    if facts.eggs_directory is None:
        raise ResolutionError("the options file predates this hostout; run bin/buildout")
    label = re.sub(r"[^A-Za-z0-9._-]", "_", name or cfg.stem)
    scratch = facts.work_dir("scratch", label)
    cache = scratch_cache(facts)
    _link_sources(facts.directory, scratch, [facts.eggs_directory, cache, facts.parts_directory,
                                              facts.bin_directory])
    section = facts.versions_section
    (scratch / "hostout-pins.cfg").write_text(versions.render(dict(sorted(pins.items())),
                                                              section))
    config = scratch / "hostout-resolve.cfg"
    config.write_text("# Generated by collective.hostout: the chosen cfg, built here to see "
                      "what it uses.\n[buildout]\n"
                      f"extends = {cfg.resolve()} hostout-pins.cfg\n")
    report_path = scratch / "hostout-report.json"
    report_path.unlink(missing_ok=True)
    request = {
        "config": str(config),
        "directory": str(scratch),
        "real_directory": str(facts.directory),
        "eggs_directory": str(facts.eggs_directory),
        "download_cache": str(cache),
        "skip": list(skip_parts),
        "hooks": list(hooks),
        "markers": dict(markers or {}),
        "report": str(report_path),
        "options": [
            f"buildout:directory={scratch}",
            f"buildout:eggs-directory={facts.eggs_directory}",
            "buildout:eggs-directory-version=",
            "buildout:abi-tag-eggs=false",
            f"buildout:download-cache={cache}",
            "buildout:update-versions-file=",
            "buildout:show-picked-versions=false",
            "buildout:newest=false",
            "buildout:installed=.installed.cfg",
            *options,
        ],
    }
    request_path = scratch / "hostout-request.json"
    request_path.write_text(json.dumps(request, indent=1))
    log = scratch.parent / f"{label}.log"
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parents[3])  # where collective.hostout is importable
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.run([sys.executable, "-m", DRIVER, str(request_path)], cwd=scratch,
                              env=env, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, check=False)
    report = json.loads(report_path.read_text()) if report_path.is_file() else None
    if proc.returncode or report is None or report.get("error"):
        raise ResolutionError(f"{cfg.name} does not build on this machine: "
                              f"{_error_line(log)} (full output: {log})")
    return ScratchRun.from_report(scratch, log, report)


def _error_line(log: Path) -> str:
    """buildout's own ``Error: ...`` line(s) from its output, as one line."""
    text = log.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("Error:"):
            message = [lines[i].removeprefix("Error:").strip()]
            message += [ln.strip() for ln in lines[i + 1:i + 4] if ln.strip()]
            return " ".join(message)
    tail = [ln.strip() for ln in lines if ln.strip()]
    return tail[-1] if tail else "no output"


# -- the resolution ---------------------------------------------------------------------------
def inputs_digest(facts: BuildoutFacts, cfg: Path, pins: Mapping[str, str],
                  options: Sequence[str], skip_parts: Sequence[str]) -> str:
    """What decides a resolution: the chosen cfg chain's contents, the pins, the develop
    packages' metadata files, the options and the Python and buildout running it."""
    h = hashlib.sha256()
    h.update(f"format {FORMAT}\npython {sys.version}\n".encode())
    for path in cfgfiles.config_chain(cfg):
        h.update(f"cfg {path}\0{sha256_file(path)}\n".encode())
    for name, version in sorted(pins.items()):
        h.update(f"pin {name}=={version}\n".encode())
    for d in sorted(facts.develop):
        for meta in ("setup.py", "setup.cfg", "pyproject.toml"):
            if (d / meta).is_file():
                h.update(f"develop {d / meta}\0{sha256_file(d / meta)}\n".encode())
    h.update(repr((list(options), sorted(skip_parts))).encode())
    return h.hexdigest()


def resolve(facts: BuildoutFacts, cfg: Path, *, pins: Mapping[str, str],
            pinned_by_cfg: Mapping[str, str], parts: Sequence[str] = (),
            skip_parts: Sequence[str] = (), markers: Mapping[str, str] | None = None,
            hooks: Sequence[str] = ()) -> Resolution:
    """The chosen cfg's distributions and parts, from the cache when its inputs are
    unchanged, else from a :func:`scratch_build` (``hooks`` are passed on; their reports
    are kept with the resolution, in ``Resolution.hooks``)."""
    options = [f"buildout:parts={' '.join(parts)}"] if parts else []
    markers = dict(markers or {})
    digest = inputs_digest(facts, cfg, pins, [*options, *sorted(markers.items()), *hooks],
                           skip_parts)
    cached = facts.work_dir("resolved") / f"{digest}.json"
    if cached.is_file():
        try:
            data = json.loads(cached.read_text(encoding="utf-8"))
            return _resolution(data, digest, cached=True)
        except (ValueError, KeyError):
            cached.unlink()
    run = scratch_build(facts, cfg, pins=pins, options=options, skip_parts=skip_parts,
                        markers=markers, hooks=hooks)
    used = versions.used_versions(run.used, pins=pins)
    known = {**pinned_by_cfg, **pins}
    data = {
        "cfg": cfg.name,
        "pins": used,
        "parts": list(run.parts),
        "buildout": dict(run.buildout_options),
        "unpinned": versions.unpinned(used, known),
        "not_run": dict(run.not_run),
        "skipped": list(run.skipped),
        "extensions": list(run.extensions),
        "markers": markers,
        "hooks": dict(run.hooks),
    }
    write_atomically(cached, json.dumps(data, indent=1, sort_keys=True) + "\n")
    return _resolution(data, digest, cached=False)


def _resolution(data: Mapping[str, Any], digest: str, *, cached: bool) -> Resolution:
    return Resolution(cfg=data["cfg"], pins=dict(data["pins"]), parts=tuple(data["parts"]),
                      buildout_options=dict(data["buildout"]),
                      unpinned=tuple(data["unpinned"]), not_run=dict(data["not_run"]),
                      skipped=tuple(data["skipped"]), digest=digest,
                      extensions=tuple(data.get("extensions", ())),
                      markers=dict(data.get("markers", {})),
                      hooks=dict(data.get("hooks", {})), cached=cached)
