"""Releases, rollback, the lock, history, plans and rolling fleets on a real host (issue 10),
with the faults users meet: a connection cut during the upload and during the build, a
failing build, two deploys at once, Ctrl-C, a lock whose holder froze, a failing health
check, rollback after pruning.

One host serves the whole module (a first deploy costs most of a minute), in the order the
tests are written: each leaves it deployed and answering. bin/hostout reaches it through a
TCP proxy the tests can cut (tests/proxy.py). The host part keeps 2 releases, checks
http://127.0.0.1:8080/ for up to 15 s and calls a lock stale after 10 s without heartbeat.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from buildouts import buildout, example_for, hostout
from collective.hostout.testing import Poller
from hosts import TestHost, start_host
from proxy import CuttableProxy

pytestmark = pytest.mark.integration

ANSWER = "Powered by collective.hostout!"
PATH = "/var/buildout/demo"
HOME = "/var/buildout/demo.hostout"
INIT = "src/hellowsgi/src/hellowsgi/__init__.py"


class Server:
    """The module's host, its buildout here, and the proxy between them."""

    def __init__(self, host: TestHost, directory: Path, proxy: CuttableProxy) -> None:
        self.host, self.directory, self.proxy = host, directory, proxy
        self.version = 0

    def hostout(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return hostout(self.directory, *args, timeout=timeout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """bin/hostout in the background (Ctrl-C reaches it: SIGINT is not ignored)."""
        return subprocess.Popen([str(self.directory / "bin" / "hostout"), *args],
                                cwd=self.directory, text=True, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "PIP_NO_BUILD_ISOLATION": "0"})

    def configure(self, **options: str) -> None:
        """Set options of the host part and rerun bin/buildout."""
        cfg = self.directory / "deploy.cfg"
        text = cfg.read_text()
        for key, value in options.items():
            key = key.replace("_", "-")
            text, found = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
            if not found:
                text += f"{key} = {value}\n"
        cfg.write_text(text)
        buildout(self.directory, "-c", "deploy.cfg")

    @contextlib.contextmanager
    def extra_part(self, name: str, options: str) -> Iterator[None]:
        """prod.cfg with one more plone.recipe.command part (pinned), put back after."""
        prod, versions = self.directory / "prod.cfg", self.directory / "versions.cfg"
        good, pins = prod.read_text(), versions.read_text()
        prod.write_text(good.replace("parts += supervisor", f"parts += supervisor {name}")
                        + f"\n[{name}]\nrecipe = plone.recipe.command\n{options}\n")
        versions.write_text(pins + "plone.recipe.command = 1.1\n")
        try:
            buildout(self.directory, "-c", "deploy.cfg")  # the local buildout uses versions.cfg
            yield
        finally:
            prod.write_text(good)
            versions.write_text(pins)
            buildout(self.directory, "-c", "deploy.cfg")

    def change_code(self) -> str:
        """A new answer for the app: the next deploy builds a new release."""
        self.version += 1
        answer = f"{ANSWER} v{self.version}"
        init = self.directory / INIT
        init.write_text(re.sub(r'Response\("[^"]*"\)', f'Response("{answer}")',
                               init.read_text()))
        return answer

    def exec(self, cmd: str) -> str:
        res = self.host.exec(cmd)
        return res.stdout

    def answer(self, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.host.url(8080), timeout=2) as response:
                    return response.read().decode()
            except OSError:
                if time.monotonic() > deadline:
                    return "(no answer)"
                time.sleep(0.3)

    def current(self) -> str:
        return self.exec(f"readlink {HOME}/current").strip().rsplit("/", 1)[-1]

    def releases(self) -> list[dict[str, object]]:
        proc = self.hostout("host1", "releases", "--json")
        assert proc.returncode == 0, proc.stderr
        return [json.loads(line) for line in proc.stdout.splitlines()]

    def history(self) -> list[dict[str, object]]:
        proc = self.hostout("host1", "history", "-n", "all", "--json")
        assert proc.returncode == 0, proc.stderr
        return [json.loads(line) for line in proc.stdout.splitlines()]

    def build_running(self) -> bool:
        return self.host.exec("pgrep -f 'buildout -c hostout.cfg'").returncode == 0

    def wait_for(self, what: Callable[[], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def snapshot(self) -> str:
        """Every file hostout could change on the server: name, size, mtime, mode, owner,
        link (the app's own logs left out)."""
        return self.exec(f"find /var/buildout /home /etc/passwd /etc/group -path {HOME}/var/log "
                         "-prune -o -printf '%p %s %T@ %m %u %l\\n' | sort")


@pytest.fixture(scope="module")
def server(host_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    host = start_host(publish=(8080,))
    proxy = CuttableProxy(("127.0.0.1", host.port))
    try:
        d = example_for(tmp_path_factory.mktemp("releases"), host=proxy.hoststring,
                        password=host.password, releases="false", include="big.bin",
                        healthcheck="http://127.0.0.1:8080/",
                        **{"healthcheck-timeout": "15", "keep-releases": "2",
                           "lock-timeout": "10"})
        (d / "big.bin").write_bytes(os.urandom(8 << 20))
        first = hostout(d, "host1", "deploy")
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr
        yield Server(host, d, proxy)
    finally:
        proxy.close()
        host.remove()


def test_in_place_layout_is_taken_over_without_losing_var(server: Server):
    # deployed in place: path is the venv and the buildout
    assert server.exec(f"stat -c %F {PATH}").strip() == "directory"
    assert server.exec(f"test -x {PATH}/bin/buildout && echo yes").strip() == "yes"
    server.exec(f"su -s /bin/sh app -c 'echo precious > {PATH}/var/data.txt'")
    server.configure(releases="true")
    proc = server.hostout("host1", "deploy")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert f"bootstrap_buildout: taking over the in-place buildout in {PATH}" in proc.stdout
    said = re.search(r"buildout: release (\S+): installed .* took over the in-place buildout "
                     r"\(now release (\S+)\); healthy: HTTP 200 OK", proc.stdout)
    assert said, proc.stdout
    new, old = said.groups()
    assert server.exec(f"readlink {PATH}").strip() == "demo.hostout/current"
    assert server.current() == new
    assert server.exec(f"cat {PATH}/var/data.txt").strip() == "precious"  # var/ kept
    assert server.exec(f"readlink {HOME}/releases/{new}/var").strip() == "../../var"
    assert server.answer() == ANSWER
    listed = {r["id"]: r for r in server.releases()}
    assert listed[new]["current"] and listed[old]["status"] == "ok"
    # the in-place build is a release like the others: roll back to it, and forward again
    back = server.hostout("host1", "rollback")
    assert back.returncode == 0, back.stderr
    assert re.search(rf"rollback: {old} is current \(was {new}\), \d+\.\d s; healthy",
                     back.stdout), back.stdout
    assert server.answer() == ANSWER and server.exec(f"cat {PATH}/var/data.txt") == "precious\n"
    forth = server.hostout("host1", "rollback", new)
    assert forth.returncode == 0, forth.stderr
    assert server.current() == new
    # the lock and the history were kept in path.hostout from the first deploy on
    history = server.history()
    assert [(h["command"], h["result"]) for h in history] == [
        ("deploy", "ok"), ("deploy", "ok"), ("rollback", "ok"), ("rollback", "ok")]
    assert history[1]["release"] == new and history[2]["previous"] == new


def test_unchanged_deploy_makes_no_release(server: Server):
    before = server.exec(f"ls {HOME}/releases")
    proc = server.hostout("host1", "deploy")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ("[host1] deploy: nothing changed since the last successful build; "
                           "not rebuilding (bin/hostout host1 buildout forces it)\n")
    assert server.exec(f"ls {HOME}/releases") == before
    assert server.history()[-1]["result"] == "unchanged"


def test_plan_and_dry_run_change_nothing(server: Server):
    server.change_code()
    before = server.snapshot()
    assert before.count("\n") > 100
    plans = [server.hostout("host1", "plan"), server.hostout("host1", "deploy", "--dry-run"),
             server.hostout("--dry-run", "host1", "deploy")]
    for proc in plans:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        lines = proc.stdout.splitlines()
        assert re.search(r"plan: would upload 1 of \d+ distributions \(\d+ KB\): "
                         r"hellowsgi-0\.1\.dev0\+\w+\.tar\.gz$", proc.stdout, re.M)
        assert "[host1] plan: would upload 1 of 6 cfg files: pinned.cfg" in lines
        assert [ln for ln in lines if re.search(r"pinned\.cfg: [-+]hellowsgi = ", ln)]
        assert "[host1] plan: would build, then run:" in lines
        # the example's restart is hostout.supervisor's hooks (decided when they run)
        assert ("[host1] plan:   preswitch of hostout.supervisor: The pre-commands, then stop "
                "supervisord before the running buildout changes") in lines
        assert any(f"rename it to {HOME}/current  # atomic" in ln for ln in lines)
    assert server.snapshot() == before  # the server is exactly as it was
    records = [json.loads(line) for line in
               server.hostout("--json", "host1", "plan").stdout.splitlines()]
    (json_plan,) = [r for r in records if "layout" in r]  # among the run's events
    assert json_plan["build"] and json_plan["files"] == ["pinned.cfg"]
    bad = server.hostout("--dry-run", "host1", "buildout")
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("Error: --dry-run plans a deploy only ('bin/hostout HOST "
                                  "deploy --dry-run'), not buildout")


def test_failing_build_never_interrupts_the_app(server: Server):
    current = server.current()
    supervisord = server.exec(f"cat {HOME}/var/supervisord.pid")
    # builds here (hostout's resolution does not run commands), fails on the server
    with server.extra_part("broken", "command = exit 3\nstop-on-error = true"), \
            Poller(server.host.url(8080)) as poll:
        proc = server.hostout("host1", "deploy")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: host1: ")
    assert "Installing broken" in proc.stderr  # the failing command's last lines
    assert poll.failures == 0 and len(poll.answers) > 20, (poll.failures, len(poll.answers))
    assert set(poll.answers) == {ANSWER}
    # no pre-command stopped it: the same supervisord serves throughout
    assert server.exec(f"cat {HOME}/var/supervisord.pid") == supervisord
    assert server.current() == current
    failed = [r for r in server.releases() if r["status"] == "failed"]
    assert failed and "build failed" in str(failed[-1]["failed"])
    assert server.history()[-1]["result"] == "failed"


def test_two_deploys_at_once_the_second_is_refused(server: Server):
    answer = server.change_code()
    first = server.start("host1", "deploy")
    try:
        server.wait_for(lambda: server.host.exec(f"test -f {HOME}/lock").returncode == 0)
        second = server.hostout("host1", "deploy")
    finally:
        out, err = first.communicate(timeout=300)
    assert second.returncode == 1
    (line,) = second.stderr.strip().splitlines()
    assert re.fullmatch(r"Error: host1: locked by \S+@\S+ \(deploy since \S+Z, pid "
                        rf"{first.pid}\); last heartbeat \d+ s ago; try again later, wait "
                        r"with --lock-wait SECONDS, or if that run is gone: bin/hostout "
                        r"host1 unlock", line), line
    assert first.returncode == 0, out + err
    assert server.answer() == answer
    assert server.host.exec(f"test -e {HOME}/lock").returncode != 0  # released


def test_ctrl_c_mid_build_releases_the_lock_and_keeps_serving(server: Server):
    serving, current = server.answer(), server.current()
    server.change_code()
    # a build that lasts: the signal surely arrives while it runs
    with server.extra_part("slow", "command = sleep 47"):
        proc = server.start("host1", "deploy")
        server.wait_for(lambda: server.host.exec("pgrep -f 'sleep 47'").returncode == 0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "[host1] interrupted: lock released" in err and err.strip().endswith(
        "Error: interrupted")
    assert server.host.exec(f"test -e {HOME}/lock").returncode != 0
    server.wait_for(lambda: not server.build_running(), timeout=10)  # the build stopped too
    assert server.host.exec("pgrep -f 'sleep 47'").returncode != 0
    assert server.current() == current and server.answer() == serving
    last = server.history()[-1]
    assert (last["result"], last["previous"]) == ("interrupted", current)
    again = server.hostout("host1", "deploy")  # the next deploy completes
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    assert server.answer() != serving


def test_connection_cut_during_upload(server: Server):
    serving, current = server.answer(), server.current()
    old = server.exec(f"sha256sum {HOME}/staging/big.bin").split()[0]
    (server.directory / "big.bin").write_bytes(os.urandom(8 << 20))
    server.proxy.cut_after(2 << 20)  # 2 MB into the upload of big.bin
    try:
        proc = server.hostout("host1", "deploy")
    finally:
        server.proxy.restore()
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert re.match(r"Error: host1: lost the connection to 127\.0\.0\.1:\d+ while uploading "
                    rf"{HOME}/staging/big\.bin", line), proc.stderr
    assert server.proxy.cuts == 1
    # never a truncated file; the app never stopped; the lock of the gone run does not hold
    assert server.exec(f"sha256sum {HOME}/staging/big.bin").split()[0] == old
    assert server.current() == current and server.answer() == serving
    assert server.host.exec(f"test -f {HOME}/lock").returncode == 0
    again = server.hostout("host1", "deploy")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    assert "took over a stale lock of" in again.stderr
    assert "uploadbuildout: 1 of 6 files changed: big.bin" in again.stdout
    assert server.current() != current


def test_connection_cut_during_build(server: Server):
    serving, current = server.answer(), server.current()
    server.change_code()
    proc = server.start("host1", "deploy")
    try:
        server.wait_for(server.build_running)
        server.proxy.cut()
        _, err = proc.communicate(timeout=120)
    finally:
        server.proxy.restore()
    assert proc.returncode == 1
    assert re.match(r"Error: host1: lost the connection to 127\.0\.0\.1:\d+ while running "
                    r"'run: cd \S+/releases/\S+ && umask 027 && \S+/venv/bin/buildout",
                    err.strip().splitlines()[-1]), err
    server.wait_for(lambda: not server.build_running(), timeout=10)  # tethered: it stopped
    assert server.current() == current and server.answer() == serving
    again = server.hostout("host1", "deploy")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    assert server.answer() != serving


def test_health_check_failure_rolls_back(server: Server):
    serving, current = server.answer(), server.current()
    init = server.directory / INIT
    good = init.read_text()
    # the app runs (supervisord sees it RUNNING) but answers every request with an error
    init.write_text(good + "\nMainApplication.__call__ = lambda self, environ, start: 1 / 0\n")
    try:
        proc = server.hostout("host1", "deploy")
    finally:
        init.write_text(good)
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"Error: host1: health check http://127\.0\.0\.1:8080/ failed for 15 s; "
                        rf"last answer: HTTP 500 .*; rolled back to {current}, which "
                        r"answers HTTP 200 OK \(release \S+ is kept, marked failed\)", line), line
    assert server.current() == current and server.answer() == serving
    failed = [r for r in server.releases() if r["status"] == "failed"]
    assert "health check failed" in str(failed[-1]["failed"])
    last = server.history()[-1]
    assert (last["result"], last["previous"]) == ("rolled back", current)


def test_prune_keeps_releases_in_use_and_rollback_after_prune(server: Server):
    listed = server.releases()
    ok = [r["id"] for r in listed if r["status"] == "ok"]
    assert len(ok) == 2  # keep-releases = 2: the current and the previous
    assert listed[-1]["status"] == "failed"  # the last failure stays until the next deploy
    previous = ok[0]
    # something still runs from the previous release: once it is no longer kept by count,
    # pruning leaves it alone
    # (only its working directory says so: its command line names no release)
    server.host.exec(f"(cd {HOME}/releases/{previous} && exec su -s /bin/sh buildout -c "
                     "'exec sleep 300') >/dev/null 2>&1 </dev/null &")
    server.wait_for(lambda: "sleep 300" in server.exec("ps -eo args"))
    try:
        server.change_code()
        proc = server.hostout("host1", "deploy")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        assert re.search(rf"kept {previous}: in use by pid \d+ \(sleep 300\)", proc.stdout), (
            proc.stdout)
        assert previous in [r["id"] for r in server.releases()]
    finally:
        server.host.exec("pkill -x -u buildout sleep")
    answer = server.change_code()
    proc = server.hostout("host1", "deploy")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert re.search(rf"pruned .*{previous}", proc.stdout), proc.stdout
    ids = [r["id"] for r in server.releases()]
    assert len(ids) == 2 and previous not in ids
    # rollback to a pruned release: one line, nothing changed
    history, snapshot = server.history(), server.snapshot()
    bad = server.hostout("host1", "rollback", previous)
    assert bad.returncode == 1
    assert bad.stderr.strip() == (f"Error: host1: no release {previous} (pruned, or never "
                                  f"made; releases: {', '.join(ids)})")
    assert server.history() == history and server.snapshot() == snapshot
    # rollback to the previous one, which pruning kept
    back = server.hostout("host1", "rollback")
    assert back.returncode == 0, back.stderr
    assert server.current() == ids[0] and server.answer() != answer
    forth = server.hostout("host1", "rollback", ids[1])
    assert forth.returncode == 0 and server.answer() == answer


def test_a_frozen_holder_goes_stale_and_loses_its_lock(server: Server):
    before = server.current()
    server.change_code()
    frozen = server.start("host1", "deploy")
    try:
        server.wait_for(lambda: server.host.exec(f"test -f {HOME}/lock").returncode == 0)
        frozen.send_signal(signal.SIGSTOP)  # its connection stays up; its heartbeat stops
        began = time.monotonic()
        other = server.hostout("--lock-wait", "60", "host1", "rollback")
        waited = time.monotonic() - began
        assert other.returncode == 0, other.stdout[-3000:] + other.stderr
        assert "took over a stale lock of" in other.stderr
        assert 8 < waited < 60  # stale after lock-timeout = 10 s without a heartbeat
    finally:
        frozen.send_signal(signal.SIGCONT)
        out, err = frozen.communicate(timeout=300)
    rolled_back_to = server.current()
    assert rolled_back_to != before
    # the frozen run woke up, built, and found its lock gone before switching
    assert frozen.returncode == 1, out + err
    assert re.search(r"Error: host1: the lock went stale \(no heartbeat for 10 s\) and was "
                     r"taken by .*; stopped before switching", err), err
    assert server.current() == rolled_back_to
    assert all(r["status"] != "ok" for r in server.releases()
               if str(r["id"]) > str(before))  # whatever it built is not one to go to


def test_unlock_removes_a_lock_left_behind(server: Server):
    # a holder whose session looks alive (it is the host's pid 1) and whose heartbeat never
    # goes stale: only unlock removes it
    server.exec("start=$(sed 's/.*) //' /proc/1/stat | cut -d' ' -f20); printf 'token x\\n"
                "who ghost\\nfrom nowhere\\ncommand deploy\\nsince 2026-01-01T00:00:00Z\\n"
                f"pid 1\\nstale-after 3600\\nsession 1 %s\\n' \"$start\" > {HOME}/lock; "
                f"chown buildout {HOME}/lock")
    refused = server.hostout("host1", "deploy")
    assert refused.returncode == 1 and "locked by ghost@nowhere" in refused.stderr
    proc = server.hostout("host1", "unlock")
    assert proc.returncode == 0
    assert proc.stdout.strip() == ("[host1] removed the lock of ghost@nowhere (deploy since "
                                   "2026-01-01T00:00:00Z, pid 1)")
    assert server.hostout("host1", "deploy").returncode == 0
    assert server.history()[-2]["command"] == "unlock"


def test_rolling_deploy_stops_at_the_failed_batch_and_says_how_to_resume(
        server: Server, host_image: str):
    bare = start_host()
    try:
        cfg = server.directory / "fleet.cfg"
        cfg.write_text("[buildout]\nextends = deploy.cfg\nparts += down bare\n"
                       "[down]\n<= host1\nhost = 127.0.0.1:1\n"
                       f"[bare]\n<= host1\nhost = {bare.hoststring}\n")
        buildout(server.directory, "-c", "fleet.cfg")
        before = bare.exec("find / -xdev -newer /etc/hostname -not -path '/proc/*' "
                           "-not -path '/var/log/*' -not -path '/run/*' | sort").stdout
        proc = server.hostout("--batch", "1", "host1", "down", "bare", "deploy")
        assert proc.returncode == 1
        assert "Rollout stopped: 1 deployed, 1 failed, 1 not started" in proc.stdout
        assert "  not started: bare" in proc.stdout
        assert proc.stdout.strip().splitlines()[-1] == (
            "Resume with: bin/hostout --batch 1 down bare deploy")
        assert "Error: down: cannot reach" in proc.stderr
        # a plan of a bare host: what bootstrap would do, and nothing changed there
        plan = server.hostout("bare", "plan")
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert "[bare] plan: would bootstrap_users: create the group and users" in plan.stdout
        assert "[bare] plan: would upload 6 of 6 cfg files" in plan.stdout
        assert bare.exec("getent passwd buildout; ls /var/buildout").stdout == ""
        assert bare.exec("find / -xdev -newer /etc/hostname -not -path '/proc/*' -not -path "
                         "'/var/log/*' -not -path '/run/*' | sort").stdout == before
    finally:
        bare.remove()
        buildout(server.directory, "-c", "deploy.cfg")
