"""Real buildouts for tests: write cfg files, run the venv's bin/buildout, run bin/hostout."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from collective.hostout.testing import fetch as fetch  # tests take it from here too

HERE = Path(__file__).parent
PLUGIN = HERE / "data" / "myplugin"
BUILDOUT = Path(sys.executable).parent / "buildout"


def env() -> dict[str, str]:
    e = dict(os.environ)
    # Build develop eggs with the venv's setuptools, not a downloaded one (buildout6.md).
    e["PIP_NO_BUILD_ISOLATION"] = "0"
    return e


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def buildout(directory: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BUILDOUT), "-N", *args], cwd=directory, env=env(), text=True,
                          capture_output=True, timeout=300)
    if check and proc.returncode:
        raise AssertionError(f"bin/buildout failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def hostout(directory: Path, *args: str, timeout: float = 600,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    """bin/hostout as a user runs it: its own process, no terminal."""
    return subprocess.run([str(directory / "bin" / "hostout"), *args], cwd=directory,
                          env=env(), text=True, capture_output=True, timeout=timeout,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL)


EXAMPLE = HERE.parent / "examples" / "hellowsgi"


def example_for(workdir: Path, *, host: str, password: str, port_http: int | None = None,
                **options: str) -> Path:
    """A copy of examples/hellowsgi whose host1 is ``host`` (e.g. a throwaway test host),
    built with bin/buildout, ready for ``bin/hostout host1 deploy``."""
    import shutil

    target = workdir / "hellowsgi"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(
        "bin", "parts", "eggs", "develop-eggs", ".installed.cfg", "*.egg-info", "*_key*",
        "hostoutversions.cfg", "known_hosts", "__pycache__"))
    (target / "ssh_config").touch()
    settings = {"host": host, "password": password,
                "known-hosts": str(target / "known_hosts"),
                "ssh-config": str(target / "ssh_config"), **options}
    write(target, "deploy.cfg", "[buildout]\nextends = buildout.cfg\n\n[host1]\n"
          + "".join(f"{k} = {v}\n" for k, v in settings.items()))
    buildout(target, "-c", "deploy.cfg")
    return target


APPDB = HERE.parent / "examples" / "appdb"


def appdb_for(workdir: Path, *, base_image: str, names: str, app_port: int) -> Path:
    """A copy of examples/appdb whose images start from ``base_image`` (no registry here),
    are named ``NAMES/app`` and ``NAMES/db``, and whose app compose publishes on
    ``app_port``; built with bin/buildout -c test.cfg, ready for bin/hostout app db docker."""
    import shutil

    target = workdir / "appdb"
    shutil.copytree(APPDB, target, ignore=shutil.ignore_patterns(
        "bin", "parts", "eggs", "develop-eggs", "var", ".installed.cfg", "*.egg-info",
        "hostoutversions.cfg", "docker-compose.yml", "__pycache__"))
    write(target, "test.cfg", f"""
        [buildout]
        extends = buildout.cfg

        [image]
        docker-image = {base_image}

        [app]
        docker-name = {names}/app
        docker-ports = 127.0.0.1:{app_port}:8080

        [db]
        docker-name = {names}/db
        """)
    buildout(target, "-c", "test.cfg")
    return target
