"""Buildout configuration files as files: the chosen one, its extends chain, includes.

Parsed with zc.buildout's own parser (one file at a time, no side effects); what the
options mean is left to buildout itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import ConfigError

SKIP_DIRS = {"__pycache__", ".git", ".hg", ".svn"}


def _is_url(value: str) -> bool:
    return "://" in value


def config_chain(start: Path) -> list[Path]:
    """``start`` and every file its ``[buildout] extends`` names, recursively, each once.

    Parsed with zc.buildout's own parser, which has no side effects (it reads one file).
    URLs are not files here: see :func:`extends_urls` (packaging.downloads records them).
    """
    return list(parsed_chain(start))


_PARSER: list[Any] = []  # zc.buildout's configparser module, loaded once


def _buildout_parser() -> Any:
    """zc.buildout's own configparser module, loaded from its file: importing it through the
    ``zc.buildout`` package would import setuptools, pip and pkg_resources (0.4 s of every
    bin/hostout run), none of which it needs."""
    if not _PARSER:
        import importlib.util
        import sys

        module: Any = None
        zc = importlib.util.find_spec("zc")
        for base in (zc.submodule_search_locations or []) if zc else []:
            candidate = Path(base) / "buildout" / "configparser.py"
            if candidate.is_file():
                spec = importlib.util.spec_from_file_location(
                    "collective.hostout._buildout_configparser", candidate)
                if spec is not None and spec.loader is not None:
                    module = importlib.util.module_from_spec(spec)
                    sys.modules[spec.name] = module
                    spec.loader.exec_module(module)
                    break
        if module is None:  # an unusual layout: the ordinary import
            import zc.buildout.configparser as module
        _PARSER.append(module)
    return _PARSER[0]


def _default_globals() -> dict[str, Any]:
    """buildout's globals for conditional section headers, imported only when a file has
    one (zc.buildout.buildout imports setuptools, pip and pkg_resources)."""
    from zc.buildout.buildout import _default_globals as buildout_globals

    return dict(buildout_globals())


def parse(path: Path) -> dict[str, dict[str, str]]:
    """One buildout file's sections, as zc.buildout reads them (no extends, no effects)."""
    buildout_parse = _buildout_parser().parse

    try:
        with path.open(encoding="utf-8") as fp:
            # conditional sections ([versions:python311]) are evaluated as buildout does
            return buildout_parse(fp, str(path), _default_globals)
    except Exception as err:
        reason = " ".join(str(err).split())
        raise ConfigError(f"cannot parse {path.name}: {reason}", cause=err) from err


def chain_pins(start: Path, section: str) -> dict[str, str]:
    """The ``[section]`` pins of ``start``'s extends chain, as buildout merges them: a file's
    own pins win over those of the files it extends."""
    pins: dict[str, str] = {}
    for sections in reversed(parsed_chain(start).values()):  # the deepest extended first
        pins.update({k: v.strip() for k, v in sections.get(section, {}).items()
                     if v.strip() and not k.endswith(("+", "-"))})
    return pins


def parsed_chain(start: Path) -> dict[Path, dict[str, dict[str, str]]]:
    """config_chain with each file's parsed sections, in extends order (start first)."""
    seen: dict[Path, dict[str, dict[str, str]]] = {}

    def visit(path: Path, referrer: Path | None) -> None:
        path = path.resolve()
        if path in seen:
            return
        if not path.is_file():
            where = f" (extended by {referrer.name})" if referrer else ""
            raise ConfigError(f"buildout file {path} does not exist{where}")
        sections = seen[path] = parse(path)
        extends = sections.get("buildout", {}).get("extends", "")
        for item in extends.split():
            if not _is_url(item):
                visit(path.parent / item, path)

    visit(start, None)
    return seen


def extends_urls(path: Path) -> list[str]:
    """The URLs that ``path``'s own ``[buildout] extends`` names (buildout fetches them)."""
    extends = parse(path).get("buildout", {}).get("extends", "")
    return [item for item in extends.split() if _is_url(item)]


def include_files(include: Iterable[str], base: Path) -> list[Path]:
    """The files of the ``include`` option: files as they are, directories walked."""
    found: list[Path] = []
    for item in include:
        path = (base / item).resolve()
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(p for p in sorted(path.rglob("*"))
                         if p.is_file() and not SKIP_DIRS.intersection(p.parts)
                         and p.suffix not in (".pyc", ".pyo"))
        else:
            raise ConfigError(f"include: {item} does not exist in {base}")
    return found


def remote_name(path: Path, base: Path) -> PurePosixPath:
    """Where a local file goes, relative to the server's buildout directory."""
    try:
        return PurePosixPath(path.resolve().relative_to(base.resolve()).as_posix())
    except ValueError:
        raise ConfigError(f"{path} is outside the buildout directory {base}; hostout uploads "
                          "only files inside it (copy it in, or use include)") from None
