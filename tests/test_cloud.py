"""hostout.cloud end to end on real hosts: provider = podman makes the VM (a throwaway bare
Debian host), ``bin/hostout host1 create deploy`` deploys the example app to it in one run,
the VM is stopped and started, and ``destroy`` needs confirmation, then removes it and
forgets where it was."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from buildouts import EXAMPLE, buildout, fetch, hostout, write
from collective.hostout.testing.cloud import NAME_LABEL, PodmanNodeDriver
from hosts import podman

pytestmark = pytest.mark.integration

ANSWER = "Powered by collective.hostout!"


@pytest.fixture
def cloud_example(host_image: str, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """The example, its host1 a VM of provider podman (no host of its own)."""
    d = tmp_path / "hellowsgi"
    shutil.copytree(EXAMPLE, d, ignore=shutil.ignore_patterns(
        "bin", "parts", "eggs", "develop-eggs", ".installed.cfg", "*.egg-info", "*_key*",
        "hostoutversions.cfg", "known_hosts", "__pycache__"))
    (d / "ssh_config").touch()
    vm = f"test-{uuid.uuid4().hex[:8]}"
    write(d, "cloud.cfg", f"""
        [buildout]
        extends = buildout.cfg

        [host1]
        host =
        extends = hostout.cloud hostout.supervisor
        provider = podman
        provider-publish = 8080
        vm-name = {vm}
        known-hosts = {d / "known_hosts"}
        ssh-config = {d / "ssh_config"}
    """)
    buildout(d, "-c", "cloud.cfg")
    try:
        yield d, vm
    finally:  # whatever the test did, no VM is left behind
        listing = podman("ps", "-aq", "--filter", f"label={NAME_LABEL}={vm}").stdout.split()
        if listing:
            podman("rm", "--force", "--time", "0", *listing, check=False)


def the_vm(vm: str) -> Any:  # a Libcloud Node, or None
    found = [n for n in PodmanNodeDriver(publish="8080").list_nodes() if n.name == vm]
    return found[0] if found else None


def test_create_deploy_then_destroy(cloud_example: tuple[Path, str]):
    d, vm = cloud_example
    early = hostout(d, "host1", "deploy")
    assert early.returncode == 1
    assert early.stderr.strip().splitlines()[-1] == (
        "Error: host1: host1 has no VM yet: run 'bin/hostout host1 create deploy'")

    proc = hostout(d, "host1", "create", "deploy")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith(f"[host1] create: created VM {vm} (container (shares this "
                            "machine), Debian 12 bookworm") and "it answers SSH" in first
    assert "[host1] postswitch: started supervisord as app: demo RUNNING" in proc.stdout
    node = the_vm(vm)
    assert node is not None and node.extra["ssh_port"] != 22
    assert fetch(f"http://{node.extra['ports'][8080]}/") == ANSWER
    record = (d / "parts/hostout/records/host1.json")
    assert record.stat().st_mode & 0o777 == 0o600
    assert f"127.0.0.1:{node.extra['ssh_port']}" in record.read_text()

    listing = hostout(d, "host1", "list")
    assert listing.returncode == 0
    assert any(vm in ln and "<- host1" in ln for ln in listing.stdout.splitlines())

    # a later run goes to the VM too; stop and start it (supervisor has start/stop here)
    assert hostout(d, "host1", "vmstop").returncode == 0
    assert str(the_vm(vm).state) == "stopped"
    started = hostout(d, "host1", "vmstart", "run", "hostname")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "[host1] vmstart: started VM" in started.stdout

    refused = hostout(d, "host1", "destroy")  # no terminal, no --yes: nothing happens
    assert refused.returncode == 1
    assert "confirm with 'bin/hostout host1 destroy --yes'" in refused.stderr
    assert the_vm(vm) is not None

    gone = hostout(d, "host1", "destroy", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert f"[host1] destroy: destroyed VM {vm} (was at 127.0.0.1:" in gone.stdout
    assert the_vm(vm) is None and not record.exists()
    known = (d / "known_hosts").read_text()
    assert f"[127.0.0.1]:{node.extra['ssh_port']}" not in known
    again = hostout(d, "host1", "deploy")  # where to? nowhere: says so
    assert again.returncode == 1 and "has no VM yet" in again.stderr
