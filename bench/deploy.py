"""Deploy timings of examples/hellowsgi on one fresh bare host, step by step.

    .venv/bin/python bench/deploy.py [--repeat 3]
    .venv/bin/python bench/deploy.py --fleet 10

Measures, in one run on one host: the first deploy (bare Debian, no python), an unchanged
redeploy and a code-change redeploy, each split into hostout's steps (from the --json events),
side by side with two floors measured on the same host in the same run: one SSH command
(connect, authenticate, run `true`) and a no-op remote `bin/buildout -N` on its own. Ratios
are to those floors. Prints a Markdown table for bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from buildouts import env, example_for  # noqa: E402
from collective.hostout import testing  # noqa: E402  (the throwaway podman hosts)

# deploy's steps as top-level commands, so each is timed (postdeploy, an empty hook, is left
# out: buildout takes arguments, so it must come last on the command line)
FIRST = ["bootstrap_users", "bootstrap_python", "bootstrap_buildout", "uploadeggs",
         "uploadbuildout", "buildout"]
AGAIN = ["predeploy", "uploadeggs", "uploadbuildout", "buildout"]
ORDER = [*FIRST, *AGAIN, "deploy"]


def hostout(directory: Path, *args: str) -> tuple[float, dict[str, float]]:
    """Wall seconds of one bin/hostout run, and seconds per top-level command."""
    started = time.monotonic()
    proc = subprocess.run([str(directory / "bin" / "hostout"), "--json", "host1", *args],
                          cwd=directory, env=env(), text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, check=False)
    wall = time.monotonic() - started
    if proc.returncode:
        sys.exit(f"bin/hostout {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr}")
    begun: dict[str, float] = {}
    steps: dict[str, float] = {}
    for line in proc.stdout.splitlines():
        event = json.loads(line)
        if event["event"] == "start":
            begun[event["command"]] = event["time"]
        elif event["event"] == "end":
            steps[event["command"]] = event["time"] - begun[event["command"]]
    return wall, steps


def floor_ssh(host: testing.TestHost, directory: Path) -> float:
    """One Fabric connection and `true`: what any remote command costs at least."""
    import fabric

    started = time.monotonic()
    with fabric.Connection(host.address, user=host.user, port=host.port,
                           connect_kwargs={"password": host.password,
                                           "look_for_keys": False,
                                           "allow_agent": False}) as conn:
        conn.client.load_host_keys(str(directory / "known_hosts"))
        conn.run("true", hide=True)
    return time.monotonic() - started


def floor_buildout(host: testing.TestHost) -> float:
    """The server's own no-op build, run directly: the floor of any redeploy."""
    cmd = ("cd /var/buildout/demo && PIP_NO_BUILD_ISOLATION=0 bin/buildout -c hostout.cfg -N "
           ">/dev/null")
    started = time.monotonic()
    res = host.exec(f"su buildout -c {cmd!r}")
    if res.returncode:
        sys.exit(f"remote buildout failed: {res.stderr}")
    return time.monotonic() - started


def timed(directory: Path, *args: str) -> float:
    started = time.monotonic()
    proc = subprocess.run([str(directory / "bin" / "hostout"), "-q", *args], cwd=directory,
                          env=env(), text=True, capture_output=True, stdin=subprocess.DEVNULL,
                          check=False)
    if proc.returncode:
        sys.exit(f"bin/hostout {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr}")
    return time.monotonic() - started


def fleet(n: int) -> int:
    """Issue 4, item 5: the example deployed to n fresh bare hosts at once, against one."""
    machines = testing.start_hosts(n + 1, "hostout-bench")
    try:
        with TemporaryDirectory() as tmp:
            one = example_for(Path(tmp) / "one", host=machines[0].hoststring,
                              password=machines[0].password)
            many = example_for(Path(tmp) / "many", host=machines[1].hoststring,
                               password=machines[1].password)
            names = [f"h{i:02d}" for i in range(1, n + 1)]
            (many / "fleet.cfg").write_text(
                "[buildout]\nextends = deploy.cfg\nparts = demo pasterini "
                + " ".join(names) + "\n"
                + "".join(f"[{name}]\n<= host1\nhost = {m.hoststring}\n"
                          for name, m in zip(names, machines[1:], strict=True)))
            subprocess.run([str(REPO / ".venv" / "bin" / "buildout"), "-N", "-c", "fleet.cfg"],
                           cwd=many, env=env(), check=True, capture_output=True)
            rows = [("first deploy", timed(one, "host1", "deploy"),
                     timed(many, "all", "deploy")),
                    ("unchanged redeploy", timed(one, "host1", "deploy"),
                     timed(many, "all", "deploy"))]
    finally:
        for m in machines:
            m.remove()
    print(f"# deploy to {n} bare hosts at once against one, {time.strftime('%Y-%m-%d')}, "
          f"{os.cpu_count()} cores\n")
    print(f"| run | 1 host s | {n} hosts s | ratio |\n|---|---|---|---|")
    for name, single, all_hosts in rows:
        print(f"| {name} | {single:.1f} | {all_hosts:.1f} | {all_hosts / single:.2f} |")
    return 0


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fleet", type=int, metavar="N",
                        help="instead: deploy to N fresh hosts at once against one")
    args = parser.parse_args()
    testing.ensure_image()
    if args.fleet:
        return fleet(args.fleet)
    host = testing.start_host("hostout-bench", publish=(8080,))
    rows: list[tuple[str, float, dict[str, float]]] = []
    try:
        with TemporaryDirectory() as tmp:
            d = example_for(Path(tmp), host=host.hoststring, password=host.password)
            wall, steps = hostout(d, *FIRST)
            rows.append(("first deploy (bare host)", wall, steps))
            floors: dict[str, list[float]] = defaultdict(list)
            runs: dict[str, list[tuple[float, dict[str, float]]]] = defaultdict(list)
            init = d / "src/hellowsgi/src/hellowsgi/__init__.py"
            for i in range(args.repeat):
                floors["ssh"].append(floor_ssh(host, d))
                floors["buildout"].append(floor_buildout(host))
                runs["unchanged redeploy, step by step"].append(hostout(d, *AGAIN))
                # `deploy` itself: with nothing changed it skips the build and the restarts
                runs["unchanged `deploy`"].append(hostout(d, "deploy"))
                init.write_text(init.read_text() + f"\n# change {i}\n")
                runs["code-change redeploy, step by step"].append(hostout(d, *AGAIN))
            for name, results in runs.items():
                steps = sorted({s for r in results for s in r[1]}, key=ORDER.index)
                per_step = {s: median([r[1].get(s, 0.0) for r in results]) for s in steps}
                rows.append((name, median([r[0] for r in results]), per_step))
    finally:
        host.remove()
    ssh, build = median(floors["ssh"]), median(floors["buildout"])
    print(f"# deploy bench, {time.strftime('%Y-%m-%d')}, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, "
          f"median of {args.repeat} (first deploy: 1 run)\n")
    print(f"floors: one SSH command {ssh:.2f} s; no-op remote bin/buildout -N {build:.2f} s\n")
    names = sorted({s for _, _, steps in rows for s in steps}, key=ORDER.index)
    print("| run | wall s | x ssh | x remote build | " + " | ".join(names) + " |")
    print("|---|---|---|---|" + "---|" * len(names))
    for name, wall, steps in rows:
        cells = " | ".join(f"{steps[s]:.2f}" if s in steps else "" for s in names)
        print(f"| {name} | {wall:.2f} | {wall / ssh:.1f} | {wall / build:.1f} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
