"""A Plone-sized buildout (Pyramid plus a large set of packages: 150+ eggs, from the registry
pip is configured with) deployed to a fresh bare host, against the server doing it itself.

    .venv/bin/python bench/big_buildout.py [--eggs bench/big_eggs.txt] [--keep DIR]

In one run, on two fresh bare hosts (Debian 12, no Python) of the same image:

- host A, hostout: the first `bin/hostout host1 deploy` (with the login user's password);
  then, as users go on, with no password kept (the buildout user logs in with the key
  bootstrap made): an unchanged `deploy` (median of 3); a code-change `deploy` (one line of
  the develop package changed);
- host B, the anchor, what a person does on the server by hand: install Python with apt
  (the packages hostout's bootstrap installs), make a venv with zc.buildout at the same
  versions, `pip download` every pinned distribution, `bin/buildout` from that cache; then the
  same one-line change made there by hand and `bin/buildout -N`.

Ratios: first deploy / anchor's whole first build, code change / anchor's rebuild after
the change. Aims (issue 8): first deploy within 1.3x, code change within 1.2x, unchanged
under 1 s. Prints a Markdown table for bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from buildouts import BUILDOUT, env, write  # noqa: E402
from collective.hostout import testing  # noqa: E402
from collective.hostout.packaging import versions  # noqa: E402
from collective.hostout.server import system  # noqa: E402

APP = "src/benchapp/src/benchapp/__init__.py"


def make_buildout(directory: Path, eggs: list[str], host: testing.TestHost) -> None:
    write(directory, "src/benchapp/pyproject.toml", """
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "benchapp"
        version = "1.0"
        dependencies = ["pyramid"]
        [project.scripts]
        benchapp = "benchapp:main"
    """)
    write(directory, APP, """
        def main():
            print("benchapp 0")
    """)
    egg_lines = "".join(f"    {egg}\n" for egg in ["benchapp", *eggs])
    (directory / "base.cfg").write_text(
        "[buildout]\ndevelop = src/benchapp\nparts = app\nnewest = false\n"
        f"[app]\nrecipe = zc.recipe.egg\neggs =\n{egg_lines}"
        # buildout does not backtrack: botocore needs python-dateutil<3, arrow takes any;
        # soupsieve 4.1 requires Python >= 3.11.5, Debian 12 has 3.11.2
        "[versions]\npython-dateutil = 2.9.0.post0\nsoupsieve = 2.7\n")
    (directory / "ssh_config").touch()
    write(directory, "buildout.cfg", f"""
        [buildout]
        extends = base.cfg
        download-cache = {directory / "cache"}
        parts += host1
        [host1]
        recipe = collective.hostout
        host = {host.hoststring}
        user = {host.user}
        password = {host.password}
        path = /var/buildout/big
        buildout = base.cfg
        buildout-group = big
        known-hosts = {directory / "known_hosts"}
        ssh-config = {directory / "ssh_config"}
    """)


def timed(argv: list[str], cwd: Path) -> float:
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=env(), text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, check=False)
    seconds = time.monotonic() - started
    if proc.returncode:
        sys.exit(f"{' '.join(argv)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return seconds


def host_run(host: testing.TestHost, script: str, input: str | None = None) -> float:
    """Run ``script`` as root in the host (as ``host.exec``, without its 5 min timeout)."""
    from collective.hostout.testing.podman import podman

    args = ["exec", *(["--interactive"] if input is not None else []), "--user", "root",
            host.container, "bash", "-c", script]
    started = time.monotonic()
    res = podman(*args, check=False, input=input, timeout=3600)
    seconds = time.monotonic() - started
    if res.returncode:
        sys.exit(f"on the anchor host: {script[:200]} failed:\n{res.stdout[-3000:]}\n"
                 f"{res.stderr[-3000:]}")
    return seconds


def tarball(directory: Path, names: list[str]) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in names:
            tar.add(directory / name, arcname=name)
    return base64.b64encode(buf.getvalue()).decode()


def anchor(host: testing.TestHost, directory: Path, pins: dict[str, str]) -> dict[str, float]:
    """What a person does on a bare server by hand for the same build, phase by phase."""
    release = system.OsRelease.parse(host.exec("cat /etc/os-release").stdout)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    apt = " && ".join(c.script for c in system.install_python(release, python))
    boot = {n: pins[n] for n in ("zc.buildout", "setuptools", "pip", "wheel") if n in pins}
    others = {n: v for n, v in pins.items() if n not in boot}
    where = "/srv/anchor"
    got: dict[str, float] = {}
    got["python (apt)"] = host_run(host, apt)
    got["venv + zc.buildout"] = host_run(host, (
        f"python{python} -m venv {where} && {where}/bin/pip install -q "
        + " ".join(shlex.quote(f"{n}=={v}") for n, v in boot.items())))
    host_run(host, f"mkdir -p {where} && cd {where} && base64 -d | tar -xz",
             input=tarball(directory, ["base.cfg", "src/benchapp"]))
    pinned = "[versions]\n" + "".join(f"{n} = {v}\n" for n, v in sorted(pins.items()))
    host_run(host, f"cat > {where}/anchor.cfg",
             input=f"[buildout]\nextends = base.cfg\ndownload-cache = cache\n"
                   f"install-from-cache = true\n{pinned}")
    got["pip download"] = host_run(host, (
        f"cd {where} && bin/pip download -q --no-deps -d cache/dist "
        + " ".join(shlex.quote(f"{n}=={v}") for n, v in sorted(others.items()))))
    build = f"cd {where} && PIP_NO_BUILD_ISOLATION=0 bin/buildout -c anchor.cfg"
    got["bin/buildout"] = host_run(host, build + " >/dev/null")
    host_run(host, f"cd {where} && sed -i 's/benchapp 0/benchapp 1/' {APP}")
    got["change + bin/buildout -N"] = host_run(host, build + " -N >/dev/null")
    return got


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eggs", type=Path, default=REPO / "bench" / "big_eggs.txt")
    parser.add_argument("--keep", type=Path, help="build the buildout in DIR and keep it")
    args = parser.parse_args()
    eggs = [ln.strip() for ln in args.eggs.read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]
    testing.ensure_image()
    hosts = testing.start_hosts(2, "hostout-bench")
    a, b = hosts
    try:
        with TemporaryDirectory() as tmp:
            d = args.keep or Path(tmp)
            d.mkdir(parents=True, exist_ok=True)
            make_buildout(d, eggs, a)
            local = timed([str(BUILDOUT), "-N"], d)
            pins = versions.read(d / "hostoutversions.cfg")
            n_eggs = len(list((d / "eggs" / "v5").glob("*.egg")))
            hostout = [str(d / "bin" / "hostout"), "-q", "host1", "deploy"]
            first = timed(hostout, d)
            # as users go on: the buildout user logs in with the key bootstrap made, and no
            # password is kept (with one, every deploy also re-chowns the whole buildout)
            cfg = d / "buildout.cfg"
            cfg.write_text(cfg.read_text().replace(f"password = {a.password}\n", ""))
            timed([str(BUILDOUT), "-N"], d)
            unchanged = statistics.median(timed(hostout, d) for _ in range(3))
            app = d / APP
            app.write_text(app.read_text().replace("benchapp 0", "benchapp 1"))
            change = timed(hostout, d)
            served = a.exec("/var/buildout/big/bin/benchapp").stdout.strip()
            if served != "benchapp 1":
                sys.exit(f"the code change did not reach the server: {served!r}")
            print(f"hostout: first {first:.1f} s, unchanged {unchanged:.2f} s, code change "
                  f"{change:.1f} s", file=sys.stderr)
            # by hand, the same versions the server built (the server's Python may need
            # more than this one's: async-timeout for redis on 3.11.2)
            server_pins = versions.read(d / "parts" / "hostout" / "host1" / "pinned.cfg")
            server_pins.pop("benchapp", None)  # a develop package there
            by_hand = anchor(b, d, server_pins)
    finally:
        for h in hosts:
            h.remove()
    anchor_first = sum(v for k, v in by_hand.items() if not k.startswith("change"))
    anchor_change = by_hand["change + bin/buildout -N"]
    print(f"### {time.strftime('%Y-%m-%d')}, {len(pins)} pinned distributions ({n_eggs} eggs "
          f"in the local build), {platform.node()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; machine SHARED (other work running): rerun quiet\n")
    print(f"local `bin/buildout` (not compared): {local:.1f} s; the anchor by phase: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in by_hand.items()) + "\n")
    print("| run | hostout s | by hand on the server s | ratio | aim |\n|---|---|---|---|---|")
    print(f"| first deploy (bare host) | {first:.1f} | {anchor_first:.1f} | "
          f"{first / anchor_first:.2f} | 1.3 |")
    print(f"| code-change redeploy | {change:.1f} | {anchor_change:.1f} | "
          f"{change / anchor_change:.2f} | 1.2 |")
    print(f"| unchanged redeploy | {unchanged:.2f} | | | < 1 s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
