"""The orchestration of deploy against the recording fake: which commands, in which order,
as which account. The same steps run against real hosts in tests/test_deploy.py.
(The release layout's own flows: tests/unit/test_release_orchestration.py.)"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from collective.hostout import Account, RecordingRemote
from collective.hostout.commands.context import Context
from collective.hostout.commands.discovery import registry_for
from collective.hostout.config.facts import BuildoutFacts
from collective.hostout.config.settings import build_settings
from collective.hostout.errors import CommandFailed
from collective.hostout.output import QUIET, Output
from collective.hostout.packaging.dists import Target
from collective.hostout.packaging.resolve import Resolution
from collective.hostout.steps.bootstrap import BOOTSTRAP_MARKER, bootstrap_pins, pins_digest
from collective.hostout.steps.build import MARKER

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n'
PROBE = r"sysconfig\.get_platform"


class FakePackager:
    """Stands in for the local side: no develop eggs, a file per pin."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.asked: list[tuple[dict[str, str], Target]] = []

    def releases(self) -> list[object]:
        return []

    resolved: Resolution | None = None  # what the resolution says, if not the default

    def resolution(self, cfg: Path, *, pins: Mapping[str, str], pinned_by_cfg: Mapping[str, str],
                   parts: tuple[str, ...] = (), skip_parts: tuple[str, ...] = (),
                   markers: Mapping[str, str] | None = None) -> Resolution:
        """The chosen cfg as if buildout resolved it: its own pins, its parts."""
        self.asked_resolution = (cfg.name, dict(pins), tuple(parts), tuple(skip_parts))
        return self.resolved or Resolution(
            cfg=cfg.name, pins=dict(pins), parts=tuple(parts) or ("app",), buildout_options={},
            unpinned=(), not_run={}, skipped=(), digest="0" * 64)

    def distributions(self, pins: Mapping[str, str], target: Target) -> dict[str, Path]:
        self.asked.append((dict(pins), target))
        found = {}
        for name, version in pins.items():
            path = self.directory / f"{name}-{version}-py3-none-any.whl"
            path.write_text(name)
            found[name] = path
        return found


def make(tmp_path: Path, remote: RecordingRemote, **options: str) -> Context:
    (tmp_path / "prod.cfg").write_text("[buildout]\nparts =\n[versions]\nwebob = 1.8.11\n")
    opts = {"buildout": "prod.cfg", "path": "/srv/app", "buildout-user": "bo",
            "effective-user": "app", "buildout-group": "grp",
            "identity-file": str(tmp_path / "host1_key"),
            "pre-commands": "stop-app", "post-commands": "start-app", **options}
    settings = build_settings("host1", opts, buildout_directory=tmp_path)
    dists = tmp_path / "dists"
    dists.mkdir(exist_ok=True)
    return Context(settings, remote, registry_for(settings), Output(verbosity=QUIET),
                   BuildoutFacts.of_directory(tmp_path),
                   packager=FakePackager(dists))  # type: ignore[arg-type]


def bare_host() -> RecordingRemote:
    remote = RecordingRemote("host1")
    remote.respond(PROBE, stdout="linux-x86_64 3.11\n")  # after apt-get install
    remote.respond(PROBE, exited=1, times=1)  # the first probe: no python
    remote.respond(r"^cat /etc/os-release$", stdout=DEBIAN)
    return remote


def steps(remote: RecordingRemote) -> list[tuple[str, str]]:
    """(who, what) of the commands that change something, in order."""
    keep = [("mv -f lock.$$ lock", "lock"), ("rm -f lock", "unlock"), ("useradd", "users"),
            ("apt-get update", "apt update"),
            ("apt-get install", "apt install"), ("install -d", "dirs"), ("-m venv", "venv"),
            ("pip install", "pip"), ("stop-app", "pre"), ("ln -s ../../var var", "release"),
            ("bin/buildout -c hostout.cfg", "build"), ("chown -R", "owners"),
            (rf"> \S+/{re.escape(MARKER)}$", "marker"), ("os.replace(tmp", "switch"),
            ("start-app", "post")]
    found = []
    for call in remote.calls:
        if call.kind == "put":
            found.append((call.who, "put " + Path(call.path).name))
            continue
        for needle, label in keep:
            if re.search(needle if needle.endswith("$") else re.escape(needle), call.script):
                found.append((call.who, label))
                break
    return found


def test_first_deploy_bootstraps_then_ships_then_builds_a_release(tmp_path: Path):
    remote = bare_host()
    c = make(tmp_path, remote)
    c.call("deploy")
    order = steps(remote)
    puts = [what for who, what in order if what.startswith("put ")]
    assert all(who == "buildout" for who, what in order if what.startswith("put "))
    assert {"put hostout.cfg", "put pinned.cfg", "put prod.cfg"} <= set(puts)
    # nothing runs yet, so there is nothing for pre-commands to stop
    assert [step for step in order if not step[1].startswith("put ")] == [
        ("buildout", "lock"),
        ("root", "users"), ("root", "apt update"), ("root", "apt install"), ("root", "dirs"),
        ("buildout", "venv"), ("buildout", "pip"), ("buildout", "release"),
        ("buildout", "build"), ("root", "owners"), ("buildout", "marker"),
        ("buildout", "switch"), ("root", "post"), ("buildout", "unlock")]
    assert order.index(("buildout", "pip")) < order.index(("buildout", "put prod.cfg"))
    assert order.index(("buildout", "put hostout.cfg")) < order.index(("buildout", "build"))
    # the cfg files go to the next release's staging, the dists to the shared cache
    assert "/srv/app.hostout/staging/pinned.cfg" in remote.files
    assert any(f.startswith("/srv/app.hostout/buildout-cache/downloads/dist/")
               for f in remote.files)
    build = remote.ran(r"bin/buildout -c hostout\.cfg")[0]
    assert build.cwd.startswith("/srv/app.hostout/releases/") and build.account is Account.BUILDOUT
    assert "/srv/app.hostout/venv/bin/buildout" in build.script
    dirs = remote.ran(r"\Aset -e\ninstall -d")[0].script
    assert "ln -s app.hostout/current /srv/app" in dirs  # path is the current release
    (switch,) = remote.ran(r"os\.replace\(tmp")
    assert f"releases/{Path(build.cwd).name}" in switch.script


def test_first_deploy_in_place_bootstraps_then_ships_then_builds(tmp_path: Path):
    remote = bare_host()
    c = make(tmp_path, remote, releases="false")
    c.call("deploy")
    order = steps(remote)
    puts = [what for who, what in order if what.startswith("put ")]
    assert all(who == "buildout" for who, what in order if what.startswith("put "))
    assert {"put hostout.cfg", "put pinned.cfg", "put prod.cfg"} <= set(puts)
    assert [step for step in order if not step[1].startswith("put ")] == [
        ("buildout", "lock"),
        ("root", "users"), ("root", "apt update"), ("root", "apt install"), ("root", "dirs"),
        ("buildout", "venv"), ("buildout", "pip"), ("root", "pre"), ("buildout", "build"),
        ("root", "owners"), ("buildout", "marker"), ("root", "post"), ("buildout", "unlock")]
    # bootstrap wheels before the cfg files, the cfg files before the build
    assert order.index(("buildout", "pip")) < order.index(("buildout", "put prod.cfg"))
    assert order.index(("buildout", "put hostout.cfg")) < order.index(("buildout", "build"))
    # the server learnt its platform once, from the probe, and every dist was asked for it
    assert {target for _, target in c.packager.asked} == {Target("3.11", "linux-x86_64")}  # type: ignore[attr-defined]
    pinned = remote.files["/srv/app/pinned.cfg"].decode()
    assert re.search(r"^webob = 1\.8\.11$", pinned, re.M)  # the chosen cfg's own pin
    assert "install-from-cache = true" in remote.files["/srv/app/hostout.cfg"].decode()
    build = remote.ran(r"bin/buildout -c hostout\.cfg")[0]
    assert build.cwd == "/srv/app" and build.account is Account.BUILDOUT


@pytest.mark.parametrize("releases", ["true", "false"])
def test_unchanged_redeploy_neither_builds_nor_restarts(tmp_path: Path, releases: str):
    first = bare_host()
    make(tmp_path, first, releases=releases).call("deploy")
    marker = first.ran(rf"> \S+/{re.escape(MARKER)}$")[0].script
    digest = marker.split("'%s\\n' ")[1].split()[0]

    pins = first.ran(rf"/{re.escape(BOOTSTRAP_MARKER)}$")[0].script.split("'%s\\n' ")[1].split()[0]
    again = RecordingRemote("host1")  # bootstrapped, with today's Python and pins
    again.respond(r"^test -x /srv/app\S*/bin/buildout && echo bootstrapped$",
                  stdout=f"bootstrapped\nvenv-python 3.11\nbootstrap-pins {pins}\n")
    again.respond(PROBE, stdout="linux-x86_64 3.11\n")
    again.respond(r"^echo \"current ", stdout=f"current releases/20261207-101522\n"
                  f"built {digest}\n")
    inputs = "/srv/app.hostout/staging" if releases == "true" else "/srv/app"
    files = {name: hashlib.sha256(data).hexdigest() for name, data in first.files.items()}
    again.respond(r"sha256sum", stdout="".join(
        f"{d}  {Path(n).relative_to(inputs)}\n" for n, d in files.items()
        if n.endswith(".cfg")))
    again.respond(r"^ls -1 ", stdout="\n".join(Path(n).name for n in first.files))
    make(tmp_path, again, releases=releases).call("deploy")
    assert [c for c in again.calls if c.kind == "put"] == []
    assert not again.ran("useradd|apt-get|bin/buildout -c|stop-app|start-app|os.replace")
    # the lock, and a history line saying nothing changed, are all that is written
    (unlock,) = again.ran("rm -f lock")
    assert '"result": "unchanged"' in unlock.script


def test_in_place_post_commands_run_after_a_failed_build_and_failures_are_warnings(
        tmp_path: Path):
    remote = bare_host()
    remote.respond(r"bin/buildout -c hostout\.cfg", exited=1, stderr="While:\n  Installing.\n")
    remote.respond(r"^stop-app$", exited=3)
    c = make(tmp_path, remote, releases="false")
    with pytest.raises(CommandFailed, match=r"exited 1: Installing\."):
        c.call("deploy")
    assert steps(remote)[-2:] == [("root", "post"), ("buildout", "unlock")]
    assert not remote.ran(rf"> \S+/{re.escape(MARKER)}$")  # a failed build is never marked
    assert c.warnings == ["pre-command 'stop-app' exited 3 (ignored)"]
    assert '"result": "failed"' in remote.ran("rm -f lock")[0].script


def test_a_missing_group_stops_before_any_command(tmp_path: Path):
    remote = bare_host()
    c = make(tmp_path, remote, **{"buildout-group": ""})
    with pytest.raises(Exception, match="option buildout-group is required"):
        c.call("bootstrap")
    assert remote.calls == []


def bootstrapped_host(venv: str = "3.11", pins: str = "old", missing: str = "") -> RecordingRemote:
    remote = RecordingRemote("host1")
    remote.respond(r"^test -x /srv/app.hostout/venv/bin/buildout && echo bootstrapped$",
                   stdout=f"bootstrapped\nvenv-python {venv}\nbootstrap-pins {pins}\n"
                   + "".join(f"missing-package {m}\n" for m in missing.split()))
    remote.respond(r"&& echo have$", stdout="path-symlink\nhave\n")  # the directories
    remote.respond(PROBE, stdout=f"linux-x86_64 {venv}\n")
    remote.respond(r"^cat /etc/os-release$", stdout=DEBIAN)
    return remote


def current_pins(tmp_path: Path) -> str:
    c = make(tmp_path, RecordingRemote("host1"))
    return pins_digest(bootstrap_pins(c), c.settings.python_version)


def test_system_packages_added_later_are_installed_on_the_next_deploy(tmp_path: Path):
    remote = bootstrapped_host(missing="libxml2-dev", pins=current_pins(tmp_path))
    remote.respond(r"\Afor p in gcc libxml2-dev; do", stdout="missing-package libxml2-dev\n")
    out = Output(verbosity=QUIET)
    c = make(tmp_path, remote, **{"system-packages": "gcc libxml2-dev"})
    c.out = out
    c.call("predeploy")
    (install,) = remote.ran("apt-get install")
    assert install.sudo and install.script.split("||")[0].split()[-1] == "libxml2-dev"
    assert not remote.ran("useradd|-m venv|pip install")  # nothing else redone
    assert not remote.ran("apt-get install .*gcc")


def test_a_changed_python_version_installs_it_and_remakes_the_venv(tmp_path: Path):
    remote = bootstrapped_host(venv="3.11")
    remote.respond(r"python3\.12 -c .*sysconfig", stdout="linux-x86_64 3.12\n")
    remote.respond(r"python3\.12 -c .*sysconfig", exited=1, times=1)  # not there yet
    c = make(tmp_path, remote, **{"python-version": "3.12"})
    c.call("predeploy")
    steps = [call.script for call in remote.calls if "apt-get install" in call.script
             or "-m venv" in call.script or "pip install" in call.script]
    assert "python3.12 python3.12-venv" in steps[0]
    assert "rm -f /srv/app.hostout/venv/bin/python" in steps[1]
    assert "python3.12 -m venv /srv/app.hostout/venv" in steps[1]
    assert steps[2].startswith("/srv/app.hostout/venv/bin/python -m pip install")
    assert not remote.ran("useradd")


def test_new_bootstrap_pins_reinstall_the_venv_without_sudo(tmp_path: Path):
    remote = bootstrapped_host(pins="stale")
    c = make(tmp_path, remote)
    c.call("predeploy")
    assert remote.ran(r"-m pip install .*zc\.buildout==")
    assert not [call for call in remote.calls if call.sudo]  # the directories exist
    assert not remote.ran("apt-get")


def test_an_unchanged_bootstrap_runs_one_probe(tmp_path: Path):
    first = bare_host()
    make(tmp_path, first).call("bootstrap")
    written = first.ran(rf"/{re.escape(BOOTSTRAP_MARKER)}$")[0].script
    assert current_pins(tmp_path) in written  # what the marker records is what is compared
    remote = bootstrapped_host(pins=current_pins(tmp_path))
    c = make(tmp_path, remote)
    c.call("predeploy")
    assert len(remote.calls) == 1


def test_the_resolution_decides_what_ships_the_parts_and_the_extensions(tmp_path: Path):
    from collective.hostout.steps import shipping

    remote = RecordingRemote("host1")
    remote.respond(PROBE, stdout="linux-x86_64 3.11\n")
    c = make(tmp_path, remote, **{"sudo-parts": "root1"})
    c.packager.resolved = Resolution(  # type: ignore[attr-defined]
        cfg="prod.cfg", pins={"WebOb": "1.8.11", "supervisor": "4.3.0"},
        parts=("conf", "app", "supervisor"), unpinned=("supervisor",),
        buildout_options={"parts": "conf app supervisor", "eggs-directory": str(tmp_path)},
        not_run={}, skipped=("root1",), digest="1" * 64, extensions=("mr.developer", "x.ext"))
    assert shipping.shipped_pins(c) == {"WebOb": "1.8.11", "supervisor": "4.3.0"}
    asked = c.packager.asked_resolution  # type: ignore[attr-defined]
    assert asked[0] == "prod.cfg" and asked[1] == {"webob": "1.8.11"} and asked[3] == ("root1",)
    cfg = shipping.hostout_cfg(c, c.settings.layout).splitlines()
    assert "parts = conf app supervisor" in cfg  # the resolved list, not ${x:parts}
    assert "extensions = x.ext" in cfg  # mr.developer's checkouts travel as releases
    assert not any(line.startswith("eggs-directory = " + str(tmp_path)) for line in cfg)
    assert shipping.remote_pins(c)["supervisor"] == "4.3.0"


def test_post_commands_that_leave_the_app_running_as_root_are_a_warning(tmp_path: Path):
    # the seed's post-commands run as root: `bin/supervisord` there runs the app as root
    remote = RecordingRemote("host1")
    remote.respond(r"^for d in /proc/", stdout="/srv/app.hostout/venv/bin/python "
                                                 "bin/supervisord \n")
    c = make(tmp_path, remote)
    c.call("postswitch")
    probe = next(call for call in remote.calls if call.script.startswith("for d in /proc/"))
    assert probe.account is Account.LOGIN and not probe.sudo
    assert c.warnings == ["runs as root: /srv/app.hostout/venv/bin/python bin/supervisord; "
                          "start the app as app instead (e.g. extends = hostout.supervisor, "
                          "or 'sudo -u USER' in post-commands)"]
    quiet = RecordingRemote("host1")
    c = make(tmp_path, quiet)
    c.call("postswitch")  # nothing of the buildout runs as root: no warning
    assert c.warnings == []
