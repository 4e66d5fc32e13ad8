"""Files a buildout downloads that are not Python distributions: what recipes fetch with
zc.buildout's ``Download`` (hexagonit.recipe.cmmi tarballs, hexagonit.recipe.download...)
and the cfg files ``extends`` names by URL.

The server builds with ``install-from-cache = true``, which makes every ``Download``
offline: it serves only what already sits in its cache, under the name buildout gives it
there. So hostout learns, in the local bin/buildout run, every URL a ``Download`` served,
with that cache name and the sha256 of what it got (:class:`Recorder`, attached to
buildout by :func:`watch`), and keeps it in ``parts/hostout/downloads.json``
(:class:`Record`). A deploy then has the server fetch each file into its own cache, or,
when the server cannot reach the URL, ships the file from here (:func:`local_copy`).

- Recipe downloads are asked of ``zc.buildout.download.Download.__call__``; which part made
  them, of ``zc.buildout.buildout.Options._call`` (buildout calls every part's install or
  update through it). A part installed afresh replaces what the record said of it; an
  update adds to it; a part buildout no longer has installed is dropped.
- ``extends`` URLs are read while buildout parses its configuration, before any recipe is
  loaded: so at the end of the run the recorder replays buildout's own ``_open`` on every
  URL that a local cfg file extends (the chosen cfgs of the host parts included), with the
  same hook, and records what buildout downloads (nested relative extends too).

Another buildout run (e.g. a scratch run of the production cfg) records through the same
hook with ``with recording() as rec: ...`` and ``rec.record(previous, installed_parts)``.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, DownloadError
from ..files import sha256_file, write_atomically

log = logging.getLogger("collective.hostout")

#: The record's file name, in ``parts/hostout``.
RECORD_NAME = "downloads.json"
FORMAT = 1
#: Which of the server's caches a file belongs in.
DOWNLOAD_CACHE = "download-cache"  # recipes' downloads: buildout's download-cache
EXTENDS_CACHE = "extends-cache"  # extends URLs: buildout's extends-cache
#: Downloads made outside any part (a recipe's __init__, an extension).
NO_PART = ""
#: URL schemes that name a file somewhere else (file: URLs and paths are local files).
NETWORK_SCHEMES = ("http", "https", "ftp")
_WATCH_ATTR = "_collective_hostout_downloads"


@dataclass(frozen=True)
class Fetched:
    """One file a buildout download served."""

    url: str
    cache: str  # DOWNLOAD_CACHE or EXTENDS_CACHE
    name: str  # its path inside that cache, as buildout names it ("namespace/file")
    sha256: str  # of what the local build got
    size: int
    md5sum: str | None = None  # the checksum the recipe asked buildout to check
    kept: str | None = None  # where the local build kept it (its cache file), if it did

    @property
    def basename(self) -> str:
        return PurePosixPath(self.name).name

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fetched:
        fetched = cls(url=str(data["url"]), cache=str(data["cache"]), name=str(data["name"]),
                      sha256=str(data["sha256"]), size=int(data["size"]),
                      md5sum=data.get("md5sum"), kept=data.get("kept"))
        if fetched.cache not in (DOWNLOAD_CACHE, EXTENDS_CACHE) or not safe_name(fetched.name):
            raise ValueError(f"not a cache file: {fetched.cache} {fetched.name!r}")
        return fetched


def safe_name(name: str) -> bool:
    """A relative path of plain names: what may be joined to a cache directory."""
    parts = name.split("/")
    return bool(name) and "\0" not in name and all(p not in ("", ".", "..") for p in parts)


@dataclass(frozen=True)
class Record:
    """What ``parts/hostout/downloads.json`` says: each installed part's downloads (by URL),
    the extends URLs, and the installed parts whose downloads nobody saw (installed before
    hostout watched)."""

    parts: Mapping[str, Mapping[str, Fetched]] = field(default_factory=dict)
    extends: Mapping[str, Fetched] = field(default_factory=dict)
    unseen: tuple[str, ...] = ()

    def files(self) -> list[Fetched]:
        """Every file the server's caches need, each (cache, name) once."""
        found: dict[tuple[str, str], Fetched] = {}
        for fetched in [*self.extends.values(),
                        *(f for part in sorted(self.parts) for f in self.parts[part].values())]:
            found.setdefault((fetched.cache, fetched.name), fetched)
        return list(found.values())

    def union(self, other: Record) -> Record:
        """This record with ``other``'s files added (another run's, e.g. a scratch build)."""
        parts = {p: dict(files) for p, files in self.parts.items()}
        for part, files in other.parts.items():
            parts.setdefault(part, {}).update(files)
        known = {p for r in (self, other) for p in r.parts if p not in r.unseen}
        unseen = tuple(p for p in dict.fromkeys([*self.unseen, *other.unseen])
                       if p not in known)
        return Record(parts, {**self.extends, **other.extends}, unseen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "parts": {p: [f.to_dict() for f in files.values()]
                      for p, files in sorted(self.parts.items())},
            "extends": [f.to_dict() for f in self.extends.values()],
            "unseen": list(self.unseen),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        def by_url(items: Iterable[Mapping[str, Any]]) -> dict[str, Fetched]:
            return {f.url: f for f in map(Fetched.from_dict, items)}

        return cls({str(p): by_url(items) for p, items in data.get("parts", {}).items()},
                   by_url(data.get("extends", ())), tuple(data.get("unseen", ())))


def record_path(parts_directory: Path) -> Path:
    return parts_directory / "hostout" / RECORD_NAME


def load(path: Path) -> Record:
    """The record at ``path``; an empty one when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Record()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err}", cause=err) from err
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, not {FORMAT}")
        return Record.from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ConfigError(f"{path} is not a downloads record hostout can read ({err}); "
                          "run bin/buildout again", cause=err) from err


def write(path: Path, record: Record) -> bool:
    """Write the record; False (and no write) when the file already says the same."""
    text = json.dumps(record.to_dict(), indent=1, sort_keys=True) + "\n"
    with contextlib.suppress(OSError):
        if path.read_text(encoding="utf-8") == text:
            return False
    write_atomically(path, text)
    return True


# -- watching downloads ---------------------------------------------------------------------
class Recorder:
    """Collects what ``Download`` served while it is attached (see :func:`recording`)."""

    def __init__(self, download_cache: str | None = None) -> None:
        #: the buildout's download-cache (absolute), to tell it from a recipe's own cache
        self.download_cache = os.path.realpath(download_cache) if download_cache else None
        self.seen: dict[str, dict[str, Fetched]] = {}  # part (or NO_PART) -> url -> file
        self.ran: set[str] = set()  # parts whose install or update ran
        self.installed: set[str] = set()  # parts installed afresh
        self.extends: dict[str, Fetched] = {}
        self.skipped: dict[str, str] = {}  # url -> why it cannot be shipped
        self._part: str = NO_PART
        self._replaying = False

    # hooks: called by the patched zc.buildout methods
    def _saw(self, download: Any, url: str, md5sum: str | None, result: str) -> None:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in NETWORK_SCHEMES or not os.path.isfile(result):
            return
        name = download.filename(url)
        if download.namespace:
            name = f"{download.namespace}/{name}"
        cached = download.download_cache if download.cache else None  # as __call__ decides
        kept = os.path.join(cached, name) if cached else None
        if self._replaying:
            cache = EXTENDS_CACHE
        elif cached is None or os.path.realpath(cached) == self.download_cache:
            cache = DOWNLOAD_CACHE
        else:  # a recipe's own cache directory: the server's build would not look there
            self.skipped[url] = f"downloaded into a cache of its own ({cached})"
            return
        if not safe_name(name):
            self.skipped[url] = f"its cache file name {name!r} is not a plain name"
            return
        path = Path(result)
        fetched = Fetched(url, cache, name, sha256_file(path), path.stat().st_size,
                          md5sum or None, kept if kept and os.path.isfile(kept) else None)
        if self._replaying:
            self.extends[url] = fetched
        else:
            self.seen.setdefault(self._part, {})[url] = fetched

    def _calling(self, part: str, method: str) -> str:
        previous, self._part = self._part, part
        self.ran.add(part)
        if method == "install":  # install, or an update falling back to install
            self.installed.add(part)
            self.seen.pop(part, None)  # a retried install starts over
        return previous

    def attach(self) -> Callable[[], None]:
        """Patch zc.buildout to report to this recorder; returns the undo."""
        import zc.buildout.buildout
        import zc.buildout.download

        download_class = zc.buildout.download.Download
        options_class = zc.buildout.buildout.Options
        original_call = download_class.__call__
        original_part_call = options_class._call
        recorder = self

        def __call__(self: Any, url: str, md5sum: str | None = None,
                     path: str | None = None) -> Any:
            result = original_call(self, url, md5sum, path)
            try:
                recorder._saw(self, url, md5sum, result[0])
            except Exception as err:  # never break the user's build
                log.debug("hostout could not record the download of %s: %s", url, err)
            return result

        def _call(self: Any, f: Callable[[], Any]) -> Any:
            previous = recorder._calling(self.name, getattr(f, "__name__", ""))
            try:
                return original_part_call(self, f)
            finally:
                recorder._part = previous

        download_class.__call__ = __call__  # type: ignore[method-assign]
        options_class._call = _call

        def undo() -> None:
            download_class.__call__ = original_call  # type: ignore[method-assign]
            options_class._call = original_part_call

        return undo

    def replay_extends(self, urls: Mapping[str, Path], options: Mapping[str, str]) -> None:
        """Have buildout open each extends URL (``url -> the directory of the cfg naming
        it``) as it does when it reads the configuration, recording what it downloads.
        ``options`` are the [buildout] options that govern those downloads."""
        from zc.buildout.buildout import SectionKey, _open

        wanted = ("directory", "extends-cache", "offline", "install-from-cache")
        annotated = {k: SectionKey(options[k], "collective.hostout") for k in wanted
                     if options.get(k)}
        annotated["newest"] = SectionKey("false", "collective.hostout")  # cached copies do
        quiet = logging.getLogger("zc.buildout")  # it said "Downloading" the first time
        level, self._replaying = quiet.level, True
        quiet.setLevel(max(level, logging.WARNING))
        try:
            for url, base in urls.items():
                _open(str(base), url, [], annotated, {}, set(), {})
        finally:
            self._replaying = False
            quiet.setLevel(level)

    def record(self, previous: Record, installed: Iterable[str] | None,
               extends: bool = True) -> Record:
        """The record after this run: ``previous`` updated with what was seen.

        ``installed`` is buildout's list of installed parts after the run (None when it
        kept none: then no part is dropped). ``extends``: whether replay_extends ran, so
        its result replaces the previous extends.
        """
        names = list(installed) if installed is not None else sorted(
            set(previous.parts) | set(previous.unseen) | self.ran)
        known = (set(previous.parts) - set(previous.unseen)) | self.installed
        parts: dict[str, dict[str, Fetched]] = {}
        for part in names:
            new = self.seen.get(part, {})
            if part in self.installed:
                parts[part] = dict(new)
            elif part in previous.parts or new:
                parts[part] = {**previous.parts.get(part, {}), **new}
        if self.seen.get(NO_PART) or previous.parts.get(NO_PART):
            parts[NO_PART] = dict(self.seen.get(NO_PART) or previous.parts[NO_PART])
        unseen = tuple(p for p in names if p not in known)
        return Record(parts, dict(self.extends) if extends else dict(previous.extends), unseen)


@contextlib.contextmanager
def recording(download_cache: str | None = None) -> Iterator[Recorder]:
    """Record what every zc.buildout ``Download`` in this process serves meanwhile."""
    recorder = Recorder(download_cache)
    undo = recorder.attach()
    try:
        yield recorder
    finally:
        undo()


# -- the bin/buildout run ---------------------------------------------------------------------
class _Watch:
    """The recorder of one bin/buildout run, and what it needs at the end."""

    def __init__(self, buildout: Any) -> None:
        b = buildout["buildout"]
        self.buildout = buildout
        self.directory = Path(b["directory"])
        self.path = record_path(Path(b["parts-directory"]))
        self.recorder = Recorder(b.get("download-cache") or None)
        self.configs: list[Path] = []
        try:
            self.previous = load(self.path)
        except ConfigError as err:
            log.warning("%s", err)
            self.previous = Record()
        self.first = not self.path.exists()

    def add_config(self, path: Path) -> None:
        if path not in self.configs:
            self.configs.append(path)

    def finish(self) -> None:
        try:
            self._finish()
        except Exception as err:  # never turn a finished build into a failure
            log.warning("could not record this buildout's downloads (%s); a deploy "
                        "may miss files that recipes or extends download", err)

    def _finish(self) -> None:
        b = self.buildout["buildout"]
        replayed = True
        urls = extends_urls([*_config_sources(self.buildout), *self.configs])
        try:
            self.recorder.replay_extends(urls, {**dict(b), "directory": str(self.directory)})
        except Exception as err:
            replayed = False
            log.warning("could not read the extends URLs again (%s); "
                        "keeping what the last run recorded", err)
        record = self.recorder.record(self.previous, _installed_parts(b.get("installed")),
                                      extends=replayed)
        write(self.path, record)
        for url, why in self.recorder.skipped.items():
            log.warning("a deploy cannot ship %s: %s", url, why)
        if record.unseen and (self.first or record.unseen != self.previous.unseen):
            log.warning(
                "parts %s were installed before hostout watched their downloads: "
                "if they download files (cmmi, download recipes), a deploy cannot ship them. "
                "Reinstall them once (remove their parts/NAME directory, run bin/buildout).",
                ", ".join(record.unseen))


def watch(buildout: Any) -> _Watch:
    """Record this bin/buildout run's downloads into ``parts/hostout/downloads.json`` when it
    ends (once per buildout; later calls return the same watch). ``add_config(path)`` names
    another cfg whose extends URLs are recorded (a host part's chosen buildout)."""
    found = getattr(buildout, _WATCH_ATTR, None)
    if found is None:
        found = _Watch(buildout)
        found.recorder.attach()  # for the rest of this process
        setattr(buildout, _WATCH_ATTR, found)
        atexit.register(found.finish)
    return found


def _config_sources(buildout: Any) -> list[Path]:
    """The local cfg files buildout read (from its annotations)."""
    found: dict[Path, None] = {}
    for section in (getattr(buildout, "_annotated", None) or {}).values():
        for key in section.values():
            for entry in getattr(key, "history", ()):
                source = getattr(entry, "source", "")
                if source and "://" not in source and os.path.isfile(source):
                    found[Path(source).resolve()] = None
    return list(found)


def extends_urls(configs: Iterable[Path]) -> dict[str, Path]:
    """URL -> the directory of the first local cfg naming it, for every URL that the
    ``extends`` of ``configs`` and of the local files they extend name."""
    from ..config import cfgfiles

    urls: dict[str, Path] = {}
    files: dict[Path, None] = {}
    for config in configs:
        try:
            files.update(dict.fromkeys(cfgfiles.config_chain(config)))
        except ConfigError as err:
            log.warning("%s", err)
    for path in files:
        for url in cfgfiles.extends_urls(path):
            urls.setdefault(url, path.parent)
    return urls


def _installed_parts(installed_cfg: str | None) -> list[str] | None:
    """The parts buildout's installed file lists, None when there is no such file."""
    if not installed_cfg or not os.path.isfile(installed_cfg):
        return None
    from zc.buildout.configparser import parse

    with open(installed_cfg, encoding="utf-8") as fp:
        sections = parse(fp, installed_cfg)
    return sections.get("buildout", {}).get("parts", "").split()


# -- a copy here, at deploy time ----------------------------------------------------------------
def local_copy(fetched: Fetched, work: Path, caches: Iterable[Path] = (),
               timeout: float = 30.0) -> Path:
    """A local file with ``fetched``'s content: the one the build kept, one in ``caches``
    (buildout's download-cache), one fetched earlier into ``work``, else downloaded now
    into ``work``. DownloadError when none can be had, or only with other content."""
    mine = work / fetched.sha256[:16] / fetched.basename
    candidates = [Path(fetched.kept)] if fetched.kept else []
    candidates += [Path(c) / fetched.name for c in caches]
    for path in [*candidates, mine]:
        with contextlib.suppress(OSError):
            if path.is_file() and sha256_file(path) == fetched.sha256:
                return path
    mine.parent.mkdir(parents=True, exist_ok=True)
    tmp = mine.with_name(f".{mine.name}.{os.getpid()}.part")
    try:
        digest = _fetch(fetched.url, tmp, timeout)
        if digest != fetched.sha256:
            raise DownloadError(mismatch(fetched, digest))
        tmp.replace(mine)
    finally:
        tmp.unlink(missing_ok=True)
    return mine


def _fetch(url: str, dest: Path, timeout: float) -> str:
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, dest.open("wb") as out:
            for block in iter(lambda: response.read(1 << 16), b""):
                h.update(block)
                out.write(block)
    except (OSError, ValueError) as err:
        raise DownloadError(reason(err), cause=err) from err
    return h.hexdigest()


def reason(err: BaseException) -> str:
    """A short reason for a failed fetch: ``HTTP Error 404: File not found``,
    ``Connection refused``."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP Error {err.code}: {err.reason}"
    inner = getattr(err, "reason", None)
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    if inner is not None:
        return str(inner)
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def mismatch(fetched: Fetched, digest: str) -> str:
    """What to say when a URL now serves other content than the local build got."""
    checked = f", which its md5sum {fetched.md5sum} checked" if fetched.md5sum else ""
    return (f"checksum mismatch: it now serves other content (sha256 {digest[:12]}) than "
            f"bin/buildout got (sha256 {fetched.sha256[:12]}{checked})")
