"""The plugins shipped with hostout, loaded by their hostout 1 names in a real (local, offline)
buildout: ``extends = hostout.supervisor`` / ``hostout.cloud`` never looks for an egg."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildouts import buildout, hostout, write


def host_entry(directory: Path, name: str = "h") -> dict:
    return json.loads((directory / "parts/hostout/hostout.json").read_text())["hosts"][name]


def commands(directory: Path, host: str = "h") -> dict[str, str]:
    listing = hostout(directory, host).stdout.splitlines()[2:]
    return {ln.split(":")[0].strip(): ln.partition(":")[2].strip() for ln in listing}


def cfg(directory: Path, *options: str) -> None:
    write(directory, "buildout.cfg", "\n".join([
        "[buildout]", "parts = h", "", "[h]",
        "recipe = collective.hostout", "host = example.invalid", *options, ""]))


def built(directory: Path) -> str:
    """bin/buildout's output; it never looked for an egg named hostout.*."""
    proc = buildout(directory)
    said = proc.stdout + proc.stderr
    assert "hostout.supervisor" not in said and "hostout.cloud" not in said, said
    assert not list((directory / "eggs").rglob("hostout.*"))
    return said


def test_extends_hostout_supervisor_loads_the_shipped_plugin(tmp_path: Path):
    cfg(tmp_path, "extends = hostout.supervisor", "rollingrestart = true")
    built(tmp_path)
    entry = host_entry(tmp_path)
    assert entry["plugins"] == ["hostout.supervisor"]
    assert entry["options"]["supervisor"] == "supervisor"  # hostout 1's default, for fabfiles
    found = commands(tmp_path)
    assert {"supervisorctl", "status", "start", "stop", "restart", "tail",
            "supervisorboot"} <= set(found)
    assert "supervisord stopped meanwhile" in found["buildout"]
    script = (tmp_path / "bin" / "hostout").read_text()
    assert "hostout.supervisor" not in script  # no egg of that name on bin/hostout's path


def test_a_bad_supervisor_option_fails_the_buildout_in_one_line(tmp_path: Path):
    cfg(tmp_path, "extends = hostout.supervisor", "rollingrestart = sometimes")
    proc = buildout(tmp_path, check=False)
    assert proc.returncode != 0
    said = proc.stdout + proc.stderr
    assert "h: option rollingrestart = 'sometimes' is not true or false" in said
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("sudo", ["", "sudosupervisor = rootsv"])
def test_sudosupervisor_leaves_supervisor_unset_as_hostout_1_did(tmp_path: Path, sudo: str):
    cfg(tmp_path, "extends = hostout.supervisor", sudo)
    built(tmp_path)
    options = host_entry(tmp_path)["options"]
    assert options.get("supervisor") == (None if sudo else "supervisor")


def test_extends_hostout_cloud_loads_the_shipped_plugin_with_libcloud(tmp_path: Path):
    cfg(tmp_path, "extends = hostout.cloud", "provider = dummy", "provider-creds = 0")
    built(tmp_path)
    assert host_entry(tmp_path)["plugins"] == ["hostout.cloud"]
    found = commands(tmp_path)
    assert {"create", "list", "start", "stop", "vmstart", "vmstop", "reboot", "wait",
            "destroy", "sizes", "images"} <= set(found)
    import libcloud

    script = (tmp_path / "bin" / "hostout").read_text()
    assert "hostout.cloud" not in script
    assert f"'{Path(libcloud.__file__).parents[1]}'" in script  # on bin/hostout's path
    listing = hostout(tmp_path, "h", "list")  # the dummy driver's VMs, from bin/hostout
    assert listing.returncode == 0, listing.stderr
    assert "[h] out: dummy-1" in listing.stdout


def test_a_bad_cloud_option_fails_the_buildout_in_one_line(tmp_path: Path):
    cfg(tmp_path, "extends = hostout.cloud", "provider = dummy", "hostsize = big")
    proc = buildout(tmp_path, check=False)
    assert proc.returncode != 0
    assert "h: option hostsize = 'big' is not megabytes" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
