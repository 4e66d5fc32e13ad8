"""hostout.supervisor on a real host: the example app (which extends it) deployed once, then
its short commands, a build that restarts supervisord, a rolling restart that keeps it, and
start on boot through cron (the test hosts have no systemd)."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildouts import buildout, example_for, fetch, hostout
from hosts import TestHost, start_host

pytestmark = pytest.mark.integration

ANSWER = "Powered by collective.hostout!"


class App:
    def __init__(self, host: TestHost, directory: Path) -> None:
        self.host, self.directory = host, directory

    def hostout(self, *args: str):
        return hostout(self.directory, "host1", *args)

    def answer(self, expected: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while (got := fetch(self.host.url(8080))) != expected and time.monotonic() < deadline:
            time.sleep(0.5)
        return got

    def refused(self) -> bool:
        try:
            urllib.request.urlopen(self.host.url(8080), timeout=5)
        except (urllib.error.URLError, ConnectionError):
            return True
        return False

    def pids(self) -> tuple[str, str]:
        """(supervisord's pid, the app's pid) on the server."""
        sup = self.host.exec("pgrep -x supervisord").stdout.strip()
        app = self.host.exec("pgrep -f 'bin/paster serve'").stdout.split()
        return sup, app[0] if app else ""


@pytest.fixture(scope="module")
def app(host_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    host = start_host(publish=(8080,))
    try:
        d = example_for(tmp_path_factory.mktemp("supervisor"), host=host.hoststring,
                        password=host.password)
        yield App(host, d)
    finally:
        host.remove()


def test_deploy_starts_supervisord_as_the_effective_user(app: App):
    proc = app.hostout("deploy")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "[host1] postswitch: started supervisord as app: demo RUNNING\n" in proc.stdout
    assert "stopped supervisord" not in proc.stdout  # a first deploy: nothing to stop
    assert app.answer(ANSWER) == ANSWER
    sup, _ = app.pids()
    assert app.host.exec(f"ps -o user= -p {sup}").stdout.strip() == "app"


def test_short_commands_drive_supervisorctl(app: App):
    status = app.hostout("status")
    assert status.returncode == 0, status.stderr
    assert re.search(r"^\[host1\] out: demo\s+RUNNING", status.stdout, re.M)
    stop = app.hostout("stop", "demo")
    assert stop.returncode == 0, stop.stderr
    assert app.refused()
    stopped = app.hostout("status")
    assert stopped.returncode == 1  # supervisorctl says not everything runs
    assert re.search(r"^\[host1\] out: demo\s+STOPPED", stopped.stdout, re.M)
    assert app.hostout("start").returncode == 0  # all
    assert app.answer(ANSWER) == ANSWER
    _, before = app.pids()
    assert app.hostout("restart", "demo").returncode == 0
    assert app.pids()[1] not in ("", before)
    log = app.hostout("tail")  # supervisord's own log
    assert log.returncode == 0 and "spawned: 'demo'" in log.stdout
    unknown = app.hostout("supervisorctl", "start", "nosuch")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines()[-1].startswith("Error: host1: ")


def test_a_build_stops_supervisord_and_starts_it_again(app: App):
    sup, _ = app.pids()
    proc = app.hostout("buildout")  # what deploy runs when something changed
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("[host1] p")]
    assert lines[0] == f"[host1] preswitch: stopped supervisord (pid {sup})"
    assert lines[-1] == "[host1] postswitch: started supervisord as app: demo RUNNING"
    assert app.answer(ANSWER) == ANSWER
    assert app.pids()[0] != sup


def test_rollingrestart_across_releases_restarts_supervisord_from_the_new_release(app: App):
    # a running supervisord keeps the configuration of the release it started from, so a
    # rolling restart would restart the old release's programs (in place it is unit-tested)
    cfg = app.directory / "deploy.cfg"
    good = cfg.read_text()
    cfg.write_text(good + "rollingrestart = true\n")
    try:
        buildout(app.directory, "-c", "deploy.cfg")
        sup, _ = app.pids()
        proc = app.hostout("buildout")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        assert f"[host1] preswitch: stopped supervisord (pid {sup})" in proc.stdout
        assert ("Warning: host1: rollingrestart applies in place only (releases = false): "
                "supervisord was restarted from the new release") in proc.stderr
        assert app.answer(ANSWER) == ANSWER
        _, program = app.pids()
        current = app.host.exec("readlink /var/buildout/demo.hostout/current").stdout.strip()
        args = app.host.exec(f"tr '\\0' ' ' < /proc/{program}/cmdline").stdout
        assert current.startswith("releases/") and current in args
    finally:
        cfg.write_text(good)
        buildout(app.directory, "-c", "deploy.cfg")


def test_supervisorboot_starts_supervisord_from_the_effective_users_crontab(app: App):
    proc = app.hostout("supervisorboot")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert ("[host1] supervisorboot: cron starts supervisord on boot (@reboot in app's "
            "crontab) (installed cron: no systemd here)") in proc.stdout
    table = app.host.exec("crontab -l -u app").stdout
    (line,) = [ln for ln in table.splitlines() if ln.startswith("@reboot")]
    # what boot would do: supervisord down, then cron's line run as app
    assert app.hostout("supervisorshutdown").returncode == 0
    assert app.refused()
    booted = app.host.exec(line.removeprefix("@reboot").split("#")[0], user="app")
    assert booted.returncode == 0, booted.stderr
    assert app.answer(ANSWER) == ANSWER
    again = app.hostout("supervisorboot")  # idempotent: still one line
    assert again.returncode == 0
    assert app.host.exec("crontab -l -u app").stdout.count("@reboot") == 1
    off = app.hostout("supervisorboot", "off")
    assert off.returncode == 0
    assert "@reboot" not in app.host.exec("crontab -l -u app").stdout
