"""Issue 4 against real sshd hosts: several hosts at once, one of them unreachable."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from buildouts import buildout, hostout, write
from hosts import HostFactory, TestHost, unused_port

pytestmark = pytest.mark.integration

FABFILE = '''
def hello(c):
    """say which host this is"""
    c.run(f"echo hello from {c.name}")


def check(c):
    """run the host's check option (default: true)"""
    c.run(c.options.get("check", "true"))
'''

REAL = ("host1", "host2", "host3")


def make(tmp: Path, real: list[TestHost], **checks: str) -> tuple[Path, int]:
    """A buildout with host1..3 on the real hosts and host4 on a port nobody listens on."""
    (tmp / "empty_ssh_config").touch()
    write(tmp, "fabfile.py", FABFILE)
    dead = unused_port()
    addresses = [f"{h.address}:{h.port}" for h in real] + [f"127.0.0.1:{dead}"]
    parts = []
    for i, address in enumerate(addresses, 1):
        name = f"host{i}"
        parts.append(f"""
[{name}]
<= common
host = {address}
{f"check = {checks[name]}" if name in checks else ""}
""")
    (tmp / "buildout.cfg").write_text(f"""
[buildout]
parts = host1 host2 host3 host4

[common]
recipe = collective.hostout
user = deploy
password = deploypw
known-hosts = {tmp / "known_hosts"}
ssh-config = {tmp / "empty_ssh_config"}
connect-timeout = 5
fabfiles = fabfile.py
{"".join(parts)}""")
    buildout(tmp)
    return tmp, dead


@pytest.fixture
def fleet(host_factory: HostFactory, tmp_path: Path) -> tuple[Path, list[TestHost], int]:
    real = host_factory(3)
    directory, dead = make(tmp_path, real, host2="echo checking; false")
    return directory, real, dead


def host_lines(proc: subprocess.CompletedProcess[str]) -> list[tuple[str, str]]:
    """(host, rest) for every host-prefixed stdout line."""
    found = []
    for line in proc.stdout.splitlines():
        if m := re.fullmatch(r"\[(host\d)\] (.*)", line):
            found.append((m[1], m[2]))
    return found


def summary(proc: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Summary: "))
    return {line.split()[0]: line.split() for line in lines[start + 2:]}


def test_the_others_complete_and_the_failures_are_reported_with_their_host(fleet):
    directory, real, dead = fleet
    proc = hostout(directory, "all", "hello", "check", timeout=120)
    assert proc.returncode == 1, proc.stderr
    said = host_lines(proc)
    for host in REAL:
        assert (host, f"out: hello from {host}") in said
        assert all(host not in rest for other, rest in said if other != host)  # never mixed
    assert ("host2", "out: checking") in said
    assert proc.stderr.splitlines() == [
        "Error: host2: 'run: echo checking; false' exited 1",
        f"Error: host4: cannot reach deploy@127.0.0.1:{dead}: connection refused",
    ]
    table = summary(proc)
    assert [table[h][1:4] for h in ("host1", "host3")] == [["hello", "check", "ok"]] * 2
    assert table["host2"][1:4] == ["hello", "check", "(1/2"]
    assert "FAILED" in table["host2"] and "FAILED" in table["host4"]
    assert proc.stdout.rstrip().endswith("connection refused")  # host4, last row
    # One connection per host, reused by both commands (and by nothing else).
    for host in real:
        assert host.logs().count("Accepted password for deploy") == 1


def test_serial_runs_the_hosts_in_the_order_given(fleet):
    directory, _, _ = fleet
    proc = hostout(directory, "--serial", "host3", "host4", "host1", "host2", "hello",
                   timeout=120)
    assert proc.returncode == 1
    order = [host for host, rest in host_lines(proc) if rest.startswith("out: hello")]
    assert order == ["host3", "host1", "host2"]
    assert list(summary(proc)) == ["host3", "host4", "host1", "host2"]


def test_json_events_parse_line_by_line(fleet):
    directory, _, dead = fleet
    proc = hostout(directory, "--json", "all", "hello", "check", timeout=120)
    assert proc.returncode == 1
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "deploypw" not in proc.stdout + proc.stderr
    for host in REAL:
        mine = [(e["command"], e["event"], e.get("status")) for e in events if e["host"] == host]
        assert mine[:2] == [("hello", "start", None), ("hello", "output", None)]
        assert mine[2] == ("hello", "end", "ok")
        assert mine[3] == ("check", "start", None)
        result = "failed" if host == "host2" else "ok"
        assert mine[-2:] == [("check", "end", result), (None, "finished", result)]
    (host4,) = [e for e in events if e["host"] == "host4" and e["event"] == "end"]
    assert (host4["command"], host4["status"]) == ("hello", "failed")
    assert host4["error"] == f"cannot reach deploy@127.0.0.1:{dead}: connection refused"
    outputs = {e["host"]: e["output"] for e in events
               if e["event"] == "output" and e["command"] == "hello"}
    assert outputs == {h: f"hello from {h}" for h in REAL}
    assert all(isinstance(e["time"], float) for e in events)


def test_fail_fast_starts_nothing_after_a_failure(fleet):
    directory, _, _ = fleet
    proc = hostout(directory, "--serial", "--fail-fast", "host1", "host4", "host3", "hello",
                   timeout=120)
    assert proc.returncode == 1
    assert [host for host, rest in host_lines(proc) if rest.startswith("out:")] == ["host1"]
    assert not [line for line in proc.stdout.splitlines() if line.startswith("[host3]")]
    table = summary(proc)
    assert table["host1"][2] == "ok" and "FAILED" in table["host4"]
    assert "skipped" in table["host3"]
