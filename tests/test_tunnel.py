"""tunnel = true on a real firewalled server (a host on an internal podman network: it
reaches nothing outside). It bootstraps with apt through the tunnel (plain http to the
Debian mirror) instead of Debian packages shipped from here, its build downloads over https
(CONNECT), pip works ad hoc; nothing stays open afterwards, and without the tunnel the same
build fails saying why."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from buildouts import buildout, example_for, fetch, hostout, write
from collective.hostout.testing import mirror_host
from hosts import podman, start_host
from registries import default_index_host, reach_mirror_probe

pytestmark = pytest.mark.integration

ANSWER = "Powered by collective.hostout!"


def listening_ports(text: str) -> set[int]:
    """Ports in LISTEN state (0A) in /proc/net/tcp{,6} text."""
    ports = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A":
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_a_firewalled_server_bootstraps_and_builds_through_the_tunnel(
        tmp_path: Path, internal_network: str):
    # other sessions on this machine remove the shared network when they end: make sure
    if podman("network", "exists", internal_network, check=False).returncode:
        podman("network", "create", "--internal", internal_network, check=False)
    host = start_host(network=internal_network, publish=(8080,))
    try:
        assert host.exec(reach_mirror_probe()).returncode != 0  # no way out
        d = example_for(tmp_path, host=f"{host.address}:22", password=host.password,
                        tunnel="true")
        index = default_index_host()
        prod = d / "prod.cfg"  # a part that downloads while it builds (over https)
        prod.write_text(prod.read_text().replace("parts += supervisor",
                                                 "parts += supervisor fetched")
                        + f"\n[fetched]\nrecipe = collective.recipe.template\n"
                          f"url = https://{index}/simple/zc-buildout/\n"
                          "output = ${buildout:parts-directory}/fetched.html\n")
        began = time.monotonic()
        proc = hostout(d, "-v", "host1", "deploy")
        print(f"deploy through the tunnel: {time.monotonic() - began:.0f} s")
        assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr
        out = proc.stdout
        assert "Debian packages" not in out  # apt installed Python itself, through us
        assert re.search(rf"^\[host1\] tunnel: GET http://{re.escape(mirror_host())}/", out,
                         re.M)
        assert f"[host1] tunnel: CONNECT {index}:443\n" in out
        assert "refused" not in out
        assert re.search(r"^\[host1\] tunnel closed after \d+ requests: ", out, re.M)
        assert "http://hostout:****@127.0.0.1:" in out  # the token is masked
        assert not re.search(r"hostout:(?!\*\*\*\*@)[^@\s]{8,}@", out)
        assert fetch(host.url(8080)) == ANSWER
        page = host.exec("cat /var/buildout/demo/parts/fetched.html").stdout
        assert "zc" in page and "buildout" in page and "<a " in page

        # the Python that runs the build (a venv shared by the releases)
        pip = hostout(d, "host1", "run", "/var/buildout/demo.hostout/venv/bin/python -m pip "
                      "download -q --no-deps --no-cache-dir -d /tmp/dl zc.lockfile && ls /tmp/dl")
        assert pip.returncode == 0, pip.stdout + pip.stderr
        assert re.search(r"^\[host1\] out: zc_lockfile-\S+\.whl$", pip.stdout, re.M)

        # open only for the duration of each command: nothing but sshd, supervisord
        # and the app listens on the server now
        tcp = host.exec("cat /proc/net/tcp /proc/net/tcp6").stdout
        assert listening_ports(tcp) == {22, 8080, 9001}

        write(d, "notunnel.cfg", "[buildout]\nextends = deploy.cfg\n[host1]\ntunnel = false\n")
        buildout(d, "-c", "notunnel.cfg")
        failed = hostout(d, "host1", "buildout")
        assert failed.returncode == 1
        last = failed.stderr.strip().splitlines()[-1]
        assert last.startswith("Error: host1: ") and "bin/buildout" in last, failed.stderr
        assert re.search(r"unreachable|timed out|Temporary failure|resolution", failed.stderr,
                         re.I), failed.stderr
    finally:
        host.remove()
