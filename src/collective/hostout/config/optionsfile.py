"""The options file: what bin/buildout resolved, as bin/hostout reads it.

The recipe writes one JSON file per buildout (``parts/hostout/hostout.json``) holding every
hostout part's resolved options, the buildout facts commands need, and a digest of each
config file buildout read, so bin/hostout can refuse to act on options that a later edit of
a .cfg made stale.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, StaleConfigError
from ..files import sha256_file, write_atomically
from . import records
from .facts import BuildoutFacts
from .settings import HostSettings, build_settings

FORMAT = 2
RELATIVE_LOCATION = Path("hostout") / "hostout.json"


def digest(path: Path) -> str | None:
    """The file's sha256, or None when it is missing or unreadable."""
    try:
        return sha256_file(path)
    except OSError:
        return None


def digests(paths: Iterable[str | Path]) -> dict[str, str | None]:
    return {str(p): digest(Path(p)) for p in sorted({str(p) for p in paths})}


@dataclass(frozen=True)
class OptionsFile:
    """The parsed options file."""

    location: Path
    facts: BuildoutFacts
    hosts: Mapping[str, Mapping[str, Any]]
    sources: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.facts.directory

    @property
    def host_names(self) -> list[str]:
        return sorted(self.hosts)

    def settings(self, name: str) -> HostSettings:
        """The host's settings: its part's options, and what commands recorded about the host
        (see :mod:`.records`) where the part leaves an option unset."""
        entry = self.hosts[name]
        record = records.read(self.facts.parts_directory, name)
        return build_settings(
            name,
            records.merged(entry["options"], record),
            buildout_directory=self.directory,
            plugins=tuple(entry.get("plugins", ())),
        )

    def stale_sources(self) -> list[str]:
        """Config files whose content differs from when the options were written."""
        return [src for src, was in self.sources.items() if digest(Path(src)) != was]

    def check_fresh(self) -> None:
        stale = self.stale_sources()
        if stale:
            names = ", ".join(os.path.relpath(s, self.directory) for s in stale[:3])
            more = f" and {len(stale) - 3} more" if len(stale) > 3 else ""
            raise StaleConfigError(
                f"{names}{more} changed after the last bin/buildout; run bin/buildout "
                "so hostout acts on the current options"
            )

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "facts": self.facts.to_dict(),
                "sources": dict(self.sources),
                "hosts": {k: dict(v) for k, v in self.hosts.items()},
            },
            indent=2,
            sort_keys=True,
        )

    def write(self) -> None:
        write_atomically(self.location, self.to_json() + "\n", mode=0o600)  # may hold passwords


def load(location: str | Path) -> OptionsFile:
    location = Path(location)
    try:
        data = json.loads(location.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no hostout options at {location}; run bin/buildout with a "
            "'recipe = collective.hostout' part first"
        ) from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read hostout options {location}: {err}", cause=err) from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(
            f"{location} was written by another version of collective.hostout; run bin/buildout"
        )
    return OptionsFile(
        location=location,
        facts=BuildoutFacts.from_dict(data["facts"]),
        hosts=data["hosts"],
        sources=data.get("sources", {}),
    )
