"""The release layout's flows against the recording fake: build beside the current release,
then pre-commands, switch, post-commands; no switch after a failed build; a failing health
check switches back; the lock first and last; rollback; plans that only read; taking over
the in-place layout. The same flows on a real host: tests/test_releases.py."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
from test_deploy_orchestration import DEBIAN, PROBE, make

from collective.hostout import RecordingRemote
from collective.hostout.errors import (
    CommandFailed,
    HealthCheckFailed,
    Interrupted,
    LockHeld,
    RollbackError,
)
from collective.hostout.output import QUIET, Output
from collective.hostout.remote.readonly import ReadOnlyRemote, WriteRefused
from collective.hostout.shell import Account, RemoteCommand
from collective.hostout.steps import lock
from collective.hostout.steps.bootstrap import bootstrap_pins, pins_digest
from collective.hostout.steps.releases import ReleaseInfo, ServerLayout, prunable, sort_key

OLD, CUR = "20261201-090000", "20261207-100000"
HEALTH = r"urllib\.request"


def current_pins(tmp_path: Path) -> str:
    c = make(tmp_path, RecordingRemote("host1"))
    return pins_digest(bootstrap_pins(c), c.settings.python_version)


def deployed(tmp_path: Path, *, path: str = "symlink", venv: bool = True,
             listing: str | None = None) -> RecordingRemote:
    """A host bootstrapped for the release layout whose current release is CUR."""
    remote = RecordingRemote("host1")
    pins = current_pins(tmp_path)
    remote.respond(r"^test -x /srv/app\S*/bin/buildout && echo bootstrapped$",
                   stdout=(f"bootstrapped\nvenv-python 3.11\nbootstrap-pins {pins}\n"
                           if venv else "") + f"path {path}\n")
    remote.respond(PROBE, stdout="linux-x86_64 3.11\n")
    remote.respond(r"^cat /etc/os-release$", stdout=DEBIAN)
    remote.respond(r"&& echo have$", stdout=f"path-{path}\nhave\n")
    remote.respond(r"^if \[ -L /srv/app \]; then echo kind", stdout=listing if listing is not
                   None else (f"kind releases\nlink app.hostout/current\n"
                              f"current releases/{CUR}\nrelease {OLD}\nbuilt {OLD} aaa\n"
                              f"release {CUR}\nbuilt {CUR} bbb\n"
                              f"meta {CUR} " + json.dumps({"develop": {"app": "1.0"},
                                                           "versions": "v1"}) + "\n"))
    return remote


def labels(remote: RecordingRemote) -> list[str]:
    """What the commands that change something did, in order."""
    keep = [(r"mv /srv/app /srv/app\.hostout/releases/", "takeover"),
            (r"mv -f lock\.\$\$ lock", "lock"), (r"rm -f lock", "unlock"),
            (r"ln -s \.\./\.\./var var", "release"), (r"buildout -c hostout\.cfg$", "build"),
            (r"chown -R", "owners"), (r"> \S+/\.hostout-built$", "marker"),
            (r"> \S+/\.hostout-failed$", "mark failed"), (r"os\.replace\(tmp", "switch"),
            (r"stop-app", "pre"), (r"start-app", "post"), (HEALTH, "health"),
            (r"shutil\.rmtree", "prune"), (r"moved var/", "prepare")]
    found = []
    for call in remote.calls:
        for pattern, label in keep:
            if call.kind == "run" and re.search(pattern, call.script, re.M):
                found.append(label)
                break
    return found


def switched_to(remote: RecordingRemote) -> list[str]:
    return [re.search(r"releases/(\S+)$", c.script).group(1)  # type: ignore[union-attr]
            for c in remote.ran(r"os\.replace\(tmp")]


def test_a_change_is_built_beside_the_current_release_then_switched(tmp_path: Path):
    remote = deployed(tmp_path)
    c = make(tmp_path, remote, healthcheck="http://127.0.0.1:8080/")
    c.call("deploy")
    assert labels(remote) == ["lock", "release", "build", "owners", "marker", "pre", "switch",
                              "post", "health", "unlock"]
    build = remote.ran(r"buildout -c hostout\.cfg$")[0]
    new = Path(build.cwd).name
    assert build.cwd == f"/srv/app.hostout/releases/{new}" and sort_key(new) > sort_key(CUR)
    pre = remote.ran("stop-app")[0]
    assert pre.cwd == "/srv/app" and pre.sudo  # in path: the running (current) release
    assert switched_to(remote) == [new]
    entry = json.loads(re.search(r"printf '%s\\n' '(\{.*\})' >> history", remote.ran(
        "rm -f lock")[0].script).group(1))  # type: ignore[union-attr]
    assert (entry["command"], entry["result"], entry["release"], entry["previous"]) == (
        "deploy", "ok", new, CUR)


def test_a_failed_build_stops_nothing_and_switches_nothing(tmp_path: Path):
    remote = deployed(tmp_path)
    remote.respond(r"buildout -c hostout\.cfg$", exited=1, stderr="While:\n  Installing.\n")
    c = make(tmp_path, remote)
    with pytest.raises(CommandFailed, match="Installing"):
        c.call("deploy")
    assert labels(remote) == ["lock", "release", "build", "mark failed", "unlock"]
    assert '"result": "failed"' in remote.ran("rm -f lock")[0].script


def test_a_failing_health_check_switches_back(tmp_path: Path):
    remote = deployed(tmp_path)
    remote.respond(HEALTH, stdout="HTTP 200 OK\n")
    remote.respond(HEALTH, stdout="HTTP 502 Bad Gateway\n", exited=1, times=1)
    c = make(tmp_path, remote, healthcheck="http://127.0.0.1:8080/")
    with pytest.raises(HealthCheckFailed) as err:
        c.call("deploy")
    new = switched_to(remote)[0]
    assert str(err.value) == (
        f"host1: health check http://127.0.0.1:8080/ failed for 60 s; last answer: HTTP 502 "
        f"Bad Gateway; rolled back to {CUR}, which answers HTTP 200 OK (release {new} is "
        "kept, marked failed)")
    assert labels(remote) == ["lock", "release", "build", "owners", "marker", "pre", "switch",
                              "post", "health", "pre", "switch", "post", "mark failed",
                              "health", "unlock"]
    assert switched_to(remote) == [new, CUR]
    assert '"result": "rolled back"' in remote.ran("rm -f lock")[0].script


def test_a_held_lock_refuses_before_anything_else(tmp_path: Path):
    remote = deployed(tmp_path)
    remote.respond(r"mv -f lock\.\$\$ lock", exited=3, stdout=(
        "token t\nwho alice\nfrom laptop\ncommand deploy\nsince 2026-12-07T10:00:00Z\n"
        "pid 42\nstale-after 30\nsession 7 8\nage 3\n"))
    c = make(tmp_path, remote)
    with pytest.raises(LockHeld) as err:
        c.call("deploy")
    assert str(err.value) == (
        "host1: locked by alice@laptop (deploy since 2026-12-07T10:00:00Z, pid 42); last "
        "heartbeat 3 s ago; try again later, wait with --lock-wait SECONDS, or if that run is "
        "gone: bin/hostout host1 unlock")
    assert len(remote.calls) == 1  # nothing else ran, nothing was written


def test_the_lock_is_taken_as_root_where_the_buildout_user_cannot(tmp_path: Path):
    remote = deployed(tmp_path)
    remote.respond(r"mv -f lock\.\$\$ lock", exited=4, times=1)  # cannot write path.hostout
    c = make(tmp_path, remote)
    c.call("deploy")
    first, second = remote.ran(r"mv -f lock\.\$\$ lock")
    assert (first.account, first.sudo, second.sudo) == (Account.BUILDOUT, False, True)
    assert remote.ran("rm -f lock")[0].sudo  # released as it was taken


def test_lock_records_read_back():
    record = lock.LockRecord.new("deploy", 30)
    again = lock.LockRecord.parse(record.text() + "\nsession 12 34\nage 5\n")
    assert again is not None
    assert (again.token, again.command, again.stale_after, again.session, again.age) == (
        record.token, "deploy", 30, "12 34", 5)
    assert again.describe().endswith(f"(deploy since {record.since}, pid {record.pid})")
    assert lock.LockRecord.parse("garbage") is None


def test_ctrl_c_lets_a_switch_finish_then_releases_the_lock(tmp_path: Path):
    remote = deployed(tmp_path)
    c = make(tmp_path, remote)
    held = lock.acquire(c, "deploy")
    c.state(lock.LockState).held = held

    def switching() -> None:
        with held.critical():
            time.sleep(0.3)
            remote.execute(RemoteCommand("start-app"))

    worker = threading.Thread(target=switching)
    worker.start()
    time.sleep(0.1)
    lock.interrupt([c], Output(verbosity=QUIET))
    worker.join()
    order = labels(remote)
    assert order[-2:] == ["post", "unlock"]  # the switch finished before the release
    assert '"result": "interrupted"' in remote.ran("rm -f lock")[0].script
    with pytest.raises(Interrupted):
        held.checkpoint()


def test_rollback_to_the_previous_release_builds_nothing(tmp_path: Path):
    remote = deployed(tmp_path)
    c = make(tmp_path, remote)
    assert c.call("rollback") == OLD
    assert labels(remote) == ["lock", "pre", "switch", "post", "unlock"]
    assert switched_to(remote) == [OLD]


@pytest.mark.parametrize(("wanted", "message"), [
    ("20990101-000000", f"no release 20990101-000000 (pruned, or never made; releases: "
                        f"{OLD}, {CUR})"),
    ("../../etc", "'../../etc' is not a release id such as 20261207-101522"),
    (CUR, f"{CUR} is the current release already"),
])
def test_rollback_bad_input_is_one_line_and_changes_nothing(tmp_path: Path, wanted: str,
                                                             message: str):
    remote = deployed(tmp_path)
    c = make(tmp_path, remote)
    with pytest.raises(RollbackError, match=re.escape(message)):
        c.call("rollback", wanted)
    assert len(remote.calls) == 1 and "echo kind" in remote.calls[0].script  # one look


def test_rollback_needs_a_previous_release(tmp_path: Path):
    remote = deployed(tmp_path, listing=f"kind releases\ncurrent releases/{CUR}\n"
                                        f"release {CUR}\nbuilt {CUR} x\n")
    with pytest.raises(RollbackError, match=f"no release before the current {CUR}"):
        make(tmp_path, remote).call("rollback")


def test_plan_only_reads(tmp_path: Path):
    remote = deployed(tmp_path)
    c = make(tmp_path, remote, healthcheck="http://127.0.0.1:8080/", **{"keep-releases": "2"})
    found = c.call("plan")
    assert [call for call in remote.calls if call.kind == "put"] == []
    assert found["build"] and found["files"] == ["hostout.cfg", "pinned.cfg", "prod.cfg"]
    assert found["prune"] == [OLD]  # with keep-releases = 2, after a new release
    shown = "\n".join(found["steps"])
    assert "sudo: cd /srv/app && stop-app" in shown and "rename it to" in shown
    assert c.remote is remote  # the read-only wrapper is gone again


def test_the_read_only_remote_refuses_what_writes():
    inner = RecordingRemote("h")
    guarded = ReadOnlyRemote(inner)
    assert guarded.execute(RemoteCommand("cat x", reads_only=True)).ok
    with pytest.raises(WriteRefused, match="refused: run: rm -rf x"):
        guarded.execute(RemoteCommand("rm -rf x"))
    with pytest.raises(WriteRefused):
        guarded.put(__file__, "/tmp/x")
    assert [call.script for call in inner.calls] == ["cat x"]


def test_an_in_place_server_is_taken_over(tmp_path: Path):
    remote = deployed(tmp_path, path="dir", venv=False, listing="kind inplace\n"
                                                                "inplace-time 1764000000\n")
    remote.respond(r"\Aset -e\n\[ -d /srv/app \] && \[ ! -L /srv/app \]", stdout="moved var/\n")
    c = make(tmp_path, remote)
    c.call("deploy")
    order = labels(remote)
    assert order[:2] == ["lock", "prepare"]
    assert order[order.index("build"):] == ["build", "owners", "marker", "pre", "takeover",
                                            "post", "unlock"]
    prepare = remote.ran("moved var/")[0].script
    assert ("mv /srv/app/var /srv/app.hostout/var && ln -s /srv/app.hostout/var "
            "/srv/app/var") in prepare
    assert ("mv /srv/app/buildout-cache /srv/app.hostout/buildout-cache && ln -s "
            "/srv/app.hostout/buildout-cache /srv/app/buildout-cache") in prepare
    takeover = remote.ran(r"mv /srv/app /srv/app\.hostout/releases/")[0]
    assert takeover.sudo
    assert "mv /srv/app /srv/app.hostout/releases/20251124-160000" in takeover.script
    assert "ln -s app.hostout/current /srv/app" in takeover.script
    assert remote.ran("stop-app")[0].cwd == "/srv/app"  # the in-place build, still running


def test_release_layout_on_the_server_and_releases_false_refuse_each_other(tmp_path: Path):
    remote = deployed(tmp_path)
    c = make(tmp_path, remote, releases="false")
    with pytest.raises(Exception, match=r"is a symlink to a release .* releases = false"):
        c.call("deploy")
    assert not remote.ran(r"buildout -c|os\.replace|install -d")


def test_prunable_keeps_the_newest_the_current_and_the_previous():
    def rel(rid: str, ok: bool = True) -> ReleaseInfo:
        return ReleaseInfo(rid, built="d" if ok else None, failed=None if ok else "x")

    ids = ["20260101-000000", "20260102-000000", "20260103-000000", "20260104-000000",
           "20260105-000000"]
    server = ServerLayout("releases", ids[4], (rel(ids[0]), rel(ids[1]), rel(ids[2], False),
                                               rel(ids[3]), rel(ids[4])))
    assert prunable(server, 2) == ids[:3]
    assert prunable(server, 5) == [ids[2]]  # failed ones go whatever keep-releases says
    # rolled back to the oldest: it and the one before it never go
    back = ServerLayout("releases", ids[1], server.releases)
    assert prunable(back, 2) == [ids[2]]
    assert back.previous is not None and back.previous.id == ids[0]


def test_release_ids_sort_in_the_order_they_were_made():
    made = ["20261207-101522-10", "20261207-101522", "20261207-101522-2", "20261206-235959"]
    assert sorted(made, key=sort_key) == ["20261206-235959", "20261207-101522",
                                          "20261207-101522-2", "20261207-101522-10"]
