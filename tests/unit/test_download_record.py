"""Non-Python downloads: what the recorder learns from zc.buildout's Download, the record,
copies made here, and the deploy step that has the server fetch them or ships them (against
the recording fake). Real local HTTP servers on 127.0.0.1; no host."""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import pytest
import zc.buildout.download

from collective.hostout import RecordingRemote
from collective.hostout.commands.context import Context
from collective.hostout.commands.discovery import registry_for
from collective.hostout.config import cfgfiles
from collective.hostout.config.facts import BuildoutFacts
from collective.hostout.config.settings import build_settings
from collective.hostout.errors import ConfigError, DownloadError
from collective.hostout.output import QUIET, Output
from collective.hostout.packaging import downloads
from collective.hostout.packaging.downloads import (
    DOWNLOAD_CACHE,
    EXTENDS_CACHE,
    NO_PART,
    Fetched,
    Record,
)
from collective.hostout.shell import Account
from collective.hostout.steps import shipping
from fileserver import FileServer


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def served(tmp_path: Path):
    root = tmp_path / "srv"
    root.mkdir()
    (root / "a.tar.gz").write_bytes(b"tarball")
    (root / "b.txt").write_bytes(b"bee")
    with FileServer(root) as srv:
        yield srv


# -- recording -------------------------------------------------------------------------------
def test_recording_names_each_file_as_buildouts_cache_does(tmp_path: Path, served: FileServer):
    cache, own = tmp_path / "cache", tmp_path / "own"
    cache.mkdir()
    own.mkdir()
    original = zc.buildout.download.Download.__call__
    md5 = hashlib.md5(b"tarball").hexdigest()
    with downloads.recording(str(cache)) as rec:
        opts = {"download-cache": str(cache)}
        zc.buildout.download.Download(opts, hash_name=True)(f"{served.url}/a.tar.gz",
                                                            md5sum=md5)
        zc.buildout.download.Download(opts, namespace="cmmi")(f"{served.url}/b.txt")
        _, is_temp = zc.buildout.download.Download({"download-cache": ""})(
            f"{served.url}/b.txt")  # an empty download-cache is none
        zc.buildout.download.Download({"download-cache": str(own)})(f"{served.url}/a.tar.gz")
        (tmp_path / "local.txt").write_text("x")
        zc.buildout.download.Download(opts)(str(tmp_path / "local.txt"))  # a path: local
    assert zc.buildout.download.Download.__call__ is original  # unhooked again
    assert is_temp
    files = rec.record(Record(), installed=None).parts[NO_PART]
    a = files[f"{served.url}/a.tar.gz"]
    assert a == Fetched(a.url, DOWNLOAD_CACHE, hashlib.md5(a.url.encode()).hexdigest(),
                        sha(b"tarball"), 7, md5, str(cache / a.name))
    b = files[f"{served.url}/b.txt"]  # the later, cache-less download of the same URL
    assert (b.name, b.kept, b.sha256) == ("b.txt", None, sha(b"bee"))
    assert len(files) == 2  # neither the local path nor a recipe's own cache
    assert list(rec.skipped) == [f"{served.url}/a.tar.gz"]
    assert "a cache of its own" in rec.skipped[f"{served.url}/a.tar.gz"]


def test_namespaced_cache_names(tmp_path: Path, served: FileServer):
    with downloads.recording(str(tmp_path)) as rec:
        zc.buildout.download.Download({"download-cache": str(tmp_path)},
                                      namespace="cmmi")(f"{served.url}/b.txt")
    (b,) = rec.record(Record(), None).parts[NO_PART].values()
    assert (b.name, b.kept) == ("cmmi/b.txt", str(tmp_path / "cmmi" / "b.txt"))


def test_replaying_extends_records_nested_urls(tmp_path: Path, served: FileServer):
    (served.directory / "base.cfg").write_text("[buildout]\nextends = more.cfg\n[x]\na = 1\n")
    (served.directory / "more.cfg").write_text("[x]\nb = 2\n")
    (tmp_path / "buildout.cfg").write_text(f"[buildout]\nextends = {served.url}/base.cfg\n")
    urls = downloads.extends_urls([tmp_path / "buildout.cfg"])
    assert urls == {f"{served.url}/base.cfg": tmp_path}
    ext = tmp_path / "ext"
    ext.mkdir()
    rec = downloads.Recorder()
    rec.attach()()  # attaching and undoing leaves zc.buildout as it was
    with downloads.recording() as rec:
        rec.replay_extends(urls, {"directory": str(tmp_path), "extends-cache": str(ext)})
    extends = rec.record(Record(), None).extends
    assert sorted(extends) == [f"{served.url}/base.cfg", f"{served.url}/more.cfg"]
    more = extends[f"{served.url}/more.cfg"]
    assert more.cache == EXTENDS_CACHE
    assert more.name == hashlib.md5(more.url.encode()).hexdigest()  # buildout's hash name
    assert more.kept == str(ext / more.name)  # the local extends-cache kept it


def test_cfgfiles_extends_urls(tmp_path: Path):
    (tmp_path / "a.cfg").write_text("[buildout]\nextends = b.cfg https://x.invalid/v.cfg\n")
    assert cfgfiles.extends_urls(tmp_path / "a.cfg") == ["https://x.invalid/v.cfg"]


def f(url: str, cache: str = DOWNLOAD_CACHE, data: bytes = b"data") -> Fetched:
    return Fetched(url, cache, url.rpartition("/")[2], sha(data), len(data))


def test_record_keeps_updated_parts_replaces_reinstalled_drops_removed():
    old = Record({"cmmi": {"u1": f("http://h/u1")}, "dl": {"u2": f("http://h/u2")},
                  "gone": {"u3": f("http://h/u3")}, "quiet": {}},
                 {"e": f("http://h/e", EXTENDS_CACHE)})
    rec = downloads.Recorder()
    rec._calling("cmmi", "update")  # an update that downloads nothing: keeps what it had
    rec._calling("dl", "install")  # reinstalled with another URL
    rec.seen["dl"] = {"u4": f("http://h/u4")}
    new = rec.record(old, installed=["cmmi", "dl", "quiet", "new"], extends=False)
    assert {p: sorted(files) for p, files in new.parts.items()} == {
        "cmmi": ["u1"], "dl": ["u4"], "quiet": []}
    assert new.unseen == ("new",)  # installed before anything watched it
    assert list(new.extends) == ["e"]  # not replayed this time: kept
    assert [x.url for x in new.files()] == ["http://h/e", "http://h/u1", "http://h/u4"]


def test_record_round_trips_and_refuses_garbage(tmp_path: Path):
    record = Record({"p": {"http://h/a": f("http://h/a")}}, {}, ("q",))
    path = tmp_path / "downloads.json"
    assert downloads.write(path, record)
    assert not downloads.write(path, record)  # unchanged: not rewritten
    assert downloads.load(path) == record
    assert downloads.load(tmp_path / "missing.json") == Record()
    data = json.loads(path.read_text())
    data["parts"]["p"][0]["name"] = "../../etc/passwd"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="not a downloads record"):
        downloads.load(path)


def test_union_adds_another_runs_files():
    main = Record({"a": {"http://h/1": f("http://h/1")}}, {}, ("b",))
    scratch = Record({"b": {"http://h/2": f("http://h/2")}}, {"e": f("http://h/e")})
    both = main.union(scratch)
    assert sorted(both.parts) == ["a", "b"]
    assert both.unseen == ()  # the scratch run installed b
    assert list(both.extends) == ["e"]


# -- a copy here -------------------------------------------------------------------------------
def test_local_copy_prefers_kept_then_caches_then_downloads(tmp_path: Path,
                                                             served: FileServer):
    url = f"{served.url}/a.tar.gz"
    want = Fetched(url, DOWNLOAD_CACHE, "a.tar.gz", sha(b"tarball"), 7)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "a.tar.gz").write_bytes(b"tarball")
    assert downloads.local_copy(want, tmp_path / "work", [cache]) == cache / "a.tar.gz"
    assert served.requests == []
    (cache / "a.tar.gz").write_bytes(b"stale")  # other content in the cache: not used
    got = downloads.local_copy(want, tmp_path / "work", [cache])
    assert got.read_bytes() == b"tarball" and got.is_relative_to(tmp_path / "work")
    assert served.asked("/a.tar.gz") == 1
    assert downloads.local_copy(want, tmp_path / "work", [cache]) == got  # not again
    assert served.asked("/a.tar.gz") == 1


def test_local_copy_errors_say_why(tmp_path: Path, served: FileServer):
    missing = Fetched(f"{served.url}/nope.tgz", DOWNLOAD_CACHE, "nope.tgz", "0" * 64, 1)
    with pytest.raises(DownloadError, match=r"^HTTP Error 404: File not found$"):
        downloads.local_copy(missing, tmp_path / "work")
    changed = Fetched(f"{served.url}/a.tar.gz", DOWNLOAD_CACHE, "a", "0" * 64, 1, "abc")
    with pytest.raises(DownloadError, match=r"checksum mismatch: .*md5sum abc"):
        downloads.local_copy(changed, tmp_path / "work")
    assert [p for p in (tmp_path / "work").rglob("*") if p.is_file()] == []  # nothing half-written


# -- the deploy step ---------------------------------------------------------------------------
def context(tmp_path: Path, remote: RecordingRemote, record: Record) -> Context:
    (tmp_path / "prod.cfg").write_text("[buildout]\nparts =\n")
    facts = BuildoutFacts.of_directory(tmp_path)
    downloads.write(downloads.record_path(facts.parts_directory), record)
    settings = build_settings("host1", {"buildout": "prod.cfg", "path": "/srv/app",
                                        "buildout-group": "grp"}, buildout_directory=tmp_path)
    return Context(settings, remote, registry_for(settings), Output(verbosity=QUIET), facts)


def two_files(served: FileServer, cache: Path) -> Record:
    (cache / "a.tar.gz").write_bytes(b"tarball")
    tarball = Fetched(f"{served.url}/a.tar.gz", DOWNLOAD_CACHE, "cmmi/a.tar.gz",
                      sha(b"tarball"), 7, kept=str(cache / "a.tar.gz"))
    cfg = Fetched(f"{served.url}/b.txt", EXTENDS_CACHE, "0123abcd", sha(b"bee"), 3)
    return Record({"redis": {tarball.url: tarball}}, {cfg.url: cfg})


def answer(remote: RecordingRemote, *lines: tuple[str, str, str]) -> None:
    remote.respond(r"-c 'import concurrent", stdout="".join(
        f"{status}\t{target}\t{why}\n" for status, target, why in lines))


A = "/srv/app/buildout-cache/downloads/cmmi/a.tar.gz"
B = "/srv/app/buildout-cache/extends/0123abcd"


def test_the_server_fetches_what_it_reaches(tmp_path: Path, served: FileServer):
    remote = RecordingRemote()
    answer(remote, ("fetched", B, ""), ("have", A, ""))
    c = context(tmp_path, remote, two_files(served, tmp_path))
    assert shipping.ship_downloads(c) == []
    (fetch,) = remote.calls
    assert fetch.account is Account.BUILDOUT
    assert fetch.script.startswith("/srv/app/bin/python -c ")
    todo = json.loads(shlex.split(fetch.script)[-1])
    assert todo == [[f"{served.url}/b.txt", B, sha(b"bee")],
                    [f"{served.url}/a.tar.gz", A, sha(b"tarball")]]
    assert served.requests == []


def test_what_the_server_cannot_reach_is_shipped_where_buildout_looks(tmp_path: Path,
                                                                      served: FileServer):
    remote = RecordingRemote()
    answer(remote, ("failed", B, "Connection refused"), ("failed", A, "timed out"))
    c = context(tmp_path, remote, two_files(served, tmp_path))
    shipped = shipping.ship_downloads(c)
    assert len(shipped) == 2
    assert remote.files == {B: b"bee", A: b"tarball"}  # b.txt fetched here, a.tar.gz kept
    assert served.asked("/b.txt") == 1 and served.asked("/a.tar.gz") == 0
    mkdir = remote.ran(r"^mkdir -p ")[0]
    assert mkdir.script == ("mkdir -p /srv/app/buildout-cache/downloads/cmmi "
                            "/srv/app/buildout-cache/extends")
    assert {call.account for call in remote.calls} == {Account.BUILDOUT}


def test_a_download_failing_everywhere_uploads_nothing(tmp_path: Path, served: FileServer):
    record = two_files(served, tmp_path)
    (served.directory / "b.txt").unlink()
    remote = RecordingRemote()
    answer(remote, ("failed", B, "Connection refused"), ("failed", A, "Connection refused"))
    c = context(tmp_path, remote, record)
    with pytest.raises(DownloadError) as err:
        shipping.uploadbuildout(c)
    assert str(err.value) == (f"host1: cannot get {served.url}/b.txt: on the server: "
                              "Connection refused; here: HTTP Error 404: File not found")
    assert remote.files == {}  # neither the tarball nor any cfg file
    assert not remote.ran("sha256sum|mkdir")


def test_no_record_means_no_remote_command(tmp_path: Path):
    remote = RecordingRemote()
    c = context(tmp_path, remote, Record())
    assert shipping.ship_downloads(c) == []
    assert remote.calls == []


def test_server_cfg_has_an_extends_cache(tmp_path: Path):
    c = context(tmp_path, RecordingRemote(), Record())
    cfg = shipping.hostout_cfg(c, c.settings.layout)
    assert "extends-cache = /srv/app/buildout-cache/extends\n" in cfg
    assert "install-from-cache = true\n" in cfg


# -- the recipe in a real local bin/buildout ------------------------------------------------------
def record_of(directory: Path) -> Record:
    return downloads.load(downloads.record_path(directory / "parts"))


def test_bin_buildout_records_parts_as_they_are_installed_updated_and_removed(
        tmp_path: Path, served: FileServer):
    from buildouts import buildout, write

    (served.directory / "base.cfg").write_text("[buildout]\nextends = more.cfg\n")
    (served.directory / "more.cfg").write_text("[x]\nb = 2\n")

    def cfg(parts: str, url: str = "a.tar.gz", host: bool = True) -> None:
        write(tmp_path, "buildout.cfg", f"""
            [buildout]
            extends = {served.url}/base.cfg
            parts = {parts} {'host1' if host else ''}
            [data]
            recipe = hexagonit.recipe.download
            url = {served.url}/{url}
            download-only = true
            [host1]
            recipe = collective.hostout
            host = 127.0.0.1:1
            buildout-group = grp
            """)

    cfg("data", host=False)  # built before hostout was part of it
    buildout(tmp_path)
    cfg("data")
    proc = buildout(tmp_path)
    assert "parts data were installed before hostout watched their downloads" in proc.stdout
    record = record_of(tmp_path)
    assert record.unseen == ("data",) and "data" not in record.parts
    assert sorted(record.extends) == [f"{served.url}/base.cfg", f"{served.url}/more.cfg"]
    assert "watched" not in buildout(tmp_path).stdout  # said once

    cfg("data", url="b.txt")  # changed: reinstalled, and seen
    buildout(tmp_path)
    record = record_of(tmp_path)
    assert record.unseen == ()
    assert [f.url for f in record.parts["data"].values()] == [f"{served.url}/b.txt"]
    asked = served.asked("/b.txt")
    buildout(tmp_path)  # an update downloads nothing, and forgets nothing
    assert served.asked("/b.txt") == asked
    assert [f.url for f in record_of(tmp_path).parts["data"].values()] == [
        f"{served.url}/b.txt"]

    cfg("")  # removed: forgotten
    buildout(tmp_path)
    assert "data" not in record_of(tmp_path).parts
