"""hostout 1 plugins on hostout 2 (issue 12): the legacy layer's logic against the recording
fake. Commands here are written as a hostout 1 plugin writes them, with the imports a port
gets (``fabric`` replaced by ``collective.hostout``); the same shapes run against a real
host in tests/test_legacy_remote.py."""

from __future__ import annotations

import io
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collective.hostout import Account, RecordingRemote, api, contrib
from collective.hostout.commands.context import Context
from collective.hostout.commands.discovery import registry_for
from collective.hostout.commands.registry import Command, commands_of, is_native
from collective.hostout.config.facts import BuildoutFacts
from collective.hostout.config.settings import (
    HOSTOUT1_OPTIONS,
    OWN_OPTIONS,
    HostSettings,
    build_settings,
)
from collective.hostout.errors import (
    CommandFailed,
    ConfigError,
    HostoutError,
    RemoteError,
    UnsupportedSystem,
)
from collective.hostout.hostout import asbuildoutuser, buildoutuser
from collective.hostout.output import QUIET, Output
from collective.hostout.steps import bootscripts

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n'
UBUNTU = 'PRETTY_NAME="Ubuntu 24.04"\nID=ubuntu\nID_LIKE=debian\n'


class Peers:
    def __init__(self) -> None:
        self.contexts: dict[str, Context] = {}

    @property
    def host_names(self) -> list[str]:
        return list(self.contexts)

    def context(self, host: str) -> Context:
        return self.contexts[host]


def make(tmp_path: Path, *funcs: Callable[..., Any], remote: RecordingRemote | None = None,
         name: str = "host1", peers: Peers | None = None, **options: str) -> Context:
    opts = {"host": "server.example:2222", "user": "deploy", "buildout-group": "grp",
            "path": f"/srv/{name}", "identity-file": str(tmp_path / f"{name}_key"), **options}
    settings = build_settings(name, opts, buildout_directory=tmp_path)
    registry = registry_for(settings)
    for f in funcs:
        registry.add(Command(f.__name__, f, "fabfile.py", is_native(f)))
    made: list[HostSettings] = []

    def factory(s: HostSettings) -> RecordingRemote:
        made.append(s)
        return RecordingRemote(s.name, login=s.user or "deploy")

    c = Context(settings, remote or RecordingRemote(name), registry, Output(verbosity=QUIET),
                BuildoutFacts.of_directory(tmp_path), remote_factory=factory, peers=peers)
    c.made = made  # type: ignore[attr-defined]
    if peers is not None:
        peers.contexts[name] = c
    return c


def remote_of(c: Context) -> RecordingRemote:
    assert isinstance(c.remote, RecordingRemote)
    return c.remote


# -- options: hostout 1's defaults, writes ---------------------------------------------------
def test_options_show_hostout_defaults_where_the_part_is_silent(tmp_path: Path):
    seen = {}

    def show():
        o = api.env.hostout.options
        for key in ("buildout-user", "effective-user", "python-version", "buildout-cache",
                    "identity-file", "versionsfile", "path", "user", "buildout"):
            seen[key] = o[key]
        seen["env"] = (api.env["buildout-user"], api.env.effective_user,
                       api.env.get("python-version"), api.env.buildout_cache)

    c = make(tmp_path, show)
    c.call("show")
    assert seen == {
        "buildout-user": "deploy", "effective-user": "deploy",
        "python-version": c.settings.python_version,
        "buildout-cache": "/srv/host1/buildout-cache",
        "identity-file": str(tmp_path / "host1_key"),
        "versionsfile": str(tmp_path / "hostoutversions.cfg"), "path": "/srv/host1",
        "user": "deploy", "buildout": "buildout.cfg",
        "env": ("deploy", "deploy", c.settings.python_version, "/srv/host1/buildout-cache"),
    }


def test_options_the_part_sets_are_read_as_written(tmp_path: Path):
    got = {}

    def show():
        o = api.env.hostout.options
        got.update(bo=o["buildout-user"], eff=o.get("effective-user"),
                   py=o["python-version"], cache=o["buildout-cache"], plugin=o["sudosupervisor"])

    c = make(tmp_path, show, **{"buildout-user": "bo", "effective-user": "app",
                                "python-version": "3.11.7", "buildout-cache": "/var/cache/bo",
                                "sudosupervisor": ""})
    c.call("show")
    # hostout 1 kept the raw text (plugins trimmed 3.11.7 themselves); '' stays ''
    assert got == {"bo": "bo", "eff": "app", "py": "3.11.7", "cache": "/var/cache/bo",
                   "plugin": ""}
    assert c.settings.python_version == "3.11"


def test_a_plugin_option_written_is_read_by_later_commands(tmp_path: Path):
    got = []

    def write():
        api.env.hostout.options["supervisor"] = "supervisor2"

    def read():
        got.append((api.env.hostout.options["supervisor"], api.env.supervisor))

    def native_read(c):
        got.append(c.options["supervisor"])

    c = make(tmp_path, write, read, native_read, supervisor="supervisor")
    c.call("read")
    c.call("write")
    c.call("read")
    c.call("native_read")
    assert got == [("supervisor", "supervisor"), ("supervisor2", "supervisor2"),
                   "supervisor2"]


@pytest.mark.parametrize("key", ["path", "buildout-user", "python_version", "user"])
def test_writing_an_option_of_hostout_is_one_line_saying_where_to_set_it(tmp_path: Path,
                                                                          key: str):
    def write():
        api.env.hostout.options[key] = "/elsewhere"

    c = make(tmp_path, write)
    with pytest.raises(ConfigError) as err:
        c.call("write")
    assert str(err.value) == (
        f"host1: option {key} is hostout's own and cannot change while a command runs; set "
        "it in the part [host1] of the buildout (or in a plugin recipe's "
        "options.setdefault) and run bin/buildout")


def test_writing_back_the_value_an_option_has_changes_nothing(tmp_path: Path):
    def restore():
        saved = api.env.hostout.options["path"]
        api.env.hostout.options["path"] = saved
        api.env.path = saved  # hostout 1 plugins saved and restored env.path this way

    make(tmp_path, restore).call("restore")


def test_env_path_write_is_refused_with_the_cd_hint(tmp_path: Path):
    def move():
        api.env.path = "/"

    with pytest.raises(ConfigError, match=r"host1: api.env.path = '/': path is hostout's "
                                          r"own option .* use `with api.cd\(dir\)`"):
        make(tmp_path, move).call("move")


def test_own_options_are_every_option_build_settings_reads(tmp_path: Path):
    read: set[str] = set()

    class Recording(dict):
        def get(self, key, default=None):
            read.add(key)
            return super().get(key, default)

    build_settings("h", Recording(), buildout_directory=tmp_path)
    assert {key.replace("_", "-") for key in read} - set(HOSTOUT1_OPTIONS) <= OWN_OPTIONS


# -- Fabric 1 behaviour --------------------------------------------------------------------------
def test_env_cwd_sets_where_commands_run_until_the_command_ends(tmp_path: Path):
    def inner():
        api.run("where-inner")

    def outer():
        api.env.cwd = "/tmp"
        api.run("one")
        with api.cd("sub"):
            api.run("two")
            api.env.cwd = "/var"
            api.run("three")
        api.run("four")  # cd restored what it found, as Fabric 1's did
        assert api.env.cwd == "/tmp"
        api.env.hostout.inner()

    c = make(tmp_path, outer, inner)
    c.call("outer")
    c.call("inner")
    cwds = [(call.script, call.cwd) for call in remote_of(c).calls]
    assert cwds == [("one", "/tmp"), ("two", "/tmp/sub"), ("three", "/var"),
                    ("four", "/tmp"), ("where-inner", "/tmp"), ("where-inner", None)]


def test_warn_only_and_quiet_keywords(tmp_path: Path):
    remote = RecordingRemote()
    remote.respond("^false", exited=1, stderr="nope")
    got = []

    def tolerant():
        got.append(api.run("false", warn_only=True))
        got.append(api.sudo("false", quiet=True))
        with api.settings(warn_only=True):
            got.append(api.run("false"))
        api.run("echo done", pty=True, shell=False, combine_stderr=True)  # cosmetic only
        api.run("false")

    c = make(tmp_path, tolerant, remote=remote)
    with pytest.raises(CommandFailed):
        c.call("tolerant")
    assert [(r.failed, r.return_code, r.stderr) for r in got] == [(True, 1, "nope")] * 3
    assert remote.ran("^echo done")


@pytest.mark.parametrize(("call", "hint"), [
    (lambda: api.run("x", timeout=5), "api.run(timeout=...) is not supported by hostout 2: "
                                      "put `timeout SECONDS` in front of the command"),
    (lambda: api.sudo("x", group="adm"), "api.sudo(group=...) is not supported"),
    (lambda: api.run("x", stdout=io.StringIO()), "api.run(stdout=...) is not supported"),
])
def test_fabric_keywords_hostout_cannot_honour_fail_in_one_line(tmp_path: Path, call, hint):
    def cmd():
        call()

    with pytest.raises(HostoutError) as err:
        make(tmp_path, cmd).call("cmd")
    assert str(err.value).startswith("host1: " + hint)


def test_get_and_put_of_relative_paths_inside_cd(tmp_path: Path):
    remote = RecordingRemote()
    remote.files["/srv/app/var/log/app.log"] = b"log line\n"
    remote.respond(r"^for p in /srv/app/var/log/app\.log;",
                   stdout="/srv/app/var/log/app.log\t/srv/app/var/log/app.log\n")
    remote.respond(r"^test -d /srv/app/etc/app\.conf$", exited=1)
    (tmp_path / "app.conf").write_text("conf\n")

    def fetch():
        with api.cd("/srv/app"):
            got = api.get("var/log/app.log", "copy.log")
            put = api.put("app.conf", "etc/app.conf", mode=0o640)
        assert list(got) == [str(tmp_path / "copy.log")] and got.succeeded
        assert list(put) == ["/srv/app/etc/app.conf"]

    make(tmp_path, fetch, remote=remote).call("fetch")
    assert (tmp_path / "copy.log").read_text() == "log line\n"
    assert remote.files["/srv/app/etc/app.conf"] == b"conf\n"


def test_get_default_local_path_is_host_then_path(tmp_path: Path):
    remote = RecordingRemote()
    remote.files["/etc/motd"] = b"hi\n"
    remote.respond(r"^for p in /etc/motd;", stdout="/etc/motd\t/etc/motd\n")

    def fetch():
        api.get("/etc/motd")

    make(tmp_path, fetch, remote=remote).call("fetch")
    assert (tmp_path / "server.example" / "etc" / "motd").read_text() == "hi\n"


def test_get_of_a_missing_file_is_one_line(tmp_path: Path):
    def fetch():
        api.get("/nowhere/x", "x")

    with pytest.raises(RemoteError, match="host1: get: no remote file /nowhere/x"):
        make(tmp_path, fetch).call("fetch")


def test_require_names_the_missing_options(tmp_path: Path):
    def needs():
        api.require("hosttype", "key", used_for="logging into your cloud account")

    with pytest.raises(CommandFailed) as err:
        make(tmp_path, needs, key="k").call("needs")
    assert str(err.value) == ("host1: this command needs option hosttype (used for logging "
                              "into your cloud account): set it in the part [host1] of the "
                              "buildout")


def test_require_passes_when_set(tmp_path: Path):
    def needs():
        api.require("hosttype", "buildout_user")

    make(tmp_path, needs, hosttype="dummy").call("needs")


# -- as whom: buildoutuser, asbuildoutuser, env.user, env.hosts ------------------------------
def test_asbuildoutuser_and_buildoutuser_log_in_as_the_buildout_user(tmp_path: Path):
    @buildoutuser
    def as_bo():
        """decorated"""
        api.run("decorated")
        api.sudo("root-anyway")

    def mixed():
        api.run("as-login")
        with asbuildoutuser():
            api.run("as-buildout")
            api.put(str(tmp_path / "f"), "/tmp/f")
        api.run("as-login-again")

    (tmp_path / "f").write_text("x")
    remote = RecordingRemote()
    remote.respond("^test -d", exited=1)  # /tmp/f is not a directory: the file goes there
    c = make(tmp_path, as_bo, mixed, remote=remote, **{"buildout-user": "bo"})
    c.call("as_bo")
    c.call("mixed")
    who = [(call.script or call.path, call.who) for call in remote_of(c).calls
           if call.kind != "run" or not call.script.startswith("test -d")]
    assert who == [("decorated", "buildout"), ("root-anyway", "root"), ("as-login", "login"),
                   ("as-buildout", "buildout"), ("/tmp/f", "buildout"),
                   ("as-login-again", "login")]


def test_a_decorated_command_is_still_found_as_a_command():
    mod = types.ModuleType("plugin_fabfile")
    exec(compile("from collective.hostout.hostout import buildoutuser, asbuildoutuser\n"
                 "from collective.hostout import api, contrib\n"
                 "@buildoutuser\ndef supervisorctl(*args, **vargs):\n"
                 "    '''Runs supervisorctl'''\n"
                 "def helper():\n    pass\n", "plugin_fabfile", "exec"), mod.__dict__)
    found = {c.name: c for c in commands_of(mod, "hostout.plugin")}
    assert set(found) == {"supervisorctl", "helper"}
    assert found["supervisorctl"].summary == "Runs supervisorctl"
    assert not found["supervisorctl"].native
    found["supervisorctl"].check_arguments(("stop", "all"), {"ignore_errors": True})


def test_env_user_of_the_buildout_user_runs_as_it_others_log_in_anew(tmp_path: Path):
    def switch():
        api.env.user = "bo"
        api.run("as-bo")
        assert api.env.host_string == "bo@server.example:2222"
        api.env.user = "deploy"
        api.run("as-deploy")
        api.env.user = "root"
        api.run("as-root")

    c = make(tmp_path, switch, **{"buildout-user": "bo"})
    first = remote_of(c)
    c.call("switch")
    assert [(x.script, x.who) for x in first.calls] == [("as-bo", "buildout"),
                                                        ("as-deploy", "login")]
    assert first.closed
    assert [s.user for s in c.made] == ["root"]  # type: ignore[attr-defined]
    assert remote_of(c).scripts() == ["as-root"]
    assert c.settings.user == "root" and c.settings.hostname == "server.example"


def test_env_hosts_logs_in_to_the_new_host(tmp_path: Path):
    def move():
        api.env.hosts = ["admin@10.0.0.7:2200"]
        api.run("there")

    c = make(tmp_path, move)
    c.call("move")
    new = c.made[-1]  # type: ignore[attr-defined]
    assert (new.hostname, new.port, new.user) == ("10.0.0.7", 2200, "admin")
    assert remote_of(c).scripts() == ["there"]


def test_env_hosts_with_several_hosts_is_refused(tmp_path: Path):
    def move():
        api.env.hosts = ["a", "b"]

    with pytest.raises(ConfigError, match="a host part is one server"):
        make(tmp_path, move).call("move")


def test_settings_puts_the_login_back(tmp_path: Path):
    def visit():
        with api.settings(host_string="other.example"):
            api.run("there")
        api.run("back")

    c = make(tmp_path, visit)
    c.call("visit")
    assert [s.hostname for s in c.made] == ["other.example", "server.example"]  # type: ignore[attr-defined]
    assert c.settings.hostname == "server.example" and c.settings.port == 2222


# -- env.hostout ---------------------------------------------------------------------------------
def test_hostout_methods_of_hostout_1(tmp_path: Path):
    got = {}

    def inspect_it():
        h = api.env.hostout
        got["path"] = h.getRemoteBuildoutPath()
        got["dl"] = h.getDownloadCache()
        got["eggs"] = h.getEggCache()
        got["key"] = h.getIdentityKey()
        got["pre"] = h.getPreCommands()
        got["missing"] = getattr(h, "bootstrap_users_slackware", "fallback")
        got["name"] = (h.name, h.host, h.port, h.remote_dir)

    c = make(tmp_path, inspect_it, **{"pre-commands": f"{tmp_path}/bin/stop"})
    c.call("inspect_it")
    assert got["path"] == "/srv/host1"
    assert got["dl"] == "/srv/host1/buildout-cache/downloads"
    assert got["eggs"] == "/srv/host1/buildout-cache/eggs"
    keyfile, public = got["key"]
    assert keyfile == str(tmp_path / "host1_key") and public.startswith("ssh-ed25519 ")
    assert Path(keyfile).stat().st_mode & 0o777 == 0o600
    assert got["pre"] == ["/srv/host1/bin/stop"]  # hostout 1 made local paths remote
    assert got["missing"] == "fallback"
    assert got["name"] == ("host1", "server.example", 2222, "/srv/host1")


def test_hostout_1_attributes_without_meaning_say_what_replaces_them(tmp_path: Path):
    def old():
        api.env.hostout.getHostoutPackage()

    with pytest.raises(HostoutError) as err:
        make(tmp_path, old).call("old")
    assert str(err.value) == ("host1: api.env.hostout.getHostoutPackage is hostout 1's: "
                              "hostout 2 uploads the cfg files itself: call "
                              "api.env.hostout.uploadbuildout()")


def test_initcommand_runs_before_every_command_called_by_name(tmp_path: Path):
    seen = []

    def initcommand(cmd):
        seen.append(("init", cmd))

    def native_init(c, cmd):
        seen.append(("native", cmd))

    def first():
        seen.append("first")
        api.env.hostout.second()

    def second():
        seen.append("second")

    c = make(tmp_path, first, second)
    reg = c.registry
    reg.add(Command("initcommand", initcommand, "plugin", False))
    reg.add(Command("initcommand", native_init, "fabfile.py", True))
    c.call("first")
    assert seen == [("init", "first"), ("native", "first"), "first",
                    ("init", "second"), ("native", "second"), "second"]


def test_hostouts_reads_and_runs_another_host(tmp_path: Path):
    peers = Peers()
    got = {}

    def copy_to(tgt):
        target = api.env.hostout.hostouts[tgt]
        got["options"] = (target.options["buildout-user"], target.options["path"])
        got["result"] = target.whoami_here()
        got["back"] = api.env.hostout.name

    def whoami_here():
        return api.env.hostout.name

    c = make(tmp_path, copy_to, whoami_here, peers=peers)
    make(tmp_path, whoami_here, name="host2", peers=peers, **{"buildout-user": "bo2"})
    c.call("copy_to", "host2")
    assert got == {"options": ("bo2", "/srv/host2"), "result": "host2", "back": "host1"}


def test_a_busy_peer_is_refused_not_shared(tmp_path: Path):
    import threading

    peers = Peers()

    def poke(tgt):
        api.env.hostout.hostouts[tgt].whoami_here()

    def whoami_here():
        return "x"

    c = make(tmp_path, poke, peers=peers)
    other = make(tmp_path, whoami_here, name="host2", peers=peers)
    held, release = threading.Event(), threading.Event()

    def hold():
        with other.lock:
            held.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    try:
        with pytest.raises(HostoutError, match="host host2 is running its own commands"):
            c.call("poke", "host2")
    finally:
        release.set()
        t.join()


# -- contrib.files -------------------------------------------------------------------------------
def test_contrib_files_append_exists_contains_sed(tmp_path: Path):
    remote = RecordingRemote()
    remote.respond(r"^test -e '/etc/app.conf'$")  # exists
    remote.respond(r"^grep -q -E -e '\^present line\$'")  # already there
    remote.respond(r"^grep -q -E -e '\^new line\$'", exited=1)
    got = {}

    def edit():
        got["exists"] = contrib.files.exists("/etc/app.conf")
        contrib.files.append("/etc/app.conf", ["present line", "new line"], use_sudo=True)
        contrib.files.sed("/etc/app.conf", "port=80", "port=8080", use_sudo=True)
        contrib.files.comment("/etc/app.conf", "^debug", use_sudo=True)
        got["contains"] = contrib.files.contains("/etc/app.conf", "a.b")

    make(tmp_path, edit, remote=remote).call("edit")
    assert got == {"exists": True, "contains": True}
    scripts = remote.scripts()
    assert "printf '%s\\n' 'new line' >> /etc/app.conf" in scripts
    assert not any("'present line' >>" in s for s in scripts)
    assert "sed -i.bak -r -e s/port=80/port=8080/g /etc/app.conf" in scripts
    assert "sed -i.bak -r -e 's/^(debug)/#\\1/g' /etc/app.conf" in scripts
    assert "grep -q -F -e a.b /etc/app.conf" in scripts
    assert [c.who for c in remote.ran(r"^(printf|sed)")] == ["root"] * 3


def test_rsync_project_says_what_replaces_it(tmp_path: Path):
    def sync():
        contrib.project.rsync_project("/srv/x", "x")

    with pytest.raises(HostoutError, match="rsync_project is not supported by hostout 2"):
        make(tmp_path, sync).call("sync")


# -- built-in hostout 1 commands -----------------------------------------------------------------
def test_runescalatable_tries_buildout_user_then_login_then_root(tmp_path: Path):
    remote = RecordingRemote()
    remote.respond("^mkdir -p /srv/data$", exited=1, times=2)  # fails unless as root
    c = make(tmp_path, remote=remote, **{"buildout-user": "bo"})
    c.call("runescalatable", "mkdir", "-p", "/srv/data")
    assert [x.who for x in remote.ran("^mkdir")] == ["buildout", "login", "root"]


def test_require_ownership_checks_then_chowns(tmp_path: Path):
    remote = RecordingRemote()
    c = make(tmp_path, remote=remote)
    c.call("requireOwnership", "/srv/x y", "bo", "grp", "True")
    script = remote.ran("chown")[-1].script
    assert script == "[ \"$(stat -c %U:%G '/srv/x y')\" = bo:grp ] || chown -R bo:grp '/srv/x y'"


def test_detecthostos_prefers_the_option_then_os_release(tmp_path: Path):
    remote = RecordingRemote()
    remote.respond("^cat /etc/os-release$", stdout=UBUNTU)
    assert make(tmp_path, remote=remote).call("detecthostos") == "ubuntu"
    assert make(tmp_path, hostos="redhat").call("detecthostos") == "redhat"


def per_os_host(tmp_path: Path, os_release: str, *funcs: Callable[..., Any],
                **options: str) -> Context:
    remote = RecordingRemote()
    remote.respond("^cat /etc/os-release$", stdout=os_release)
    remote.respond(r"sysconfig\.get_platform", stdout="linux-x86_64 3.11\n")
    remote.respond(r"sysconfig\.get_platform", exited=1, times=1)  # no Python at first
    return make(tmp_path, *funcs, remote=remote, **options)


def test_bootstrap_python_runs_the_plugins_per_os_command(tmp_path: Path):
    ran = []

    def bootstrap_python_debian():
        ran.append("debian")
        api.sudo("install-python-my-way")

    def bootstrap_python_redhat():
        ran.append("redhat")

    c = per_os_host(tmp_path, UBUNTU, bootstrap_python_debian, bootstrap_python_redhat)
    c.call("bootstrap_python")
    assert ran == ["debian"]  # ubuntu is ID_LIKE debian: the closest defined wins
    assert not remote_of(c).ran("apt-get")
    assert remote_of(c).ran("install-python-my-way")


def test_a_per_os_command_may_call_the_generic_one(tmp_path: Path):
    def bootstrap_python_ubuntu():
        api.sudo("add-my-ppa")
        api.env.hostout.bootstrap_python()

    remote = RecordingRemote()
    remote.respond("^cat /etc/os-release$", stdout=UBUNTU)
    remote.respond(r"sysconfig\.get_platform", stdout="linux-x86_64 3.11\n")
    remote.respond(r"sysconfig\.get_platform", exited=1, times=2)  # until apt installed it
    c = make(tmp_path, bootstrap_python_ubuntu, remote=remote)
    c.call("bootstrap_python")
    scripts = remote.scripts()
    assert scripts.index("add-my-ppa") < next(
        i for i, s in enumerate(scripts) if "apt-get install" in s)


def test_a_per_os_command_that_leaves_no_python_is_one_line(tmp_path: Path):
    def bootstrap_python_debian():
        pass

    remote = RecordingRemote()
    remote.respond("^cat /etc/os-release$", stdout=DEBIAN)
    remote.respond(r"sysconfig\.get_platform", exited=1)
    c = make(tmp_path, bootstrap_python_debian, remote=remote)
    with pytest.raises(UnsupportedSystem, match="host1: bootstrap_python_debian ran, but "
                                                r"python3\.\d+ with venv support is still "
                                                "missing"):
        c.call("bootstrap_python")


def test_a_server_that_has_the_python_needs_no_per_os_command(tmp_path: Path):
    ran = []

    def bootstrap_python_debian():
        ran.append("debian")

    remote = RecordingRemote()
    remote.respond(r"sysconfig\.get_platform", stdout="linux-x86_64 3.11\n")
    make(tmp_path, bootstrap_python_debian, remote=remote).call("bootstrap_python")
    assert ran == [] and not remote.ran("os-release")


def test_hostos_names_its_family_too(tmp_path: Path):
    ran = []

    def bootstrap_users_debian():
        ran.append("debian")

    per_os_host(tmp_path, DEBIAN, bootstrap_users_debian, hostos="ubuntu").call(
        "bootstrap_users")
    assert ran == ["debian"]


def test_without_per_os_commands_the_os_is_not_even_asked(tmp_path: Path):
    remote = RecordingRemote()
    remote.respond(r"sysconfig\.get_platform", stdout="linux-x86_64 3.11\n")
    c = make(tmp_path, remote=remote)
    c.call("bootstrap_python")  # python is there already
    assert not remote.ran("os-release")


def test_the_hostos_option_chooses_the_per_os_command(tmp_path: Path):
    ran = []

    def bootstrap_users_centos():
        ran.append("centos")

    c = per_os_host(tmp_path, DEBIAN, bootstrap_users_centos, hostos="centos")
    c.call("bootstrap_users")
    assert ran == ["centos"]


# -- boot scripts --------------------------------------------------------------------------------
def test_bootscript_installs_by_systemd_where_it_runs(tmp_path: Path):
    remote = RecordingRemote()
    remote.respond(r"/run/systemd/system", stdout="systemd\n")
    c = make(tmp_path, remote=remote)
    assert c.call("install_bootscript", "bin/supervisord", "bin/supervisorctl shutdown") \
        == "buildout-host1"
    script = remote.ran("systemctl enable")[0]
    assert script.who == "root"
    assert "systemctl enable buildout-host1.service" in script.script
    assert "ExecStart=/etc/hostout/bootscripts/buildout-host1 start" in script.script


def test_bootscript_falls_back_to_cron_and_refuses_without_either(tmp_path: Path):
    remote = RecordingRemote()
    remote.respond(r"/run/systemd/system", stdout="cron\n")
    c = make(tmp_path, remote=remote)
    c.call("install_bootscript", "bin/start", "bin/stop", "app")
    installed = remote.ran("crontab -")[0].script
    assert "@reboot /etc/hostout/bootscripts/buildout-app start # hostout:buildout-app" \
        in installed
    remote.respond(r"/run/systemd/system", stdout="none\n")
    with pytest.raises(UnsupportedSystem, match="neither systemd nor cron"):
        c.call("install_bootscript", "bin/start", "bin/stop")


def test_bootscript_runs_its_commands_in_path():
    text = bootscripts.script("buildout-h", "/srv/my app", "bin/supervisord",
                              "bin/supervisorctl shutdown")
    assert text.splitlines()[2] == "cd '/srv/my app' || exit 1"
    assert "  start)\nbin/supervisord\n    ;;" in text


def test_bootscript_names_are_safe(tmp_path: Path):
    c = make(tmp_path)
    with pytest.raises(ConfigError, match="boot script name"):
        c.call("install_bootscript", "a", "b", "x;rm -rf /")


def test_uninstall_also_removes_a_hostout_1_init_script(tmp_path: Path):
    remote = RecordingRemote()
    c = make(tmp_path, remote=remote)
    c.call("uninstall_bootscript")
    script = remote.ran("init.d")[0].script
    assert "rm -f /etc/init.d/buildout-host1" in script
    assert "rm -f /etc/hostout/bootscripts/buildout-host1" in script


def test_legacy_api_outside_a_command_is_one_line():
    with pytest.raises(HostoutError, match="only usable inside a command run by bin/hostout"):
        api.run("x")


def test_legacy_state_is_per_host(tmp_path: Path):
    a, b = make(tmp_path, name="a"), make(tmp_path, name="b")
    ran = []

    def inside():
        ran.append(api.env.hostout.name)
        api.run("x")

    a.registry.add(Command("inside", inside, "t", False))
    b.registry.add(Command("inside", inside, "t", False))
    with_bo = Command("as_bo", buildoutuser(inside), "t", False)
    a.registry.add(with_bo)
    a.call("as_bo")
    b.call("inside")
    assert ran == ["a", "b"]
    assert remote_of(a).calls[0].account is Account.BUILDOUT
    assert remote_of(b).calls[0].account is Account.LOGIN


class FlagsRemote(RecordingRemote):
    """Also records what hide/echo each command ran with."""

    def __init__(self) -> None:
        super().__init__()
        self.flags: list[tuple[str, bool, bool]] = []

    def execute(self, cmd, *, warn=False, hide=False, echo=True):  # type: ignore[override]
        self.flags.append((cmd.script, hide, echo))
        return super().execute(cmd, warn=warn, hide=hide, echo=echo)


def test_hide_groups_hide_output_or_the_command_itself(tmp_path: Path):
    remote = FlagsRemote()

    def chatty():
        api.run("plain")
        with api.hide("stdout", "stderr"):
            api.run("no-output")
            with api.hide("running"):
                api.run("nothing")
                with api.show("output"):
                    api.run("output-again")
        with api.hide():
            api.run("hidden")
        api.run("quiet", quiet=True)

    make(tmp_path, chatty, remote=remote).call("chatty")
    assert remote.flags == [("plain", False, True), ("no-output", True, True),
                            ("nothing", True, False), ("output-again", False, False),
                            ("hidden", True, False), ("quiet", True, False)]


def test_hostout_1_commands_hostout_2_lacks_say_what_replaces_them(tmp_path: Path):
    def pre():
        api.env.hostout.precommands()

    with pytest.raises(HostoutError) as err:
        make(tmp_path, pre).call("pre")
    assert str(err.value).startswith("host1: api.env.hostout.precommands is hostout 1's: "
                                     "pre-commands run inside the buildout command")


def test_a_plugin_command_named_like_a_replaced_one_is_the_plugins(tmp_path: Path):
    def hotfix():
        return "the plugin's"

    def dockerfile():
        return api.env.hostout.hotfix()

    assert make(tmp_path, hotfix, dockerfile).call("dockerfile") == "the plugin's"


def test_put_and_get_commands_work_in_path_as_the_buildout_user(tmp_path: Path):
    remote = RecordingRemote()
    remote.respond(r"^for p in /srv/host1/var/Data\.fs;",
                   stdout="/srv/host1/var/Data.fs\t/srv/host1/var/Data.fs\n")
    remote.files["/srv/host1/var/Data.fs"] = b"data"
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "app.cfg").write_text("cfg")
    c = make(tmp_path, remote=remote, **{"buildout-user": "bo"})
    assert c.call("put", "etc/app.cfg") == ["/srv/host1/etc/app.cfg"]
    assert remote.files["/srv/host1/etc/app.cfg"] == b"cfg"
    assert c.call("get", "var/Data.fs") == [str(tmp_path / "var" / "Data.fs")]
    assert (tmp_path / "var" / "Data.fs").read_bytes() == b"data"
    assert {call.who for call in remote.calls if call.kind in ("put", "get")} == {"buildout"}
    assert remote.ran("^mkdir -p etc$")[0].cwd == "/srv/host1"


def test_shell_env_and_sudo_user(tmp_path: Path):
    remote = RecordingRemote()

    def envs():
        with api.shell_env(APP_ENV="prod"):
            api.run("show-env")
        with api.settings(sudo_user="app"):
            api.sudo("as-app")

    make(tmp_path, envs, remote=remote).call("envs")
    assert remote.calls[0].script == "show-env"
    assert [(c.script, c.who) for c in remote.calls] == [("show-env", "login"),
                                                         ("as-app", "app")]


def test_shell_env_reaches_the_command(tmp_path: Path):
    seen = []

    class EnvRemote(RecordingRemote):
        def execute(self, cmd, **kw):  # type: ignore[override]
            seen.append(cmd.body)
            return super().execute(cmd, **kw)

    def envs():
        with api.shell_env(APP_ENV="prod value"):
            api.run("show-env")

    make(tmp_path, envs, remote=EnvRemote()).call("envs")
    assert seen == ["export APP_ENV='prod value' && show-env"]


@pytest.mark.parametrize(("key", "hint"), [
    ("disable_known_hosts", "host keys are always checked"),
    ("gateway", "use ProxyJump in ~/.ssh/config"),
    ("parallel", "hosts come from the command line"),
])
def test_fabric_env_keys_hostout_cannot_honour_are_refused(tmp_path: Path, key, hint):
    def setit():
        setattr(api.env, key, True)

    with pytest.raises(HostoutError) as err:
        make(tmp_path, setit).call("setit")
    assert str(err.value).startswith(f"host1: api.env.{key} is not supported by hostout 2: "
                                     + hint)


def test_settings_puts_back_only_the_keys_it_was_given(tmp_path: Path):
    got = []

    def block():
        api.env.kept = "before"
        with api.settings(warn_only=True, kept="inside"):
            api.env.made_inside = "stays"  # Fabric 1 kept changes to other keys
            got.append((api.env.warn_only, api.env.kept))
        got.append((api.env.warn_only, api.env.kept, api.env.made_inside))
        with api.settings(cwd="/opt"):
            api.run("in-opt")
        api.run("nowhere")

    c = make(tmp_path, block)
    c.call("block")
    assert got == [(True, "inside"), (False, "before", "stays")]
    assert [(x.script, x.cwd) for x in remote_of(c).calls] == [("in-opt", "/opt"),
                                                               ("nowhere", None)]


def test_upload_template_renders_backs_up_and_uploads(tmp_path: Path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "app.conf.in").write_text("port = %(port)s\n")
    remote = RecordingRemote()
    remote.respond(r"^test -d /etc/app$")  # a directory: the file goes into it
    remote.respond(r"^test -d /etc/app/app\.conf\.in$", exited=1)

    def render():
        contrib.files.upload_template("app.conf.in", "/etc/app", {"port": 8080},
                                      template_dir="templates", use_sudo=True, mode=0o640)

    make(tmp_path, render, remote=remote).call("render")
    assert remote.ran(r"^cp -p /etc/app/app\.conf\.in /etc/app/app\.conf\.in\.bak$")
    staged = [path for path in remote.files if path.endswith("/0")]
    assert [remote.files[p] for p in staged] == [b"port = 8080\n"]
    moved = remote.ran("mv -f")[0]
    assert moved.who == "root"
    assert "mv -f " in moved.script and "/etc/app/app.conf.in && chmod 640" in moved.script
