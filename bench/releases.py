"""Downtime of a code-change deploy with releases against the in-place layout, and rollback
against a redeploy of the previous version, in one run (issue 10, item 9).

    .venv/bin/python bench/releases.py [--repeat 3]

Two fresh bare hosts get examples/hellowsgi (supervisord running paster; pre-commands stop
it, post-commands start it; health check on http://127.0.0.1:8080/): one deployed in place
(``releases = false``), one with releases. Then, in rotating order, the same code change is
deployed to each while the app is polled every 50 ms from here: failed requests, and the
longest time without a successful answer. On the release host, ``rollback`` is timed
against deploying the previous version again (which builds it anew). Prints Markdown for
bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from buildouts import env, example_for  # noqa: E402
from collective.hostout import testing  # noqa: E402

INIT = "src/hellowsgi/src/hellowsgi/__init__.py"


def hostout(directory: Path, *args: str) -> float:
    started = time.monotonic()
    proc = subprocess.run([str(directory / "bin" / "hostout"), "-q", "host1", *args],
                          cwd=directory, env=env(), text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, check=False)
    if proc.returncode:
        sys.exit(f"bin/hostout {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr}")
    return time.monotonic() - started


def set_answer(directory: Path, text: str) -> None:
    init = directory / INIT
    init.write_text(re.sub(r'Response\("[^"]*"\)', f'Response("{text}")', init.read_text()))


def wait_answering(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{url} does not answer")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    testing.ensure_image()
    hosts = testing.start_hosts(2, "hostout-bench", publish=(8080,))
    runs: dict[str, list[tuple[float, int, float]]] = {"in place": [], "releases": []}
    rollback: list[float] = []
    redeploy: list[float] = []
    unchanged: dict[str, list[float]] = {"in place": [], "releases": []}
    try:
        with TemporaryDirectory() as tmp:
            dirs = {}
            for (name, flag), host in zip((("in place", "false"), ("releases", "true")), hosts,
                                          strict=True):
                dirs[name] = example_for(Path(tmp) / name.replace(" ", "-"),
                                         host=host.hoststring, password=host.password,
                                         releases=flag,
                                         healthcheck="http://127.0.0.1:8080/")
                hostout(dirs[name], "deploy")
                wait_answering(host.url(8080))
            urls = {name: host.url(8080) for name, host in zip(dirs, hosts, strict=True)}
            for i in range(args.repeat):
                order = list(dirs) if i % 2 == 0 else list(reversed(dirs))
                for name in order:
                    set_answer(dirs[name], f"version {i + 1}")
                    with testing.Poller(urls[name], timeout=1) as poll:
                        wall = hostout(dirs[name], "deploy")
                    runs[name].append((wall, poll.failures, poll.longest))
                    wait_answering(urls[name])
                    unchanged[name].append(hostout(dirs[name], "deploy"))
                # on the release host: back to the previous version, two ways
                rel = dirs["releases"]
                rollback.append(hostout(rel, "rollback"))
                current = subprocess.run(
                    [str(rel / "bin" / "hostout"), "host1", "releases", "--json"], cwd=rel,
                    env=env(), text=True, capture_output=True, check=True).stdout
                newest = [line for line in current.splitlines() if line.strip()][-1]
                newest_id = re.search(r'"id": "([^"]+)"', newest).group(1)  # type: ignore[union-attr]
                hostout(rel, "rollback", newest_id)  # forward again (not timed)
                set_answer(rel, f"version {i}" if i else "Powered by collective.hostout!")
                redeploy.append(hostout(rel, "deploy"))  # the previous version, built anew
                set_answer(rel, f"version {i + 1}")
                hostout(rel, "deploy")  # and the current one again (not timed)
    finally:
        for host in hosts:
            host.remove()
    print(f"# releases bench, {time.strftime('%Y-%m-%d')}, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, "
          f"median of {args.repeat}\n")
    print("| code-change deploy | wall s | failed requests (50 ms polls) | longest gap s | "
          "runs (wall / failed / gap) |")
    print("|---|---|---|---|---|")
    for name, results in runs.items():
        cells = " ; ".join(f"{w:.1f} / {f} / {g:.2f}" for w, f, g in results)
        print(f"| {name} | {median([r[0] for r in results]):.1f} | "
              f"{median([r[1] for r in results]):.0f} | {median([r[2] for r in results]):.2f} | "
              f"{cells} |")
    gap = {name: median([r[2] for r in results]) for name, results in runs.items()}
    failed = {name: median([r[1] for r in results]) for name, results in runs.items()}
    print(f"\nlongest gap, releases / in place: {gap['releases'] / gap['in place']:.2f}; "
          f"failed requests, releases / in place: "
          f"{failed['releases'] / max(failed['in place'], 1):.2f}")
    print("\n| unchanged deploy (bin/hostout wall) | median s | runs |\n|---|---|---|")
    for name, times in unchanged.items():
        print(f"| {name} | {median(times):.2f} | {' / '.join(f'{t:.2f}' for t in times)} |")
    print(f"\n| back to the previous version | median s | runs |\n|---|---|---|\n"
          f"| rollback | {median(rollback):.1f} | {' / '.join(f'{t:.1f}' for t in rollback)} |\n"
          f"| redeploy of the previous version | {median(redeploy):.1f} | "
          f"{' / '.join(f'{t:.1f}' for t in redeploy)} |")
    print(f"\nrollback / redeploy: {median(rollback) / median(redeploy):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
