"""Which commands of a deploy download, and so get the tunnel's proxy with ``tunnel = true``:
the package managers, the builds, ad hoc run/sudo; never the pre-/post-commands, which start
the application (it must not inherit a proxy that closes after the command)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_deploy_orchestration import bare_host, make

from collective.hostout import RecordingRemote
from collective.hostout.config.settings import build_settings
from collective.hostout.errors import ConfigError
from collective.hostout.server import system


def test_tunnel_is_an_on_off_option(tmp_path: Path):
    def tunnel(value: str | None) -> bool:
        options = {} if value is None else {"tunnel": value}
        return build_settings("h", options, buildout_directory=tmp_path).tunnel

    assert tunnel(None) is False and tunnel("false") is False
    assert tunnel("true") is True and tunnel("Yes") is True
    with pytest.raises(ConfigError, match="option tunnel = 'sometimes' is not true or false"):
        tunnel("sometimes")


def test_a_deploy_marks_what_downloads(tmp_path: Path):
    remote = bare_host()
    make(tmp_path, remote).call("deploy")
    network = [c.script for c in remote.calls if c.kind == "run" and c.network]
    assert [s for s in network if "apt-get" in s] and all(
        "apt-get" in s or "bin/buildout" in s for s in network)
    (build,) = remote.ran(r"bin/buildout' -c hostout\.cfg|bin/buildout -c hostout\.cfg")
    assert build.network
    assert not any(c.network for c in remote.ran(r"^(stop|start)-app$"))  # pre/post
    assert not any(c.network for c in remote.ran(r"pip install"))  # from shipped files


def test_run_and_sudo_may_download(tmp_path: Path):
    remote = RecordingRemote("host1")
    c = make(tmp_path, remote)
    c.call("run", "bin/pip", "download", "x")
    c.call("sudo", "apt-get", "install", "htop")
    assert [call.network for call in remote.ran(r"download x|install htop")] == [True, True]


@pytest.mark.parametrize("release", ["ID=debian", "ID=fedora", "ID=alpine"])
def test_every_package_manager_command_downloads(release: str):
    os = system.OsRelease.parse(release)
    commands = [*system.install_python(os, "3.11"), *system.install_packages(os, ("cron",))]
    assert [c.network for c in commands if "ln -sf" not in c.script] == [True] * len(
        [c for c in commands if "ln -sf" not in c.script])
