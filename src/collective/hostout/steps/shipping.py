"""What travels to the server: develop releases, a distribution for every pin, the files
recipes and ``extends`` download, and the buildout's cfg files with the generated
``pinned.cfg`` and ``hostout.cfg`` (uploadeggs, uploadbuildout).

Distributions go to the server's ``buildout-cache/downloads/dist`` (names are unique, so a
file there is never sent again); cfg files are compared by sha256 and only changed ones
travel. Downloads (cmmi tarballs, extends URLs) go where the server's buildout looks for
them offline: the server fetches each itself when it can reach it, else it is shipped from
here. The server then builds from those files alone: no package index is read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from packaging.utils import canonicalize_name

from ..commands.context import Context
from ..config import cfgfiles
from ..config.settings import Layout
from ..errors import DownloadError, HostoutError
from ..files import sha256_file, write_atomically
from ..packaging import downloads, versions
from ..packaging.release import Release
from ..packaging.resolve import Resolution
from ..shell import Account, RemoteCommand, join, q
from .base import state, target

BUILD_ENV = (("PIP_NO_BUILD_ISOLATION", "0"),)  # build shipped sdists with the venv's setuptools
GENERATED = ("pinned.cfg", "hostout.cfg")


# -- distributions -------------------------------------------------------------------------
def remote_listing(c: Context, directory: PurePosixPath) -> set[str]:
    res = c.remote.execute(RemoteCommand(f"ls -1 {q(directory)}", account=Account.BUILDOUT,
                                         reads_only=True), hide=True, echo=False)
    return set(res.stdout.split())


def upload_new(c: Context, files: list[Path], directory: PurePosixPath) -> list[Path]:
    """Upload the files whose names the server's ``directory`` lacks (names are unique)."""
    present = remote_listing(c, directory)
    new = [f for f in files if f.name not in present]
    for f in new:
        c.out.line(c.name, f"upload {f.name}", level=1)
        c.remote.put(f, directory / f.name, account=Account.BUILDOUT)
    return new


def ship(c: Context, pins: Mapping[str, str], extra: Sequence[Path] = ()) -> list[Path]:
    """Make sure the server's dist cache holds a distribution for every pin."""
    files = c.packager.distributions(pins, target(c))
    return upload_new(c, sorted(files.values()) + list(extra), c.settings.layout.dist)


# -- pins -------------------------------------------------------------------------------------
def chosen_chain(c: Context) -> list[Path]:
    """The cfg built on the server (the ``buildout`` option) and every file it extends."""
    return cfgfiles.config_chain(c.facts.directory / c.settings.buildout_cfg)


def resolution(c: Context) -> Resolution:
    """The chosen cfg as buildout resolves it on this machine, at the versions the local
    build used: every distribution the server's build needs (eggs only production uses
    included) and its parts list. Worked out at the start of deploy (a cfg that does not
    build here fails the deploy before anything is uploaded), and again once the server's
    Python is known if its environment markers differ from this one's (Debian 12's 3.11.2
    against 3.11.7 here: redis then needs async-timeout)."""
    st = state(c)
    markers = st.target.markers() if st.target is not None else _last_markers(c)
    previous = st.resolution
    if previous is None or dict(previous.markers) != markers:
        cfg = c.facts.directory / c.settings.buildout_cfg
        section = c.facts.versions_section
        chain = cfgfiles.chain_pins(cfg, section)
        pins = dict(chain)
        if c.settings.versionsfile.is_file():
            pins.update(versions.read(c.settings.versionsfile, section))
        try:
            st.resolution = c.packager.resolution(
                cfg, pins=pins, pinned_by_cfg=chain, parts=c.settings.parts,
                skip_parts=c.settings.sudo_parts, markers=markers)
        except HostoutError as err:
            raise type(err)(err.message, host=c.name, cause=err.cause) from err
        st.pins = None  # worked out again from this resolution
        if previous is None:
            line = st.resolution.unpinned_line()
            if line:
                c.report(line)
        else:
            more = {n: v for n, v in st.resolution.pins.items() if n not in previous.pins}
            if more:
                c.report(f"the server's Python {st.target.python_full if st.target else ''} "
                         "also needs: " + ", ".join(f"{n} {v}" for n, v in sorted(more.items())))
        for part, what in st.resolution.not_run.items():
            c.out.line(c.name, f"resolve: part {part} not installed here ({what})", level=1)
    return st.resolution


#: In hostout's working directory for each host: the markers of its Python at the last
#: deploy, so the resolution at the start of the next one is already the server's.
LAST_MARKERS = "markers.json"


def _last_markers(c: Context) -> dict[str, str]:
    try:
        found = json.loads((c.facts.work_dir(c.name) / LAST_MARKERS).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def remote_pins(c: Context) -> dict[str, str]:
    """Every version pinned on the server, worked out once per host: the chosen buildout's
    own pins, what the local build used, what the chosen cfg resolved here, and the
    develop releases."""
    st = state(c)
    if st.pins is None:
        section = c.facts.versions_section
        pins = cfgfiles.chain_pins(c.facts.directory / c.settings.buildout_cfg, section)
        if c.settings.versionsfile.is_file():
            pins.update(versions.read(c.settings.versionsfile, section))
        pins.update(resolution(c).pins)
        pins.update({r.name: r.version for r in c.packager.releases()})
        st.pins = pins
    return st.pins


def shipped_pins(c: Context) -> dict[str, str]:
    """The distributions the server's build uses, besides the develop releases: what the
    chosen cfg resolved here (not the local build's own extras, e.g. its test tools)."""
    markers = target(c).markers()  # the server's Python decides environment markers
    if markers != _last_markers(c):
        write_atomically(c.facts.work_dir(c.name) / LAST_MARKERS, json.dumps(markers))
    released = {canonicalize_name(r.name) for r in c.packager.releases()}
    return {n: v for n, v in resolution(c).pins.items()
            if canonicalize_name(n) not in released}


# -- uploadeggs -------------------------------------------------------------------------------
def uploadeggs(c: Context) -> dict[str, str]:
    built: list[Release] = c.packager.releases()
    found = {r.name: r.version for r in built}
    for r in built:
        verb = "changed. Releasing" if r.rebuilt else "unchanged. Reusing"
        c.out.info(f"Develop egg {r.source.name} {verb} {r.name} = {r.version}",
                   host=c.name)
    others = shipped_pins(c)
    new = ship(c, others, extra=[r.sdist for r in built])
    c.out.info("Eggs to transport: " + ", ".join(f"{n} = {v}" for n, v in found.items())
               if found else "No develop eggs to transport", host=c.name)
    if new:
        released = {r.sdist for r in built}
        names = [f.name for f in new if f in released]
        size = sum(f.stat().st_size for f in new)
        what = f"{len(new)} of {len(others) + len(built)} distributions uploaded, {_size(size)}"
        c.report(what + (f" (new: {', '.join(names)})" if names else ""))
    return found


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


# -- non-Python downloads ----------------------------------------------------------------------
def extends_cache(lay: Layout) -> PurePosixPath:
    """Where the server's buildout finds the cfg files ``extends`` names by URL."""
    return lay.cache / "extends"


def download_target(lay: Layout, fetched: downloads.Fetched) -> PurePosixPath:
    """Where the server's buildout looks for ``fetched`` (install-from-cache: offline)."""
    root = extends_cache(lay) if fetched.cache == downloads.EXTENDS_CACHE else lay.downloads
    return root / fetched.name


#: Run by the server's venv Python: ``-c FETCH TIMEOUT JSON`` with JSON a list of
#: [url, target, sha256]. Prints ``status<TAB>target<TAB>reason`` per file: ``have`` (already
#: there), ``fetched`` (now there), ``failed`` (could not fetch, or other content).
FETCH = """\
import concurrent.futures, hashlib, json, os, sys, urllib.error, urllib.request
timeout, todo = float(sys.argv[1]), json.loads(sys.argv[2])
def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as fh:
        for block in iter(lambda: fh.read(1 << 16), b''):
            h.update(block)
    return h.hexdigest()
def reason(err):
    if isinstance(err, urllib.error.HTTPError):
        return 'HTTP Error %s: %s' % (err.code, err.reason)
    inner = getattr(err, 'reason', None)
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    return str(inner if inner is not None else (getattr(err, 'strerror', None) or err))
def one(item):
    url, target, want = item
    try:
        if sha256(target) == want:
            return 'have', ''
    except OSError:
        pass
    tmp = os.path.join(os.path.dirname(target), '.%s.%d.part' % (os.path.basename(target),
                                                                  os.getpid()))
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        h = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, 'wb') as out:
            for block in iter(lambda: response.read(1 << 16), b''):
                h.update(block)
                out.write(block)
        if h.hexdigest() != want:
            return 'failed', 'checksum mismatch: it now serves other content (sha256 %s)' % (
                h.hexdigest()[:12])
        os.replace(tmp, target)
        return 'fetched', ''
    except Exception as err:
        return 'failed', reason(err)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    for (url, target, _), (status, why) in zip(todo, pool.map(one, todo)):
        print('%s\\t%s\\t%s' % (status, target, ' '.join(why.split())))
"""


def ship_downloads(c: Context) -> list[downloads.Fetched]:
    """Put every file that recipes and ``extends`` downloaded in the local build where the
    server's buildout finds it offline: the server fetches what it can reach; the rest is
    shipped from here (buildout's caches, else downloaded here first). Every file must have
    the content the local build got. Nothing is uploaded unless every file can be had.
    Returns what was shipped."""
    record = downloads.load(downloads.record_path(c.facts.parts_directory))
    wanted = record.files()
    if not wanted:
        return []
    lay = c.settings.layout
    targets = {f: download_target(lay, f) for f in wanted}
    todo = [[f.url, str(targets[f]), f.sha256] for f in wanted]
    script = join([str(lay.python), "-c", FETCH, str(c.settings.connect_timeout),
                   json.dumps(todo)])
    res = c.remote.execute(RemoteCommand(script, account=Account.BUILDOUT), hide=True,
                           echo=False)
    said: dict[str, tuple[str, str]] = {}
    for line in res.stdout.splitlines():
        status, _, rest = line.partition("\t")
        target, _, why = rest.partition("\t")
        said[target] = (status, why)
    fetched = [f for f in wanted if said.get(str(targets[f]), ("",))[0] == "fetched"]
    for f in fetched:
        c.out.line(c.name, f"the server fetched {f.url}", level=1)
    missing = [f for f in wanted if said.get(str(targets[f]), ("",))[0] not in ("have",
                                                                             "fetched")]
    local: dict[downloads.Fetched, Path] = {}
    problems = []
    caches = [c.facts.download_cache] if c.facts.download_cache else []
    for f in missing:  # every file first: nothing is uploaded unless all can be had
        server = said.get(str(targets[f]), ("", "it did not answer"))[1] or "failed"
        try:
            local[f] = c.shared.once(("download", f.url, f.sha256), lambda f=f: (
                downloads.local_copy(f, c.facts.work_dir("downloads"), caches)))
        except DownloadError as err:
            problems.append(f"cannot get {f.url}: on the server: {server}; here: "
                            f"{err.message}")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DownloadError(problems[0] + more, host=c.name)
    if local:
        dirs = sorted({str(targets[f].parent) for f in local})
        c.remote.execute(RemoteCommand(join(["mkdir", "-p", *dirs]), account=Account.BUILDOUT),
                         echo=False)
    for f, path in local.items():
        c.out.line(c.name, f"upload {f.basename} ({f.url}: the server cannot fetch it)",
                   level=1)
        c.remote.put(path, targets[f], account=Account.BUILDOUT)
    if fetched or local:
        said_parts = []
        if fetched:
            said_parts.append(f"{len(fetched)} fetched by the server")
        if local:
            size = sum(path.stat().st_size for path in local.values())
            names = ", ".join(_url_name(f.url) for f in local)
            said_parts.append(f"{len(local)} shipped from here ({names}; {_size(size)})")
        c.report("downloads: " + ", ".join(said_parts))
    return list(local)


def _url_name(url: str) -> str:
    """The last path segment of a URL, or the URL itself."""
    from urllib.parse import urlsplit

    return urlsplit(url).path.rstrip("/").rpartition("/")[2] or url


# -- the buildout files -------------------------------------------------------------------------
def pinned_cfg(pins: Mapping[str, str], section: str) -> str:
    return versions.render(dict(sorted(pins.items())), section).replace(
        versions.HEADER, "# Generated by collective.hostout: every version this deploy uses.\n")


def hostout_cfg(c: Context, lay: Layout) -> str:
    s = c.settings
    lines = [
        f"# Generated by collective.hostout for {c.name}: the build this server runs.",
        "[buildout]",
        f"extends = {s.buildout_cfg} pinned.cfg",
        "develop =",
        f"download-cache = {lay.downloads}",
        f"eggs-directory = {lay.eggs}",
        f"extends-cache = {extends_cache(lay)}",
        "install-from-cache = true",
        "newest = false",
    ]
    resolved = resolution(c)
    # the parts list as buildout resolved it here: a `parts = ${x:parts} app` left to the
    # server would load x's recipe before install-from-cache applies (and read an index)
    lines.append("parts = " + " ".join(s.parts or resolved.parts))
    if resolved.server_extensions is not None:
        lines.append("extensions = " + " ".join(resolved.server_extensions))
    # other [buildout] options naming another section, for the same reason (those holding
    # this machine's paths cannot serve the server and are left to it)
    ours = {line.partition(" =")[0] for line in lines[1:]}
    for key, value in sorted(resolved.buildout_options.items()):
        if key not in ours and str(c.facts.directory) not in value:
            lines.append(f"{key} = " + "\n    ".join(value.strip().splitlines()))
    return "\n".join(lines) + "\n"


def changed_files(c: Context, files: Mapping[PurePosixPath, Path]) -> list[PurePosixPath]:
    """The files whose content differs on the server (in the layout's ``inputs``: path in
    place, the staging directory of the next release otherwise)."""
    lay = c.settings.layout
    names = sorted(files)
    check = f"cd {q(lay.inputs)} && sha256sum -- {join([str(n) for n in names])} 2>/dev/null"
    res = c.remote.execute(RemoteCommand(check, account=Account.BUILDOUT, reads_only=True),
                           warn=True, hide=True, echo=False)
    remote = {}
    for line in res.stdout.splitlines():
        digest, _, name = line.partition("  ")
        remote[name] = digest
    return [n for n in names if remote.get(str(n)) != sha256_file(files[n])]


def sync(c: Context, files: Mapping[PurePosixPath, Path]) -> list[PurePosixPath]:
    """Upload the files whose content differs on the server; return what travelled."""
    lay = c.settings.layout
    changed = changed_files(c, files)
    dirs = sorted({str(lay.inputs / n.parent) for n in changed if str(n.parent) != "."})
    if dirs:
        c.remote.execute(RemoteCommand(join(["mkdir", "-p", *dirs]), account=Account.BUILDOUT),
                         echo=False)
    for n in changed:
        c.out.line(c.name, f"upload {n}")
        c.remote.put(files[n], lay.inputs / n, account=Account.BUILDOUT)
    return changed


def build_digest(c: Context, files: Mapping[PurePosixPath, Path]) -> str:
    """What decides the server's build: every uploaded file (pinned.cfg carries every
    version, develop releases included) and the options that drive the build step."""
    s = c.settings
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{name}\0{sha256_file(files[name])}\n".encode())
    h.update(repr((s.pre_commands, s.post_commands, s.sudo_parts, s.parts,
                   s.python_version)).encode())
    return h.hexdigest()


def buildout_files(c: Context) -> dict[PurePosixPath, Path]:
    """Every file uploadbuildout sends, by its name on the server: the chosen cfg chain,
    the include files, and the two generated files (written here first)."""
    base = c.facts.directory
    files = {cfgfiles.remote_name(p, base): p for p in chosen_chain(c)}
    for p in cfgfiles.include_files(c.settings.include, base):
        files[cfgfiles.remote_name(p, base)] = p
    generated = c.facts.work_dir(c.name)
    (generated / "pinned.cfg").write_text(pinned_cfg(remote_pins(c), c.facts.versions_section))
    (generated / "hostout.cfg").write_text(hostout_cfg(c, c.settings.layout))
    for name in GENERATED:
        if PurePosixPath(name) in files:
            raise HostoutError(f"{name} in your buildout clashes with the file hostout "
                               "generates on the server; rename it", host=c.name)
        files[PurePosixPath(name)] = generated / name
    return files


def uploadbuildout(c: Context) -> list[PurePosixPath]:
    ship_downloads(c)  # first: when a download cannot be had, no cfg file has changed
    files = buildout_files(c)
    state(c).build_digest = build_digest(c, files)
    changed = sync(c, files)
    if changed:
        c.report(f"{len(changed)} of {len(files)} files changed: "
                 + ", ".join(str(n) for n in changed))
    return changed
