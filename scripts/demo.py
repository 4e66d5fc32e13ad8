"""The main job: deploy examples/hellowsgi to a throwaway bare Debian host and show it works.

    bash scripts/demo.sh            # set up, start a host, deploy, print the URL
    bash scripts/demo.sh --remove   # remove the demo host

It does what a user does to try a deploy before production (README, "Try it on a throwaway
host"): in a copy of the example, `hostout-testhost start --like host1 --publish 8080`, then
`buildout -c testhost.cfg` and `bin/hostout testhost deploy`. The host keeps running after
the demo so you can visit the URL, redeploy, or try other commands:
    cd .demo/hellowsgi && bin/hostout testhost status
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from collective.hostout.testing import fetch

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "hellowsgi"
WORK = REPO / ".demo"
DIRECTORY = WORK / "hellowsgi"
BIN = Path(sys.executable).parent  # the venv's: buildout, hostout-testhost
NAME = "testhost"
ANSWER = "Powered by collective.hostout!"


def step(*cmd: str | Path, cwd: Path = DIRECTORY) -> subprocess.CompletedProcess[str]:
    """Run a command as a user would, its output shown; a failure ends the demo."""
    print(f"\n$ {' '.join(str(c) for c in cmd)}", flush=True)
    # develop eggs are built with the venv's setuptools, offline-safe (buildout6.md)
    env = {**os.environ, "PIP_NO_BUILD_ISOLATION": "0"}
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          text=True, check=False)
    if proc.returncode:
        sys.exit(f"demo: {cmd[0]} failed (exit {proc.returncode})")
    return proc


def testhost(*args: str) -> list[str]:
    return [str(BIN / "hostout-testhost"), *args, "-c", str(DIRECTORY / "buildout.cfg")]


def remove() -> int:
    listing = subprocess.run([str(BIN / "hostout-testhost"), "list", "--json"], text=True,
                             capture_output=True, check=True)
    if any(h["name"] == NAME and Path(h["directory"]) == DIRECTORY
           for h in json.loads(listing.stdout)):
        return subprocess.run(testhost("remove", NAME), check=False).returncode
    print("no demo host")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--remove", action="store_true", help="remove the demo host and stop")
    if parser.parse_args().remove:
        return remove()

    shutil.rmtree(WORK, ignore_errors=True)
    shutil.copytree(EXAMPLE, DIRECTORY, ignore=shutil.ignore_patterns(
        "bin", "parts", "eggs", "develop-eggs", ".installed.cfg", "*.egg-info", "*_key*",
        "hostoutversions.cfg", "known_hosts", "__pycache__", ".hostout-testhost", "*.cfg.tmp"))
    print(f"copied the example to {DIRECTORY}")
    step(*testhost("start", NAME, "--like", "host1", "--publish", "8080", "--replace"))
    started = time.monotonic()
    step(BIN / "buildout", "-N", "-c", f"{NAME}.cfg")
    step("bin/hostout", NAME, "deploy")
    listing = subprocess.run([str(BIN / "hostout-testhost"), "list", "--json"], text=True,
                             capture_output=True, check=True)
    (host,) = [h for h in json.loads(listing.stdout)
               if h["name"] == NAME and Path(h["directory"]) == DIRECTORY]
    url = f"http://{host['ports']['8080']}/"
    answer = fetch(url)
    print(f"\nbuilt and deployed in {time.monotonic() - started:.0f} s: {url} answers {answer!r}")
    here = Path.cwd()
    shown = DIRECTORY.relative_to(here) if DIRECTORY.is_relative_to(here) else DIRECTORY
    print(f"try: cd {shown} && bin/hostout {NAME} status   (or restart, tail demo)")
    print("remove the host with: bash scripts/demo.sh --remove")
    return 0 if answer == ANSWER else 1


if __name__ == "__main__":
    sys.exit(main())
