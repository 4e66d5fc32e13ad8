"""What bin/buildout resolved about the local buildout, as every command may need it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BuildoutFacts:
    """The local buildout that defines the hosts (the one bin/hostout was made by)."""

    directory: Path
    bin_directory: Path
    parts_directory: Path
    develop: tuple[Path, ...]  # develop package directories, absolute
    download_cache: Path | None  # buildout's download-cache, if set
    versions_section: str  # the [buildout] versions option: usually "versions"
    python: str  # the interpreter that ran bin/buildout
    eggs_directory: Path | None = None  # where buildout installs eggs (with its v5 suffix)

    @classmethod
    def of_directory(cls, directory: Path) -> BuildoutFacts:
        """The facts of a buildout in ``directory`` with buildout's default layout (for tests
        and tools that make a Context without running bin/buildout)."""
        import sys

        return cls(directory, directory / "bin", directory / "parts", (), None, "versions",
                   sys.executable, directory / "eggs" / "v5")

    def outputs(self) -> tuple[Path, ...]:
        """What buildout, its recipes and hostout write in the buildout's directory: never a
        develop package's content, even where the package is the directory (``develop = .``)."""
        d = self.directory
        eggs = self.eggs_directory
        if eggs is not None and re.fullmatch(r"v\d+", eggs.name):
            eggs = eggs.parent  # eggs/v5: all of eggs/
        found = [self.bin_directory, self.parts_directory, eggs, self.download_cache,
                 d / "develop-eggs", d / "var", d / "downloads", d / ".installed.cfg",
                 d / ".mr.developer.cfg", d / "hostoutversions.cfg"]
        return tuple(p for p in found if p is not None)

    def work_dir(self, *parts: str) -> Path:
        """hostout's local working directory, shared by the buildout's hosts
        (``parts/hostout/...``), made on first use."""
        d = self.parts_directory.joinpath("hostout", *parts)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "bin-directory": str(self.bin_directory),
            "parts-directory": str(self.parts_directory),
            "develop": [str(p) for p in self.develop],
            "download-cache": str(self.download_cache) if self.download_cache else "",
            "versions": self.versions_section,
            "python": self.python,
            "eggs-directory": str(self.eggs_directory) if self.eggs_directory else "",
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildoutFacts:
        directory = Path(data["directory"])
        cache = data.get("download-cache") or ""
        return cls(
            directory=directory,
            bin_directory=Path(data["bin-directory"]),
            parts_directory=Path(data["parts-directory"]),
            develop=tuple((directory / d).resolve() for d in data.get("develop", ())),
            download_cache=(directory / cache) if cache else None,
            versions_section=data.get("versions") or "versions",
            python=data.get("python", ""),
            eggs_directory=Path(data["eggs-directory"]) if data.get("eggs-directory") else None,
        )
