"""hostout.supervisor's orchestration against the recording fake: what runs, in which order,
as whom. tests/test_supervisor.py runs it on a real host; test_plugins_builtin.py checks that
``extends = hostout.supervisor`` loads it in a real buildout."""

from __future__ import annotations

from pathlib import Path

import pytest

from collective.hostout import RecordingRemote
from collective.hostout.commands.context import Context
from collective.hostout.commands.discovery import registry_for
from collective.hostout.commands.registry import Command, Registry
from collective.hostout.config.facts import BuildoutFacts
from collective.hostout.config.settings import build_settings
from collective.hostout.errors import CommandFailed, ConfigError, HostoutError, UsageError
from collective.hostout.output import QUIET, Output
from collective.hostout.plugins.supervisor.control import Supervisor, SupervisorError
from collective.hostout.shell import RemoteCommand

CTL = "/srv/app/bin/supervisorctl"
DAEMON = "/srv/app/bin/supervisord"
RUNNING = "demo                             RUNNING   pid 42, uptime 0:00:02\n"


def build_stub(fail: bool = False) -> Command:
    """Stands in for the built-in buildout (its own orchestration is tested elsewhere)."""
    def buildout(c: Context, *args: str) -> None:
        c.remote.execute(RemoteCommand("bin/buildout -c hostout.cfg"))
        if fail:
            raise CommandFailed("the build failed", host=c.name)

    return Command("buildout", buildout, "collective.hostout", native=True)


def make(tmp_path: Path, remote: RecordingRemote, *, fail: bool = False,
         **options: str) -> Context:
    """A host extending hostout.supervisor, over the recording fake."""
    opts = {"path": "/srv/app", "buildout-user": "bo", "effective-user": "app",
            "buildout-group": "grp", "identity-file": str(tmp_path / "host1_key"),
            "supervisor-timeout": "2", "password": "pw", **options}
    settings = build_settings("host1", opts, buildout_directory=tmp_path,
                              plugins=("hostout.supervisor",))
    registry = registry_for(settings)
    registry = Registry([build_stub(fail=fail), *(registry.get(n) for n in registry.names()
                                                  if n != "buildout")])
    registry.add(registry_for(settings).get("buildout"))  # the plugin's, over the stub
    return Context(settings, remote, registry, Output(verbosity=QUIET),
                   BuildoutFacts.of_directory(tmp_path))


def running_supervisord() -> RecordingRemote:
    remote = RecordingRemote("host1")
    remote.respond(rf"^{CTL} pid$", stdout="1234\n")
    remote.respond(rf"^{CTL} status$", stdout=RUNNING)
    return remote


def what(remote: RecordingRemote) -> list[tuple[str, str]]:
    """(who, command) of what ran, the script's path prefixes shortened."""
    return [(call.who, call.script.replace("/srv/app/bin/", "")) for call in remote.calls]


def test_options_are_hostout_1s():
    assert Supervisor.of({}, "h") == Supervisor("supervisor", False, False, 60.0)
    assert Supervisor.of({"supervisor": "sv"}, "h").part == "sv"
    root = Supervisor.of({"sudosupervisor": "rootsv", "supervisor": "sv"}, "h")
    assert (root.part, root.as_root) == ("rootsv", True)
    assert Supervisor.of({"rollingrestart": "True"}, "h").rolling
    with pytest.raises(ConfigError, match="rollingrestart = 'maybe' is not true or false"):
        Supervisor.of({"rollingrestart": "maybe"}, "h")
    with pytest.raises(ConfigError, match="supervisor = 'a b;c' is not a buildout part"):
        Supervisor.of({"supervisor": "a b;c"}, "h")


def test_buildout_stops_supervisord_before_and_starts_it_as_the_effective_user_after(
        tmp_path: Path):
    remote = RecordingRemote("host1")
    remote.respond(rf"^{CTL} status$", stdout=RUNNING)
    remote.respond(rf"^{CTL} pid$", exited=1, stdout="refused connection")
    remote.respond(rf"^{CTL} pid$", stdout="1234\n", times=1)  # until the shutdown
    c = make(tmp_path, remote)
    c.call("buildout")
    ran = what(remote)
    # sudo to the effective user is tried before anything stops: it is needed to start again
    assert ran[:4] == [("app", "true"), ("buildout", "supervisorctl pid"),
                       ("buildout", "supervisorctl shutdown"), ("buildout", ran[3][1])]
    assert "[ -d /proc/1234 ]" in ran[3][1]
    assert ran[4] == ("login", "bin/buildout -c hostout.cfg")
    assert ran[5:] == [("buildout", "supervisorctl pid"), ("app", "supervisord"),
                       ("buildout", "supervisorctl status")]
    assert remote.calls[6].cwd == "/srv/app"


def test_first_deploy_has_nothing_to_stop(tmp_path: Path):
    remote = running_supervisord()
    remote.respond(rf"^{CTL} pid$", exited=127, stderr="not found", times=2)
    c = make(tmp_path, remote)
    c.call("buildout")
    assert [w for _, w in what(remote)] == [
        "true", "supervisorctl pid", "bin/buildout -c hostout.cfg", "supervisorctl pid",
        "supervisord", "supervisorctl status"]


def test_without_sudo_nothing_stops(tmp_path: Path):
    remote = running_supervisord()
    remote.respond(r"^true$", exited=1, stderr="sudo: a password is required")
    c = make(tmp_path, remote)
    with pytest.raises(CommandFailed, match="a password is required"):
        c.call("buildout")
    assert [w for _, w in what(remote)] == ["true"]


def test_a_build_without_sudo_gives_var_to_the_effective_user_before_starting(
        tmp_path: Path):
    remote = running_supervisord()
    remote.respond(rf"^{CTL} pid$", exited=1)
    c = make(tmp_path, remote, password="")  # asked for on a terminal, say
    c.call("buildout")
    ran = [w for _, w in what(remote)]
    owners = next(i for i, w in enumerate(ran) if "chown -R app:grp /srv/app/var" in w)
    assert ran.index("bin/buildout -c hostout.cfg") < owners < ran.index("supervisord")


def test_supervisord_that_still_runs_after_the_build_is_reloaded(tmp_path: Path):
    remote = running_supervisord()
    c = make(tmp_path, remote, rollingrestart="false")
    remote.respond(rf"^{CTL} pid$", exited=1, times=1)  # not running before the build
    c.call("buildout")
    assert [w for _, w in what(remote)][-3:] == ["supervisorctl pid", "supervisorctl reload",
                                                 "supervisorctl status"]


def test_sudosupervisor_runs_it_all_as_root(tmp_path: Path):
    remote = RecordingRemote("host1")
    remote.respond(r"supervisorctl status$", stdout=RUNNING)
    remote.respond(r"supervisorctl pid$", exited=1)
    c = make(tmp_path, remote, sudosupervisor="supervisor")
    c.call("buildout")
    assert [who for who, w in what(remote) if "supervisor" in w] == ["root"] * 4


def test_rolling_restart_keeps_supervisord_and_restarts_programs_one_at_a_time(
        tmp_path: Path):
    remote = RecordingRemote("host1")
    remote.respond(rf"^{CTL} pid$", stdout="1234\n")
    remote.respond(rf"^{CTL} status$", stdout="web:web1 RUNNING pid 1\nweb:web2 RUNNING pid 2\n"
                                              "worker RUNNING pid 3\n")
    remote.respond(rf"^{CTL} update$", stdout="worker: stopped\nworker: updated process group\n")
    remote.respond(rf"^{CTL} restart ", stdout="stopped\nstarted\n")
    c = make(tmp_path, remote, rollingrestart="yes")
    c.call("buildout")
    ran = [w for _, w in what(remote)]
    assert "supervisorctl shutdown" not in ran
    build = ran.index("bin/buildout -c hostout.cfg")
    after = ran[build + 1:]
    assert after[:3] == ["supervisorctl pid", "supervisorctl reread", "supervisorctl update"]
    restarts = [w for w in after if " restart " in f" {w} "]
    # the changed group was restarted by update; the others one at a time, each waited for
    assert restarts == ["supervisorctl restart web:web1", "supervisorctl restart web:web2"]
    assert after[after.index(restarts[0]) + 1] == "supervisorctl status"


def test_a_program_that_does_not_start_fails_the_deploy_naming_it(tmp_path: Path):
    remote = RecordingRemote("host1")
    remote.respond(rf"^{CTL} pid$", exited=1)
    remote.respond(rf"^{CTL} status$", stdout="demo FATAL Exited too quickly\n", exited=3)
    c = make(tmp_path, remote)
    with pytest.raises(SupervisorError, match=r"not running after 2 s: demo FATAL \(see "
                                              r"bin/hostout host1 tail demo\)"):
        c.call("buildout")


def test_supervisord_comes_back_after_a_failed_build_and_the_build_error_is_raised(
        tmp_path: Path):
    remote = running_supervisord()
    remote.respond(rf"^{CTL} pid$", exited=1)  # stopped
    c = make(tmp_path, remote, fail=True)
    with pytest.raises(CommandFailed, match="the build failed"):
        c.call("buildout")
    assert what(remote)[-2] == ("app", "supervisord")


def test_supervisord_failing_to_start_says_why(tmp_path: Path):
    remote = RecordingRemote("host1")
    remote.respond(rf"^{CTL} pid$", exited=1)
    remote.respond(rf"^{DAEMON}$", exited=2, stderr="Error: Another program is already "
                                                    "listening on a port\n")
    c = make(tmp_path, remote)
    with pytest.raises(SupervisorError, match="supervisord did not start as app: Error: "
                                              "Another program is already listening"):
        c.call("supervisorstartup")


def test_short_commands_are_supervisorctl_as_the_buildout_user(tmp_path: Path):
    remote = running_supervisord()
    c = make(tmp_path, remote)
    c.call("status")
    c.call("restart")
    c.call("stop", "demo", "web")
    c.call("tail", "-f", "demo")
    c.call("tail")
    c.call("supervisorctl")
    ran = [(who, w) for who, w in what(remote) if w.startswith("supervisorctl")]
    assert ran == [("buildout", w) for w in (
        "supervisorctl status", "supervisorctl restart all", "supervisorctl stop demo web",
        "supervisorctl tail -f demo", "supervisorctl maintail", "supervisorctl status")]


def test_a_missing_supervisorctl_names_the_option(tmp_path: Path):
    remote = RecordingRemote("host1")
    remote.respond(rf"^{CTL} status$", exited=127, stderr="sh: 1: not found")
    with pytest.raises(SupervisorError, match=r"no /srv/app/bin/supervisorctl: is the part "
                                              r"supervisor \(option supervisor\)"):
        make(tmp_path, remote).call("status")


def test_supervisorboot_writes_a_systemd_unit_where_systemd_runs(tmp_path: Path):
    remote = RecordingRemote("host1")
    remote.respond(r"/run/systemd/system", stdout="systemd\n")
    make(tmp_path, remote).call("supervisorboot")
    (install,) = remote.ran(r"systemctl enable")
    assert install.sudo and install.sudo_user is None
    for line in ("Type=forking", "User=app", "WorkingDirectory=/srv/app",
                 f"ExecStart={DAEMON}", f"ExecStop={CTL} shutdown"):
        assert f"\n{line}\n" in install.script
    assert "/etc/systemd/system/hostout-host1-supervisor.service" in install.script


def test_supervisorboot_otherwise_adds_an_reboot_line_to_the_users_crontab(tmp_path: Path):
    remote = RecordingRemote("host1")
    remote.respond(r"/run/systemd/system", stdout="none\n")
    remote.respond(r"^cat /etc/os-release$", stdout="ID=debian\nPRETTY_NAME=Debian\n")
    make(tmp_path, remote).call("supervisorboot")
    (apt,) = remote.ran(r"apt-get install .* cron")
    (cron,) = remote.ran(r"crontab \"\$tmp\"")
    assert apt.sudo and cron.sudo_user == "app"
    assert f"'@reboot cd /srv/app && {DAEMON} # hostout host1 supervisor'" in cron.script
    remote.calls.clear()
    remote.respond(r"^command -v crontab$", stdout="/usr/bin/crontab")
    make(tmp_path, remote).call("supervisorboot", "off")
    (removal,) = remote.ran(r"crontab \"\$tmp\"")
    assert "@reboot" not in removal.script and "grep -vF" in removal.script


def test_supervisorboot_takes_on_or_off(tmp_path: Path):
    with pytest.raises(UsageError, match="supervisorboot takes on or off, not 'maybe'"):
        make(tmp_path, RecordingRemote("host1")).call("supervisorboot", "maybe")


def test_errors_are_hostout_errors():
    assert issubclass(SupervisorError, HostoutError)
