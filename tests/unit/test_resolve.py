"""The chosen cfg resolved on this machine by a real scratch buildout (issue 8, item 2):
eggs only production uses are found and pinned, the result is cached by its inputs, parts
that must not run here do not, the resolved parts list lets the server build from its
cache whatever order buildout loads recipes in, and a cfg that does not build is one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from buildouts import buildout, hostout, write
from collective.hostout.config import cfgfiles, optionsfile
from collective.hostout.errors import DistributionError, ResolutionError
from collective.hostout.packaging import dists, resolve, versions


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("resolve")
    outside = d / "outside.txt"  # in the real buildout: what the developer works with
    write(d, "base.cfg", """
        [buildout]
        parts = app
        [app]
        recipe = zc.recipe.egg
        eggs = rich
    """)
    # production adds a supervisor nobody pinned, a ${x:parts} part list, a part that would
    # write outside the buildout, and a sudo part
    write(d, "prod.cfg", f"""
        [buildout]
        extends = base.cfg
        parts = ${{conf:parts}} app supervisor outside rootonly
        [conf]
        recipe = collective.recipe.template
        input = inline:port = 8080
        output = ${{buildout:directory}}/etc/app.conf
        parts = conf
        [supervisor]
        recipe = collective.recipe.supervisor
        programs = 10 app /bin/true
        [outside]
        recipe = collective.recipe.template
        input = inline:x
        output = {outside}
        [rootonly]
        recipe = collective.recipe.template
        input = inline:y
        output = ${{buildout:directory}}/root.txt
    """)
    write(d, "buildout.cfg", """
        [buildout]
        extends = base.cfg
        parts += h
        [h]
        recipe = collective.hostout
        host = example.invalid
        buildout = prod.cfg
        sudo-parts = rootonly
    """)
    buildout(d)
    return d


def _resolve(d: Path, cfg: str = "prod.cfg", **kw) -> resolve.Resolution:
    facts = optionsfile.load(d / "parts/hostout/hostout.json").facts
    chain = cfgfiles.chain_pins(d / cfg, "versions")
    pins = {**chain, **versions.read(d / "hostoutversions.cfg")}
    return resolve.resolve(facts, d / cfg, pins=pins, pinned_by_cfg=chain, **kw)


def test_production_only_eggs_are_resolved_pinned_and_named(project: Path):
    r = _resolve(project, skip_parts=("rootonly",))
    assert not r.cached
    used_locally = versions.read(project / "hostoutversions.cfg")
    assert r.pins["rich"] == used_locally["rich"]  # the version tested here
    for name in ("collective.recipe.supervisor", "supervisor", "collective.recipe.template"):
        assert name in r.pins and name in r.unpinned, name
    assert "rich" not in r.unpinned
    line = r.unpinned_line()
    assert line.startswith("pinned 3 eggs that no cfg pins: ")
    assert f"supervisor {r.pins['supervisor']}" in line and "\n" not in line
    # the part list as buildout resolved it
    assert r.parts == ("conf", "app", "supervisor", "outside", "rootonly")
    assert r.buildout_options == {"parts": "conf app supervisor outside rootonly"}


def test_parts_that_must_not_run_here_do_not(project: Path):
    r = _resolve(project, skip_parts=("rootonly",))
    scratch = project / "parts/hostout/scratch/prod"
    outside = project / "outside.txt"
    assert not outside.exists()
    assert set(r.not_run) == {"outside"} and str(outside) in r.not_run["outside"]
    assert r.skipped == ("rootonly",)
    assert not (scratch / "root.txt").exists()
    assert (scratch / "etc/app.conf").read_text().strip() == "port = 8080"
    assert not (project / "etc").exists()  # the real buildout is left alone
    assert "supervisor" not in versions.read(project / "hostoutversions.cfg")


def test_unchanged_inputs_are_not_resolved_again(project: Path):
    first = _resolve(project, skip_parts=("rootonly",))
    log = project / "parts/hostout/scratch/prod.log"
    stamp = log.stat().st_mtime_ns
    again = _resolve(project, skip_parts=("rootonly",))
    assert again.cached and again.pins == first.pins and log.stat().st_mtime_ns == stamp
    other = _resolve(project, skip_parts=("rootonly", "outside"))
    assert not other.cached and other.skipped == ("outside", "rootonly")


def test_resolved_parts_build_from_the_cache_alone(project: Path, tmp_path: Path):
    """What the server gets (notes: `${x:parts}` loads x's recipe before install-from-cache
    applies, so from an index): the chosen cfg, the resolved parts list, a download cache."""
    r = _resolve(project, skip_parts=("rootonly",))
    server = tmp_path / "server"
    for name in ("base.cfg", "prod.cfg"):
        shutil.copy(project / name, server / name if server.exists() else _mk(server) / name)
    cache = tmp_path / "cache"  # what deploy ships: a distribution for every pin
    found = dists.collect(r.pins, cache / "dist", caches=[project / "parts/hostout/cache/dist"])
    for path in found.values():
        if path.parent != cache / "dist":
            shutil.copy(path, cache / "dist")
    pins = "".join(f"{n} = {v}\n" for n, v in r.pins.items())
    common = (f"download-cache = {cache}\ninstall-from-cache = true\nnewest = false\n"
              "index = http://127.0.0.1:9/simple\n")  # nothing answers there
    write(server, "bare.cfg", f"[buildout]\nextends = prod.cfg\n{common}"
                              f"parts = ${{conf:parts}} app\n[versions]\n{pins}")
    proc = buildout(server, "-c", "bare.cfg", check=False)
    assert proc.returncode != 0
    assert "Couldn't find a distribution for 'collective.recipe.template" in proc.stdout + \
        proc.stderr
    parts = " ".join(p for p in r.parts if p not in ("outside", "rootonly"))
    write(server, "hostout.cfg", f"[buildout]\nextends = prod.cfg\n{common}"
                                 f"parts = {parts}\n[versions]\n{pins}")
    buildout(server, "-c", "hostout.cfg")
    assert (server / "bin/supervisord").is_file()


def _mk(d: Path) -> Path:
    d.mkdir(parents=True)
    return d


def test_a_cfg_that_does_not_build_here_is_one_line(project: Path):
    write(project, "broken.cfg", """
        [buildout]
        extends = base.cfg
        parts = app
        index = file:///nonexistent/simple
        [app]
        recipe = zc.recipe.egg
        eggs = no-such-distribution-hostout-test
    """)
    with pytest.raises(ResolutionError) as info:
        _resolve(project, "broken.cfg")
    message = str(info.value)
    assert message.startswith("broken.cfg does not build on this machine: ")
    assert "no-such-distribution-hostout-test" in message and "\n" not in message


def test_deploy_of_a_cfg_that_does_not_build_here_stops_before_connecting(tmp_path: Path):
    write(tmp_path, "prod.cfg", """
        [buildout]
        parts = app
        index = file:///nonexistent/simple
        [app]
        recipe = zc.recipe.egg
        eggs = no-such-distribution-hostout-test
    """)
    write(tmp_path, "buildout.cfg", """
        [buildout]
        parts = host1
        [host1]
        recipe = collective.hostout
        host = 127.0.0.1:9
        buildout = prod.cfg
        buildout-group = g
    """)
    buildout(tmp_path)
    proc = hostout(tmp_path, "host1", "deploy")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"Error: host1: prod.cfg does not build on this machine: Couldn't find a distribution "
        f"for 'no-such-distribution-hostout-test'. (full output: "
        f"{tmp_path}/parts/hostout/scratch/prod.log)"]
    # nothing reached for the host: port 9 would have been a connection error
    assert "connect" not in proc.stdout + proc.stderr.lower()


def test_no_distribution_for_the_servers_platform_is_one_line_naming_it(tmp_path: Path):
    cache = tmp_path / "cache"
    cache.mkdir()
    # this machine's binary wheel does not fit an aarch64 server, and the index has none
    (cache / "hostoutfakebin-1.0-cp311-cp311-manylinux_2_17_x86_64.whl").write_text("x")
    arm = dists.Target("3.11", "linux-aarch64")
    with pytest.raises(DistributionError) as info:
        dists.collect({"hostoutfakebin": "1.0"}, tmp_path / "dest", caches=[cache], target=arm)
    message = str(info.value)
    assert message.startswith("no distribution of hostoutfakebin==1.0 for the server's Python "
                              "3.11 on linux-aarch64 could be found or downloaded")
    assert "\n" not in message


def test_the_servers_python_decides_environment_markers(tmp_path: Path):
    """redis needs async-timeout only where python_full_version < 3.11.3 (Debian 12's
    python3.11 is 3.11.2): resolved with the server's markers, it is pinned."""
    import platform

    write(tmp_path, "buildout.cfg", """
        [buildout]
        parts = app h
        [app]
        recipe = zc.recipe.egg
        eggs = redis
        [h]
        recipe = collective.hostout
        host = example.invalid
    """)
    buildout(tmp_path)
    facts = optionsfile.load(tmp_path / "parts/hostout/hostout.json").facts
    pins = versions.read(tmp_path / "hostoutversions.cfg")
    here = resolve.resolve(facts, tmp_path / "buildout.cfg", pins=pins, pinned_by_cfg={})
    server = dists.Target("3.11", "linux-x86_64", python_full="3.11.2")
    assert server.markers() == {"python_full_version": "3.11.2"}
    assert dists.Target.local().markers() == {}
    there = resolve.resolve(facts, tmp_path / "buildout.cfg", pins=pins, pinned_by_cfg={},
                            markers=server.markers())
    local_needs = tuple(map(int, platform.python_version().split("."))) < (3, 11, 3)
    assert ("async-timeout" in here.pins) == local_needs
    assert "async-timeout" in there.pins and there.markers == server.markers()
    assert there.digest != here.digest


def test_a_wheel_the_servers_python_cannot_install_is_named_before_upload(tmp_path: Path):
    import zipfile

    def wheel(name: str, version: str, requires: str) -> Path:
        path = tmp_path / f"{name}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as whl:
            whl.writestr(f"{name}-{version}.dist-info/METADATA",
                         f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                         f"Requires-Python: {requires}\n\n")
        return path

    found = {"soupsieve": wheel("soupsieve", "4.1.4", ">=3.11.5"),
             "webob": wheel("webob", "1.8.11", ">=3.7")}
    old = dists.Target("3.11", "linux-x86_64", python_full="3.11.2")
    with pytest.raises(DistributionError) as info:
        dists.check_python(found, old)
    assert str(info.value) == (
        "the server's Python 3.11.2 cannot install soupsieve 4.1.4 (requires Python >=3.11.5): "
        "pin versions that support it (or give the server a newer Python)")
    dists.check_python(found, dists.Target("3.11", "linux-x86_64", python_full="3.11.9"))


def test_hooks_run_in_the_scratch_build_and_report(project: Path, tmp_path: Path, monkeypatch):
    """What the downloads helper needs: code of its own in the scratch build's process."""
    write(tmp_path, "scratchhook.py", """
        import zc.buildout.download

        def start():
            seen = []
            original = zc.buildout.download.Download.__call__
            def call(self, url, *args, **kwargs):
                seen.append(url)
                return original(self, url, *args, **kwargs)
            zc.buildout.download.Download.__call__ = call
            return lambda: {"urls": seen, "loaded": True}
    """)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    r = _resolve(project, skip_parts=("rootonly", "outside", "conf"),
                 hooks=("scratchhook:start",))
    assert r.hooks == {"scratchhook:start": {"urls": [], "loaded": True}}
