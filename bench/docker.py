"""Image build timings of examples/appdb (two host parts, two images), against Podman's
Docker-compatible service, in one run:

- the anchor: both images built from a bare Debian base image, every layer made;
- an unchanged rebuild (every layer reused);
- a code-change rebuild (the develop package changed: upload and build layers only);
- a failed build (a broken part) and its rerun, which goes on from the last good layer,
  against what a build that cannot resume (a Dockerfile's single RUN of buildout, or this
  one from scratch) would redo: the anchor.

    .venv/bin/python bench/docker.py [--repeat 3]

Prints a Markdown table for bench/README.md: wall seconds, layers built, and each run as a
ratio of the anchor. The base image is this run's own (the bare base image plus a label), so
no layer of an earlier run is reused; the run's images are removed at the end.
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
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from buildouts import appdb_for, buildout, env, write  # noqa: E402
from collective.hostout import testing  # noqa: E402

RUN = uuid.uuid4().hex[:8]
NAMES = f"hostout-bench-{RUN}"


def hostout(directory: Path, *args: str, ok: bool = True) -> tuple[float, int]:
    """Wall seconds of one bin/hostout run, and how many layers it ran (built, or failed)."""
    started = time.monotonic()
    proc = subprocess.run([str(directory / "bin" / "hostout"), *args], cwd=directory,
                          env=env(), text=True, capture_output=True, stdin=subprocess.DEVNULL,
                          check=False)
    wall = time.monotonic() - started
    if (proc.returncode == 0) != ok:
        sys.exit(f"bin/hostout {' '.join(args)} exited {proc.returncode}:\n"
                 f"{proc.stdout[-3000:]}\n{proc.stderr}")
    built = sum(int(n) for n in re.findall(r"(\d) of 7 layers built", proc.stdout))
    failed = re.search(r"Error: \w+: (\w+) failed building", proc.stderr)
    if failed:  # the layers it ran: those it was to build, up to the one that failed
        planned = re.search(r"building ([\w, ]+)$", proc.stdout, re.M)
        steps = planned[1].split(", ") if planned else []
        built = steps.index(failed[1]) + 1 if failed[1] in steps else 0
    return wall, built


def remove_images(before: set[str]) -> None:
    listing = testing.podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    mine = [ref for ref in listing if f"{NAMES}/" in ref]
    if mine:
        testing.podman("rmi", "--force", *mine, check=False)
    for _ in range(4):
        made = [i for i in testing.podman("images", "--all", "--quiet", "--no-trunc", "--filter",
                                          "label=io.hostout.layer").stdout.split()
                if i not in before]
        if not made:
            return
        for image in made:
            testing.podman("rmi", image, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the unchanged and code-change rebuilds (median)")
    args = parser.parse_args()
    testing.ensure_base_image()
    before = set(testing.podman("images", "--all", "--quiet", "--no-trunc", "--filter",
                                "label=io.hostout.layer").stdout.split())
    base = f"localhost/{NAMES}/base:bookworm"
    rows: list[tuple[str, list[float], int]] = []
    try:
        with testing.podman_service(image=testing.BASE_IMAGE) as address, \
                TemporaryDirectory() as tmp:
            os.environ["DOCKER_HOST"] = address
            testing.podman("build", "--quiet", "--tag", base, "--file", "-", tmp,
                           input=f"FROM {testing.BASE_IMAGE}\nLABEL io.hostout.bench={RUN}\n")
            d = appdb_for(Path(tmp), base_image=base, names=NAMES,
                          app_port=testing.unused_port())
            wall, built = hostout(d, "app", "db", "docker")
            rows.append(("anchor: both images from a bare base image", [wall], built))
            unchanged, changed = [], []
            app = d / "src/kvdemo/src/kvdemo/app.py"
            for i in range(args.repeat):
                unchanged.append(hostout(d, "app", "db", "docker"))
                app.write_text(app.read_text() + f"\n# change {i}\n")
                changed.append(hostout(d, "app", "db", "docker"))
            rows.append(("unchanged rebuild", [w for w, _ in unchanged], unchanged[-1][1]))
            rows.append(("code-change rebuild (develop package)", [w for w, _ in changed],
                         changed[-1][1]))
            cfg = d / "base.cfg"
            cfg.write_text(cfg.read_text() + "\n[broken]\nrecipe = zc.recipe.egg\n"
                           "eggs = kvdemo-nosuch\n")
            write(d, "broken.cfg", "[buildout]\nextends = test.cfg\n"
                  "[app]\nparts = kvapp kvapp-ini broken\n")
            buildout(d, "-c", "broken.cfg")
            failed = hostout(d, "app", "docker", ok=False)
            rows.append(("a broken part: the failing build (app)", [failed[0]], failed[1]))
            again = [hostout(d, "app", "docker", ok=False) for _ in range(args.repeat)]
            rows.append(("its rerun, from the last good layer (app)", [w for w, _ in again],
                         again[-1][1]))
    finally:
        remove_images(before)
        testing.podman("rmi", "--force", base, check=False)
    anchor = rows[0][1][0]
    print(f"# docker bench, {time.strftime('%Y-%m-%d')}, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, podman "
          f"{testing.podman('--version').stdout.split()[-1]}, median of {args.repeat} "
          "(anchor and failing build: 1 run)\n")
    print("| run | wall s | layers run | x anchor | runs (s) |\n|---|---|---|---|---|")
    for name, walls, built in rows:
        median = statistics.median(walls)
        runs = " / ".join(f"{w:.1f}" for w in walls)
        print(f"| {name} | {median:.1f} | {built} | {median / anchor:.2f} | {runs} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
