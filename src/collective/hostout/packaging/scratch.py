"""The scratch build's driver: ``python -m collective.hostout.packaging.scratch REQUEST``.

Runs zc.buildout's own ``main()`` on the chosen cfg in a scratch directory (see
:func:`collective.hostout.packaging.resolve.scratch_build`, its only caller), with a
:class:`~.usage.UsageRecorder` watching from the first line, and writes a JSON report:
what the build used, the parts list buildout resolved, the ``[buildout]`` options that
named other sections, resolved, and the parts that were not run here.

What must not happen on this machine does not:
- hostout's own parts and ``skip`` parts (sudo-parts) are initialised (their recipes are
  resolved: the server needs them) but not installed;
- while a part installs, it may run no command but pip (buildout installs eggs with pip) and
  may write, create or remove files only in the scratch directory, the eggs directory, the
  download cache and the temporary directory; a part that tries is stopped there and listed
  as not run here (its recipe and every egg it resolved before are recorded all the same).
"""

from __future__ import annotations

import builtins
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import Any

HOSTOUT_RECIPE = "collective.hostout"
#: Set in a scratch build's process: a hostout part there writes no versions file.
SCRATCH_ENV = "COLLECTIVE_HOSTOUT_SCRATCH_BUILD"


class Refused(PermissionError):
    """What a part may not do in a scratch build."""


class Guard:
    """Stops commands and writes outside ``roots`` while active (during a part's install)."""

    def __init__(self, roots: list[str], *, protected: str = "",
                 also: list[str] | None = None) -> None:
        self.roots = [os.path.realpath(r) for r in roots if r]
        self.protected = os.path.realpath(protected) if protected else ""
        self.also = [os.path.realpath(r) for r in also or () if r]
        self.active = False
        self.refused: str | None = None

    @staticmethod
    def _under(real: str, roots: list[str]) -> bool:
        return any(real == r or real.startswith(r + os.sep) for r in roots)

    def _inside(self, path: Any) -> bool:
        """In a root; else, outside the protected (real buildout) directory, in ``also``."""
        try:
            real = os.path.realpath(os.fsdecode(path))
        except TypeError:  # a file descriptor
            return True
        if self._under(real, self.roots):
            return True
        if self.protected and self._under(real, [self.protected]):
            return False
        return self._under(real, self.also)

    def refuse(self, what: str) -> None:
        self.refused = what
        raise Refused(f"not run on this machine: {what}")

    def check_path(self, path: Any, what: str) -> None:
        if self.active and not self._inside(path):
            self.refuse(f"{what} {os.fsdecode(path)}")

    def check_command(self, argv: Any) -> None:
        if not self.active:
            return
        args = [os.fsdecode(a) for a in argv] if isinstance(argv, (list, tuple)) else [argv]
        if args[:3] == [sys.executable, "-m", "pip"]:
            return
        self.refuse("command " + " ".join(str(a) for a in args)[:200])

    @contextmanager
    def watching(self) -> Any:
        self.active, self.refused = True, None
        try:
            yield
        finally:
            self.active = False

    def install(self) -> None:
        """Wrap the functions parts use to write files and run commands (this process only)."""
        guard = self
        real_open = builtins.open

        def guarded_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if any(m in mode for m in "wax+"):
                guard.check_path(file, "write to")
            return real_open(file, mode, *args, **kwargs)

        builtins.open = io.open = guarded_open  # type: ignore[assignment]

        def wrap_path(module: Any, name: str, what: str) -> None:
            real = getattr(module, name)

            def wrapper(path: Any, *args: Any, **kwargs: Any) -> Any:
                guard.check_path(path, what)
                return real(path, *args, **kwargs)

            setattr(module, name, wrapper)

        for name, what in (("mkdir", "create"), ("remove", "remove"), ("unlink", "remove"),
                           ("rmdir", "remove"), ("chmod", "change")):
            wrap_path(os, name, what)
        for name in ("rename", "replace", "symlink", "link"):
            real2 = getattr(os, name)

            def two(src: Any, dst: Any, *args: Any, _real: Any = real2, **kwargs: Any) -> Any:
                guard.check_path(dst, "write to")
                return _real(src, dst, *args, **kwargs)

            setattr(os, name, two)
        wrap_path(shutil, "rmtree", "remove")

        real_popen_init = subprocess.Popen.__init__

        def popen_init(self: Any, args: Any, *a: Any, **kw: Any) -> None:
            guard.check_command(args)
            real_popen_init(self, args, *a, **kw)

        subprocess.Popen.__init__ = popen_init  # type: ignore[method-assign]
        real_system = os.system

        def system(command: str) -> int:
            guard.check_command(command)
            return real_system(command)

        os.system = system


def _server_markers(markers: dict[str, str]) -> None:
    """Evaluate environment markers as the server's Python would (its python_full_version),
    so buildout resolves what the server's build will need (this process only)."""
    import setuptools  # noqa: F401  (its vendored packaging too, before patching)

    for name, module in list(sys.modules.items()):
        if name.endswith("packaging.markers") and hasattr(module, "default_environment"):
            local = module.default_environment

            def server(_local: Any = local) -> Any:
                env = _local()
                env.update(markers)
                return env

            module.default_environment = server


def _download_failed(err: BaseException) -> bool:
    """Whether a part failed on a download (zc.buildout.download's errors)."""
    import zc.buildout.download as download

    text = str(err)
    return isinstance(err, download.ChecksumError) or text.startswith(
        ("Error downloading", "Couldn't download"))


def _hostout_part(raw: dict[str, dict[str, str]], part: str) -> bool:
    section = raw.get(part, {})
    recipe = section.get("recipe", "")
    if not recipe and section.get("<", ""):
        recipe = raw.get(section["<"].strip(), {}).get("recipe", "")
    return recipe.split(":")[0].strip() == HOSTOUT_RECIPE


def run(request: dict[str, Any]) -> dict[str, Any]:
    import zc.buildout.buildout as zb

    from .usage import UsageRecorder

    os.environ[SCRATCH_ENV] = "1"
    if request.get("markers"):
        _server_markers(request["markers"])
    recorder = UsageRecorder().start()
    roots = [request["directory"], request["eggs_directory"], request.get("download_cache", ""),
             *request.get("writable", ())]
    # the temporary directory too (downloads go there first), but never the real buildout
    guard = Guard(roots, protected=request["real_directory"], also=[tempfile.gettempdir()])
    guard.install()
    hooks: dict[str, Callable[[], Any]] = {}
    for spec in request.get("hooks", ()):
        module, _, func = spec.partition(":")
        hooks[spec] = getattr(import_module(module), func)()

    report: dict[str, Any] = {"used": [], "parts": [], "buildout": {}, "not_run": {},
                              "skipped": [], "error": None}
    real_directory = request["real_directory"]
    skip = set(request.get("skip", ()))
    seen: dict[str, Any] = {}
    original_install = zb.Buildout.install
    original_call = zb.Options._call

    def install(self: Any, args: Any) -> Any:
        seen["buildout"] = self
        b = self["buildout"]
        # develop paths are relative to the real buildout, not to the scratch one
        b["develop"] = "\n".join(os.path.join(real_directory, d)
                                  for d in b.get("develop", "").split())
        parts = b["parts"].split()
        dropped = [p for p in parts if p in skip or _hostout_part(self._raw, p)]
        report["skipped"] = dropped
        skip.update(dropped)
        report["parts"] = [p for p in parts if not _hostout_part(self._raw, p)]
        b["parts"] = " ".join(report["parts"])  # hostout's own parts are not even loaded
        for key, value in self._raw["buildout"].items():
            if "${" in value and any(not ref.startswith(("buildout:", ":"))
                                     for ref in value.split("${")[1:]):
                report["buildout"][key] = b[key]
        result = original_install(self, args)
        report["extensions"] = b.get("extensions", "").split()
        recorder.completed = True
        return result

    def call(self: Any, f: Any) -> Any:
        if self.name in skip:
            return ()
        with guard.watching():
            try:
                return original_call(self, f)
            except Exception as err:
                if guard.refused is None and not _download_failed(err):
                    raise
                # a download that fails here is the deploy's to report (it ships what
                # it can, and names the URL that neither the server nor this machine gets)
                report["not_run"][self.name] = guard.refused or (
                    "download failed here: " + " ".join(str(err).split()))
                self.buildout._logger.warning("%s: %s", self.name, err)
                return ()

    zb.Buildout.install = install
    zb.Options._call = call
    argv = ["-N", "-c", request["config"], *request.get("options", ())]
    try:
        zb.main(argv)
    except SystemExit as exit:
        if exit.code:
            report["error"] = f"bin/buildout exited {exit.code}"
    except BaseException as err:  # a bug of ours or of a recipe: keep the traceback
        traceback.print_exc()
        report["error"] = f"{type(err).__name__}: {err}"
    buildout = seen.get("buildout")
    if buildout is not None and recorder.completed:
        used = recorder.finish(buildout, skip=[HOSTOUT_RECIPE])
        report["used"] = [[u.name, u.version, u.develop] for u in used]
    report["hooks"] = {name: finish() for name, finish in hooks.items()}
    return report


def main() -> None:
    request_path = Path(sys.argv[1])
    request = json.loads(request_path.read_text(encoding="utf-8"))
    report = run(request)
    Path(request["report"]).write_text(json.dumps(report, indent=1, sort_keys=True),
                                       encoding="utf-8")
    sys.exit(1 if report["error"] else 0)


if __name__ == "__main__":
    main()
