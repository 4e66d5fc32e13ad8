"""The main job: deploy examples/hellowsgi to a throwaway bare Debian host and show it works.

    bash scripts/demo.sh            # set up, start a host, deploy, print the URL
    bash scripts/demo.sh --remove   # remove the demo host

The host is a podman container of a bare server (sshd, sudo, no python); it keeps running
after the demo so you can visit the URL, redeploy, or try other commands:
    cd .demo/hellowsgi && bin/hostout host1 run bin/supervisorctl status
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import hosts  # noqa: E402
from buildouts import example_for, fetch  # noqa: E402

WORK = REPO / ".demo"
PREFIX = "hostout-demo"


def remove_demo_hosts() -> None:
    listing = hosts.podman("ps", "-a", "--filter", f"name=^{PREFIX}-", "--format", "{{.Names}}")
    names = listing.stdout.split()
    if names:
        hosts.podman("rm", "--force", "--time", "0", *names)
    if names:
        print(f"removed {' '.join(names)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--remove", action="store_true", help="remove the demo host and stop")
    args = parser.parse_args()
    remove_demo_hosts()
    if args.remove:
        return 0
    hosts.ensure_image()
    print("starting a bare Debian host (sshd, sudo, no python)...")
    host = hosts.start_host(PREFIX, publish=(8080,), keep=True)
    print(f"host {host.name}: ssh on {host.hoststring}, app port 8080 on "
          f"127.0.0.1:{host.ports[8080]}")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir()
    directory = example_for(WORK, host=host.hoststring, password=host.password)
    print(f"built the example's buildout in {directory}; running bin/hostout host1 deploy")
    started = time.monotonic()
    proc = subprocess.run([str(directory / "bin" / "hostout"), "host1", "deploy"],
                          cwd=directory, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode:
        print(f"deploy failed (exit {proc.returncode})", file=sys.stderr)
        return proc.returncode
    url = host.url(8080)
    answer = fetch(url)
    print(f"\ndeployed in {time.monotonic() - started:.0f} s: {url} answers {answer!r}")
    print(f"try: cd {directory} && bin/hostout host1 run bin/supervisorctl status")
    print("remove the host with: bash scripts/demo.sh --remove")
    return 0 if answer == "Powered by collective.hostout!" else 1


if __name__ == "__main__":
    sys.exit(main())
