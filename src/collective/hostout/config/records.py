"""What commands recorded about a host, for every later bin/hostout run.

A record lives in ``parts/hostout/records/NAME.json`` (0600: it may hold a password). Its
``options`` fill in what the host part leaves unset: the part's own options always win. This
is how a command that makes the server says where it is: ``bin/hostout host1 create`` of
hostout.cloud records the new VM's ``host``, ``user`` and ``password``, and every later
command (``deploy`` in the same run, after ``Context.reload()``) connects there. ``data`` is
the recording plugin's own (the VM's id, say). Removing the file forgets it all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

RELATIVE = Path("hostout") / "records"


@dataclass(frozen=True)
class HostRecord:
    options: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.options or self.data)


def location(parts_directory: Path, host: str) -> Path:
    return parts_directory / RELATIVE / f"{host}.json"


def read(parts_directory: Path, host: str) -> HostRecord:
    """The host's record; an empty one when nothing was recorded."""
    path = location(parts_directory, host)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return HostRecord()
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {path}: {err}; remove it to forget what was recorded "
                          "about this host", host=host, cause=err) from err
    options = raw.get("options", {}) if isinstance(raw, dict) else None
    if not isinstance(options, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in options.items()):
        raise ConfigError(f"{path} is not a host record; remove it", host=host)
    return HostRecord(options, raw.get("data") or {})


def write(parts_directory: Path, host: str, record: HostRecord) -> Path:
    """Replace the host's record (atomically, never readable by others)."""
    path = location(parts_directory, host)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"options": dict(record.options), "data": dict(record.data)}, indent=2,
                      sort_keys=True) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def remove(parts_directory: Path, host: str) -> None:
    location(parts_directory, host).unlink(missing_ok=True)


def merged(options: Mapping[str, str], record: HostRecord) -> dict[str, str]:
    """The part's options, with the record's filling those it leaves unset or blank."""
    result = dict(options)
    for key, value in record.options.items():
        if not (result.get(key) or "").strip():
            result[key] = value
    return result


def recorded(options: Mapping[str, str], record: HostRecord, key: str) -> bool:
    """Whether ``options[key]`` is the record's (not the part's own)."""
    value = (options.get(key) or "").strip()
    return bool(value) and record.options.get(key, "").strip() == value
