"""Many hosts at once: bin/hostout against the floor of its stack and the usual anchors.

Starts N bare test hosts (collective.hostout.testing, podman), then times, side by side in
one run and in rotating order, the same trivial remote command (``uname -n``) through:

* ``hostout``        bin/hostout of a generated buildout with N host parts;
* ``fabric-group``   a bare Fabric ThreadingGroup: the floor for hostout's stack;
* ``pyinfra``        ``pyinfra INVENTORY exec -- uname -n``;
* ``ansible``        ``ansible all -m command -a 'uname -n'``, default forks (5);
* ``ansible-forksN`` the same with ``--forks N``;
* ``serial-loop``    one Fabric Connection after another.

Every tool is a fresh process (interpreter start and imports count, as for a user), logs in
with the same ed25519 key (no passwords, no sshpass), and checks host keys against the same
known_hosts file (ssh-keyscan'ed up front). A run counts only if the tool exits 0 and printed
the node name of every host. Reported: median wall time of ``--repeat`` runs, the ratio to
the Fabric group, and the median CPU time (user+sys) of the tool's processes.

    .venv/bin/python bench/many_hosts.py                  # N = 10 25, 3 repeats
    .venv/bin/python bench/many_hosts.py -n 10 25 50 --profile

Needs root (podman) and bench/.venv (made on first use: pip install pyinfra ansible-core
py-spy; never a project dependency). The hosts get python3 (ansible's command module needs
it) from a derived image, localhost/hostout-bench:bookworm, made once from the test image.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import pstats
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from buildouts import buildout, write  # noqa: E402
from collective.hostout import testing  # noqa: E402  (the throwaway podman hosts)
from collective.hostout.runner import MAX_THREADS  # noqa: E402
from collective.hostout.testing.image import SSHD_CMD  # noqa: E402

BENCH_VENV = REPO / "bench" / ".venv"
BENCH_TOOLS = ("pyinfra", "ansible-core", "py-spy")
BENCH_IMAGE = "localhost/hostout-bench:bookworm"
PROJECT_PYTHON = Path(sys.executable)
COMMAND = "uname -n"
TIMEOUT = 600.0
SETTLE = 2.0  # seconds of quiet between two timed runs


# The floor: what hostout does, with nothing of hostout. Same key, same known_hosts.
FABRIC_SCRIPT = """
import sys
import paramiko
from fabric import Config, Connection, ThreadingGroup

key, known_hosts, ssh_config, mode, *targets = sys.argv[1:]
config = Config(runtime_ssh_path=ssh_config)
kwargs = {"key_filename": [key], "look_for_keys": False, "allow_agent": False}
known = paramiko.HostKeys(known_hosts)  # parsed once; each client gets its host's keys

def connection(target):
    host, port = target.rsplit(":", 1)
    conn = Connection(host, user="deploy", port=int(port), config=config, connect_kwargs=kwargs)
    name = f"[{host}]:{port}"
    for keytype, hostkey in (known.lookup(name) or {}).items():
        conn.client.get_host_keys().add(name, keytype, hostkey)
    return conn

if mode == "group":
    group = ThreadingGroup.from_connections([connection(t) for t in targets])
    for conn, result in group.run(CMD, hide=True).items():
        print(f"[{conn.port}] {result.stdout.strip()}")
    group.close()
else:
    for target in targets:
        with connection(target) as conn:
            print(f"[{conn.port}] {conn.run(CMD, hide=True).stdout.strip()}")
"""

HOSTOUT_FABFILE = f'''
def uname(c):
    """print the host's node name"""
    c.run({COMMAND!r})
'''


@dataclass
class Fleet:
    """N running hosts and what every tool needs to log in to them."""

    hosts: list[testing.TestHost]
    work: Path
    key: Path
    known_hosts: Path
    ssh_config: Path

    @property
    def targets(self) -> list[str]:
        return [f"{h.address}:{h.port}" for h in self.hosts]

    @property
    def node_names(self) -> list[str]:
        return [h.container[:12] for h in self.hosts]  # what uname -n says in a container

    def remove(self) -> None:
        for host in self.hosts:
            host.remove()


@dataclass
class Tool:
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    fresh: Callable[[int], dict[str, str]] | None = None  # more env for run number i
    cleanup: Callable[[], None] | None = None  # after each run, untimed


@dataclass
class Timing:
    wall: float
    cpu: float  # user+sys of the tool's own processes
    busy: float  # CPU seconds the whole machine spent meanwhile (sshd of the hosts included)
    ok: bool
    note: str = ""


# -- setting up -------------------------------------------------------------------------------
def ensure_bench_venv() -> None:
    if (BENCH_VENV / "bin" / "ansible").exists() and (BENCH_VENV / "bin" / "pyinfra").exists():
        return
    print(f"bench: making {BENCH_VENV} ({', '.join(BENCH_TOOLS)})", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    subprocess.run([str(BENCH_VENV / "bin" / "pip"), "install", "-q", *BENCH_TOOLS], check=True)


def ensure_bench_image() -> None:
    """The test image plus python3 (for ansible's command module), made once."""
    if testing.podman("image", "exists", BENCH_IMAGE, check=False).returncode == 0:
        return
    testing.ensure_image()
    print(f"bench: making {BENCH_IMAGE}", flush=True)
    name = f"hostout-bench-build-{os.getpid()}"
    script = ("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
              "--no-install-recommends python3 >/dev/null && rm -rf /var/lib/apt/lists/*")
    try:
        testing.podman("run", "--name", name, testing.IMAGE, "sh", "-c", script)
        testing.podman("commit", "-q", "--change", SSHD_CMD, name, BENCH_IMAGE)
    finally:
        testing.podman("rm", "--force", name, check=False)


def start_fleet(n: int, work: Path) -> Fleet:
    began = time.monotonic()
    fleet_hosts = testing.start_hosts(n, name_prefix="hostout-bench", image=BENCH_IMAGE)
    try:
        key = work / "id_ed25519"
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench",
                            "-f", str(key)], check=True)
        public = key.with_suffix(".pub").read_text()
        for host in fleet_hosts:
            host.authorize_key(public)
        known_hosts = work / f"known_hosts-{n}"
        with known_hosts.open("w") as fh:
            for host in fleet_hosts:
                subprocess.run(["ssh-keyscan", "-p", str(host.port), host.address],
                               stdout=fh, stderr=subprocess.DEVNULL, check=True)
        ssh_config = work / "empty_ssh_config"
        ssh_config.touch()
    except BaseException:
        for host in fleet_hosts:
            host.remove()
        raise
    print(f"bench: {n} hosts up in {time.monotonic() - began:.1f}s", flush=True)
    return Fleet(fleet_hosts, work, key, known_hosts, ssh_config)


# -- the tools --------------------------------------------------------------------------------
def hostout_tool(fleet: Fleet, *extra: str) -> Tool:
    """A buildout with one hostout part per host; bin/hostout all uname."""
    n = len(fleet.hosts)
    directory = fleet.work / f"buildout-{n}"
    name = "hostout" + "".join(extra).replace("--", "-")
    if (directory / "bin" / "hostout").exists():
        return Tool(name, [str(directory / "bin" / "hostout"), *extra, "all", "uname"],
                    directory)
    directory.mkdir(exist_ok=True)
    write(directory, "fabfile.py", HOSTOUT_FABFILE)
    names = [f"h{i:02}" for i in range(1, n + 1)]
    parts = "".join(f"\n[{name}]\n<= common\nhost = {target}\n"
                    for name, target in zip(names, fleet.targets, strict=True))
    (directory / "buildout.cfg").write_text(textwrap.dedent(f"""\
        [buildout]
        parts = {' '.join(names)}

        [common]
        recipe = collective.hostout
        user = deploy
        identity-file = {fleet.key}
        known-hosts = {fleet.known_hosts}
        ssh-config = {fleet.ssh_config}
        fabfiles = fabfile.py
        """) + parts)
    buildout(directory)
    return Tool(name, [str(directory / "bin" / "hostout"), *extra, "all", "uname"], directory)


def fabric_tool(fleet: Fleet, mode: str) -> Tool:
    script = fleet.work / "fabric_floor.py"
    script.write_text(f"CMD = {COMMAND!r}\n" + FABRIC_SCRIPT)
    argv = [str(PROJECT_PYTHON), str(script), str(fleet.key), str(fleet.known_hosts),
            str(fleet.ssh_config), mode, *fleet.targets]
    return Tool("fabric-group" if mode == "group" else "serial-loop", argv, fleet.work)


def pyinfra_tool(fleet: Fleet) -> Tool:
    inventory = fleet.work / f"inventory_{len(fleet.hosts)}.py"
    entries = [(f"h{i:02}", {"ssh_hostname": h.address, "ssh_port": h.port,
                             "ssh_user": h.user, "ssh_key": str(fleet.key),
                             "ssh_known_hosts_file": str(fleet.known_hosts),
                             "ssh_strict_host_key_checking": "yes",
                             "ssh_config_file": str(fleet.ssh_config)})
               for i, h in enumerate(fleet.hosts, 1)]
    inventory.write_text(f"hosts = {entries!r}\n")
    argv = [str(BENCH_VENV / "bin" / "pyinfra"), "-y", str(inventory), "exec", "--",
            *shlex.split(COMMAND)]
    return Tool("pyinfra", argv, fleet.work)


def ansible_tool(fleet: Fleet, forks: int | None) -> Tool:
    n = len(fleet.hosts)
    inventory = fleet.work / f"inventory_{n}.ini"
    inventory.write_text("".join(
        f"h{i:02} ansible_host={h.address} ansible_port={h.port} ansible_user={h.user}\n"
        for i, h in enumerate(fleet.hosts, 1)))
    home = fleet.work / "ansible-home"
    ssh_args = (f"-F {fleet.ssh_config} -o UserKnownHostsFile={fleet.known_hosts} "
                "-o StrictHostKeyChecking=yes -o ControlMaster=auto -o ControlPersist=60s")
    env = {
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_PRIVATE_KEY_FILE": str(fleet.key),
        "ANSIBLE_SSH_ARGS": ssh_args,
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
        "ANSIBLE_NOCOLOR": "1",
    }

    controls: list[Path] = []

    def fresh(i: int) -> dict[str, str]:
        # No ControlPersist master of an earlier run may be reused: a new directory each run.
        controls.append(Path(tempfile.mkdtemp(prefix="cp-", dir=fleet.work)))
        return {"ANSIBLE_SSH_CONTROL_PATH_DIR": str(controls[-1])}

    def cleanup() -> None:
        # Ansible's masters would hang up 60 s later, in the middle of another tool's run.
        for socket_path in controls[-1].iterdir():
            subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={socket_path}", "x"],
                           capture_output=True, check=False, timeout=30)

    argv = [str(BENCH_VENV / "bin" / "ansible"), "all", "-i", str(inventory), "-m", "command",
            "-a", COMMAND, *(["--forks", str(forks)] if forks else [])]
    name = f"ansible-forks{forks}" if forks else "ansible"
    return Tool(name, argv, fleet.work, env, fresh, cleanup)


def all_tools(fleet: Fleet) -> list[Tool]:
    n = len(fleet.hosts)
    tools = [hostout_tool(fleet), fabric_tool(fleet, "group"), pyinfra_tool(fleet),
             ansible_tool(fleet, None), ansible_tool(fleet, n), fabric_tool(fleet, "serial")]
    if n > MAX_THREADS:  # hostout's default caps the threads; also time it without the cap
        tools.insert(1, hostout_tool(fleet, f"--parallel={n}"))
    return tools


# -- timing -----------------------------------------------------------------------------------
def machine_busy() -> float:
    """CPU seconds all cores have spent busy since boot (/proc/stat: all but idle, iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks = sum(fields[:8]) - fields[3] - fields[4]
    return ticks / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_once(tool: Tool, fleet: Fleet, run: int) -> Timing:
    env = {**os.environ, **tool.env, **(tool.fresh(run) if tool.fresh else {})}
    cpu, busy = children_cpu(), machine_busy()
    began = time.perf_counter()
    proc = subprocess.run(tool.argv, cwd=tool.cwd, env=env, text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=TIMEOUT)
    wall = time.perf_counter() - began
    cpu, busy = children_cpu() - cpu, machine_busy() - busy
    said = proc.stdout + proc.stderr  # pyinfra prints to stderr
    missing = [name for name in fleet.node_names if name not in said]
    ok = proc.returncode == 0 and not missing
    note = "" if ok else (f"exit {proc.returncode}, {len(missing)} hosts missing: "
                          + (proc.stderr or proc.stdout).strip().splitlines()[-1:][0][:200]
                          if (proc.stderr or proc.stdout).strip() else f"exit {proc.returncode}")
    if tool.cleanup is not None:
        tool.cleanup()
    time.sleep(SETTLE)  # let the hosts' sshd finish their hang-ups before the next run
    log = fleet.work / "logs" / f"{tool.name}-{len(fleet.hosts)}-{run}.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(f"$ {shlex.join(tool.argv)}\n--- stdout\n{proc.stdout}\n--- stderr\n"
                   f"{proc.stderr}")
    return Timing(wall, cpu, busy, ok, note)


def bench(fleet: Fleet, tools: Sequence[Tool], repeat: int) -> dict[str, list[Timing]]:
    timings: dict[str, list[Timing]] = {t.name: [] for t in tools}
    for run in range(repeat):
        order = list(tools[run % len(tools):]) + list(tools[:run % len(tools)])  # rotate
        for tool in order:
            timing = time_once(tool, fleet, run)
            timings[tool.name].append(timing)
            flag = "" if timing.ok else f"  FAILED: {timing.note}"
            print(f"  n={len(fleet.hosts):<3} run {run + 1}  {tool.name:<16} "
                  f"{timing.wall:7.2f}s wall {timing.cpu:7.2f}s cpu {timing.busy:7.2f}s busy"
                  f"{flag}", flush=True)
    return timings


def report(n: int, timings: dict[str, list[Timing]]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    floor = statistics.median(t.wall for t in timings["fabric-group"])
    for name, runs in timings.items():
        wall = statistics.median(t.wall for t in runs)
        rows.append({"n": n, "tool": name, "median_s": round(wall, 2),
                     "ratio": round(wall / floor, 2),
                     "cpu_s": round(statistics.median(t.cpu for t in runs), 2),
                     "busy_s": round(statistics.median(t.busy for t in runs), 2),
                     "runs_s": [round(t.wall, 2) for t in runs],
                     "ok": all(t.ok for t in runs)})
    return rows


def markdown(rows: Sequence[dict[str, object]]) -> str:
    lines = ["| N | tool | median wall (s) | x Fabric group | tool CPU (s) | machine busy (s) "
             "| runs (s) | ok |",
             "|---:|---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        runs = " / ".join(f"{x:.2f}" for x in r["runs_s"])  # type: ignore[attr-defined]
        lines.append(f"| {r['n']} | {r['tool']} | {r['median_s']:.2f} | {r['ratio']:.2f} | "
                     f"{r['cpu_s']:.2f} | {r['busy_s']:.2f} | {runs} | "
                     f"{'yes' if r['ok'] else 'NO'} |")
    return "\n".join(lines)


# -- profiling --------------------------------------------------------------------------------
def profile_hostout(fleet: Fleet, tool: Tool) -> str:
    """cProfile of one bin/hostout run: where its own time goes, against the stack's."""
    out = fleet.work / f"hostout-{len(fleet.hosts)}.prof"
    argv = [str(PROJECT_PYTHON), "-m", "cProfile", "-o", str(out), *tool.argv]
    subprocess.run(argv, cwd=tool.cwd, capture_output=True, check=False, timeout=TIMEOUT)
    text = fleet.work / f"hostout-{len(fleet.hosts)}.prof.txt"
    with text.open("w") as fh:
        stats = pstats.Stats(str(out), stream=fh)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
    return str(text)


#: Where a sampled stack spends its time, by the outermost matching frame's file: first match.
PYSPY_BUCKETS = (
    ("imports", ("<frozen importlib._bootstrap>",)),
    ("ssh key exchange", ("paramiko/kex_", "transport.py:Transport._negotiate_keys",
                          "transport.py:Transport._parse_kex_init",
                          "transport.py:Transport._activate_")),
    ("ssh auth", ("paramiko/auth_handler.py",)),
    ("paramiko packets", ("paramiko/packet.py",)),
    ("paramiko other", ("paramiko/",)),
    ("invoke/fabric runner", ("invoke/runners.py", "fabric/runners.py")),
    ("fabric other", ("fabric/", "invoke/")),
    ("hostout", ("collective/hostout/",)),
)


def pyspy(fleet: Fleet, tool: Tool) -> list[str]:
    """Sample every thread of one run with py-spy; CPU samples by where they are spent."""
    raw = fleet.work / f"pyspy-{tool.name}-{len(fleet.hosts)}.txt"
    argv = [str(BENCH_VENV / "bin" / "py-spy"), "record", "--gil", "--rate", "250",
            "--format", "raw", "--output", str(raw), "--", *tool.argv]
    env = {**os.environ, **tool.env, **(tool.fresh(99) if tool.fresh else {})}
    subprocess.run(argv, cwd=tool.cwd, env=env, capture_output=True, check=False,
                   timeout=TIMEOUT)
    totals: dict[str, int] = {}
    leaves: dict[str, int] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = []  # "file:function", e.g. "paramiko/transport.py:Transport.run"
        for frame in stack.split(";"):
            func, _, loc = frame.partition(" (")
            frames.append(f"{loc.rstrip(')').rpartition(':')[0]}:{func}")
        where = next((bucket for bucket, marks in PYSPY_BUCKETS
                      if any(m in f for f in frames for m in marks)), "other")
        totals[where] = totals.get(where, 0) + int(count)
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + int(count)
    samples = sum(totals.values()) or 1
    lines = [f"py-spy {tool.name} n={len(fleet.hosts)}: {samples} samples of the GIL holder "
             f"({samples / 250:.2f} s CPU-ish)"]
    lines += [f"  {100 * c / samples:5.1f}%  {b}" for b, c in
              sorted(totals.items(), key=lambda kv: -kv[1])]
    lines += ["  top frames (self):"] + [f"  {100 * c / samples:5.1f}%  {leaf}" for leaf, c in
                                          sorted(leaves.items(), key=lambda kv: -kv[1])[:12]]
    return lines


# -- main -------------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))

    def version(python: Path, dist: str) -> str:
        code = f"import importlib.metadata as m; print(m.version({dist!r}))"
        proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
        return proc.stdout.strip() or "?"

    bench_py = BENCH_VENV / "bin" / "python"
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores", "memory": f"{int(mem) // 1024 // 1024} GiB",
        "kernel": platform.release(), "python": platform.python_version(),
        "paramiko": version(PROJECT_PYTHON, "paramiko"),
        "fabric": version(PROJECT_PYTHON, "fabric"),
        "pyinfra": version(bench_py, "pyinfra"), "ansible-core": version(bench_py, "ansible-core"),
        "openssh": subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--hosts", type=int, nargs="+", default=[10, 25],
                        help="fleet sizes (default: 10 25)")
    parser.add_argument("-r", "--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="+", help="only these tools")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile one bin/hostout run per fleet size")
    parser.add_argument("--py-spy", action="store_true",
                        help="also sample one hostout and one Fabric group run with py-spy")
    parser.add_argument("--work", type=Path, help="keep files here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)

    ensure_bench_venv()
    ensure_bench_image()
    # What pip install does for hostout, pyinfra and ansible alike: byte-compile the sources
    # (an editable checkout under PYTHONDONTWRITEBYTECODE=1 would recompile every start).
    subprocess.run([str(PROJECT_PYTHON), "-m", "compileall", "-q", str(REPO / "src")],
                   check=True)
    testing.cleanup_stale()
    work = args.work or Path(tempfile.mkdtemp(prefix="hostout-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    facts = machine()
    print("bench: " + "; ".join(f"{k} {v}" for k, v in facts.items()), flush=True)
    rows: list[dict[str, object]] = []
    profiles: list[str] = []
    samples: list[str] = []
    for n in args.hosts:
        fleet = start_fleet(n, work)
        try:
            tools = [t for t in all_tools(fleet) if not args.only or t.name in args.only
                     or t.name == "fabric-group"]
            rows.extend(report(n, bench(fleet, tools, args.repeat)))
            if args.profile:
                profiles.append(profile_hostout(fleet, tools[0]))
            if args.py_spy:
                for tool in tools[:1] + [t for t in tools if t.name == "fabric-group"]:
                    samples.extend(pyspy(fleet, tool))
        finally:
            fleet.remove()
    print()
    print(f"{datetime.date.today()} - many hosts, `{COMMAND}`, median of {args.repeat}")
    print(markdown(rows))
    for path in profiles:
        print(f"profile: {path}")
    print("\n".join(samples))
    print(f"logs: {work / 'logs'}")
    if args.json:
        args.json.write_text(json.dumps({"date": str(datetime.date.today()), "machine": facts,
                                         "command": COMMAND, "rows": rows}, indent=2) + "\n")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
