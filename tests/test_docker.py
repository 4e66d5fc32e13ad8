"""Issue 11 end to end, as a user runs it: examples/appdb's two host parts built into images
by the deploy's own steps (Podman's Docker-compatible service), run together with
podman-compose, rebuilt after a code change and after a failure, interrupted, and fed bad
input. The images are built once per session (module fixture) and their layers reused by
the tests after it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from buildouts import appdb_for, buildout, env, fetch, hostout, write
from hosts import podman, unused_port

pytestmark = pytest.mark.integration

PODMAN_COMPOSE = Path(sys.executable).parent / "podman-compose"
SESSION = uuid.uuid4().hex[:8]
NAMES = f"hostout-test-{SESSION}"
STEPS = ("bootstrap_users", "bootstrap_python", "bootstrap_buildout", "uploadeggs",
         "uploadbuildout", "buildout")


@dataclass
class Example:
    directory: Path
    app_port: int
    first: subprocess.CompletedProcess[str]

    def hostout(self, *args: str) -> subprocess.CompletedProcess[str]:
        return hostout(self.directory, *args)

    def image(self, part: str, tag: str = "latest") -> dict[str, object]:
        return json.loads(podman("image", "inspect", f"{NAMES}/{part}:{tag}").stdout)[0]


def build_containers() -> list[str]:
    listing = podman("ps", "--all", "--filter", "name=hostout-build.", "--format",
                     "{{.Names}}").stdout
    return listing.split()


def reported(proc: subprocess.CompletedProcess[str], part: str) -> list[str]:
    """The steps a part reported, in order (``[app] bootstrap_users: ...``)."""
    return re.findall(rf"^\[{part}\] (\w+): ", proc.stdout, re.M)


def _remove_images(before: set[str]) -> None:
    """The images this module made: its names' tags, then the layers they left."""
    listing = podman("images", "--all", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}").stdout
    tagged = [ref for line in listing.splitlines() for ref in line.split()[1:]
              if f"{NAMES}/" in ref]
    if tagged:
        podman("rmi", "--force", *tagged, check=False)
    for _ in range(4):  # children first: a layer goes once no image is made on it
        found = podman("images", "--all", "--quiet", "--no-trunc", "--filter",
                       "label=io.hostout.layer").stdout.split()
        made = [i for i in found if i not in before]
        if not made:
            break
        for image in made:
            podman("rmi", image, check=False)


@pytest.fixture(scope="module")
def example(docker_service: str, base_image: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    """The example's images, built from scratch: from a base image of this session's own
    (the base image with a label), so no layer of an earlier run is found."""
    before = set(podman("images", "--all", "--quiet", "--no-trunc", "--filter",
                        "label=io.hostout.layer").stdout.split())
    work = tmp_path_factory.mktemp("docker")
    base = f"localhost/{NAMES}/base:bookworm"
    try:
        podman("build", "--quiet", "--tag", base, "--file", "-", str(work),
               input=f"FROM {base_image}\nLABEL io.hostout.test-session={SESSION}\n")
        directory = appdb_for(work, base_image=base, names=NAMES, app_port=unused_port())
        port = int(re.search(r"127\.0\.0\.1:(\d+):8080",
                             (directory / "test.cfg").read_text())[1])  # type: ignore[index]
        first = hostout(directory, "app", "db", "docker")
        yield Example(directory, port, first)
    finally:
        _remove_images(before)


def test_two_images_built_by_the_deploys_steps(example: Example):
    proc = example.first
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    for part in ("app", "db"):
        steps = reported(proc, part)
        assert steps[-1] == "docker"
        # in this order (a step may say more than one line: the order of their first lines)
        ran = list(dict.fromkeys(s for s in steps if s in STEPS))
        assert ran[-4:] == list(STEPS[2:]), proc.stdout
        assert re.search(rf"^\[{part}\] docker: built {NAMES}/{part}:\d{{8}}-\d{{6}} \(and "
                         r"latest\) in [\d.]+ s: \d of 7 layers built$", proc.stdout, re.M)
    # the parts' users and Python are the same: one layer each, built once for both
    assert proc.stdout.count("] bootstrap_users: created group kvdemo, created user "
                             "kvbuild, created user kv\n") == 1
    assert len(re.findall(r"\] bootstrap_python: installed Python 3\.\d+ on Debian",
                          proc.stdout)) == 1
    app, db = example.image("app"), example.image("db")
    layers = [image["RootFS"]["Layers"] for image in (app, db)]  # type: ignore[index]
    shared = next(i for i, (a, b) in enumerate(zip(*layers, strict=False)) if a != b)
    assert shared >= 3  # the base image, users, Python
    assert build_containers() == []


def test_the_image_starts_as_the_seed_says(example: Example):
    config = example.image("app")["Config"]
    assert config["Entrypoint"] == ["/usr/local/bin/hostout-start"]  # type: ignore[index]
    assert config["Cmd"] == ["/bin/sh", "-c",  # type: ignore[index]
                             "exec bin/kvapp parts/kvapp-ini/app.ini"]
    assert list(config["Volumes"]) == ["/var/buildout/app/var"]  # type: ignore[index]
    assert config["WorkingDir"] == "/var/buildout/app"  # type: ignore[index]
    assert "8080/tcp" in config["ExposedPorts"]  # type: ignore[index]
    labels = config["Labels"]  # type: ignore[index]
    assert labels["io.hostout.part"] == "app"
    assert re.fullmatch(r"kvdemo==0\.1\.dev0\+[0-9a-f]+", labels["io.hostout.develop"])
    # buildout reruns as the container starts, with no network at all, and takes the
    # environment's values; then the command runs as the effective user
    proc = podman("run", "--rm", "--network", "none",
                  "--env", "DB_PORT_8100_TCP_ADDR=elsewhere.example",
                  "--env", "DB_PORT_8100_TCP_PORT=9999", f"{NAMES}/app:latest",
                  "sh", "-c", "id -un; cat parts/kvapp-ini/app.ini; echo; ls -ld var",
                  check=False, image=f"{NAMES}/app:latest")
    assert proc.returncode == 0, proc.stderr
    assert "Installing kvapp-ini." in proc.stdout + proc.stderr
    said = proc.stdout.splitlines()
    assert said[-5] == "kv"  # not root
    assert said[-3:-1] == ["port = 8080", "server = http://elsewhere.example:9999"]
    assert said[-1].split()[2:4] == ["kv", "kvdemo"]  # var/ is the app's
    # HOSTOUT_BUILDOUT=0 starts without the rerun
    proc = podman("run", "--rm", "--network", "none", "--env", "HOSTOUT_BUILDOUT=0",
                  f"{NAMES}/app:latest", "cat", "parts/kvapp-ini/app.ini", check=False,
                  image=f"{NAMES}/app:latest")
    assert "server = http://127.0.0.1:8100" in proc.stdout and "Installing" not in (
        proc.stdout + proc.stderr)


def test_unchanged_rebuild_reuses_every_layer(example: Example):
    ids = {part: example.image(part)["Id"] for part in ("app", "db")}
    proc = example.hostout("app", "db", "docker")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    for part in ("app", "db"):
        assert reported(proc, part) == ["docker"]
        assert re.search(rf"^\[{part}\] docker: {NAMES}/{part}:\S+ is up to date",
                         proc.stdout, re.M)
        assert example.image(part)["Id"] == ids[part]


def compose(example: Example, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PODMAN_COMPOSE), "-p", project, *args],
                          cwd=example.directory, env=env(), text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=300, check=False)


def test_compose_runs_the_two_images_together(example: Example):
    proc = example.hostout("app", "db", "compose")
    assert proc.returncode == 0, proc.stderr
    assert (example.directory / "docker-compose.yml").is_file()
    project = f"hostouttest{SESSION}"
    try:
        up = compose(example, project, "up", "-d")
        assert up.returncode == 0, up.stdout + up.stderr
        url = f"http://127.0.0.1:{example.app_port}/"
        # the app read its server's address from the environment compose set, at start-up
        assert fetch(url, timeout=60) == ("Hello from the kvdemo server "
                                          "(read from http://db:8100)\n")
        published = podman("port", f"{project}_db_1", "8100").stdout.strip()
        put = urllib.request.Request(f"http://{published}/greeting", data=b"Saved in var/",
                                     method="PUT")
        urllib.request.urlopen(put, timeout=10).close()
        assert fetch(url) == "Saved in var/ (read from http://db:8100)\n"
        for service in ("app", "db"):
            users = podman("top", f"{project}_{service}_1", "user", "args").stdout
            assert re.search(r"^kv\s+/var/buildout/\w+/bin/python bin/kv", users, re.M), users
        # var/ is a volume: the data outlives the containers
        down = compose(example, project, "down")
        assert down.returncode == 0, down.stderr
        assert compose(example, project, "up", "-d").returncode == 0
        assert fetch(url, timeout=60) == "Saved in var/ (read from http://db:8100)\n"
    finally:
        compose(example, project, "down", "-v")


def test_a_code_change_rebuilds_only_upload_and_build(example: Example):
    source = example.directory / "src/kvdemo/src/kvdemo/app.py"
    source.write_text(source.read_text().replace("(read from", "(as read from"))
    before = example.image("app")["Config"]["Labels"]["io.hostout.develop"]  # type: ignore[index]
    proc = example.hostout("app", "docker")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert reported(proc, "app") == ["docker", "uploadeggs", "uploadbuildout", "buildout",
                                     "setowners", "docker"]
    assert "[app] docker: reusing the layers up to bootstrap_buildout; building uploadeggs, " \
           "uploadbuildout, buildout, start" in proc.stdout
    after = example.image("app")["Config"]["Labels"]["io.hostout.develop"]  # type: ignore[index]
    assert after != before
    run = podman("run", "--rm", "--network", "none", "--env", "HOSTOUT_BUILDOUT=0",
                 f"{NAMES}/app:latest", "sh", "-c", "grep -l 'as read from' "
                 "buildout-cache/eggs/v5/kvdemo-*/kvdemo/app.py", check=False,
                 image=f"{NAMES}/app:latest")
    assert run.returncode == 0, run.stdout + run.stderr  # the new code is in the image


def test_a_failed_build_goes_on_from_the_last_good_layer(example: Example):
    base, versions = example.directory / "base.cfg", example.directory / "versions.cfg"
    kept, pins = base.read_text(), versions.read_text()
    versions.write_text(pins + "plone.recipe.command = 1.1\n")
    # builds here (hostout's resolution installs recipes, never runs them), fails in the image
    base.write_text(kept + "\n[broken]\nrecipe = plone.recipe.command\ncommand = exit 3\n"
                    "stop-on-error = true\n")
    write(example.directory, "broken.cfg", "[buildout]\nextends = test.cfg\n"
          "[app]\nparts = kvapp kvapp-ini broken\n")
    buildout(example.directory, "-c", "broken.cfg")
    try:
        for attempt in range(2):
            proc = example.hostout("app", "docker")
            assert proc.returncode == 1
            error = proc.stderr.strip().splitlines()[-1]
            assert error.startswith(f"Error: app: buildout failed building {NAMES}/app: ")
            assert "Installing broken" in proc.stdout + proc.stderr
            assert error.endswith("rerun 'bin/hostout app docker': it goes on from the "
                                  "uploadbuildout layer")
            assert build_containers() == []
            if attempt:  # the second run starts from the last good layer
                assert reported(proc, "app") == ["docker"]
                assert "reusing the layers up to uploadbuildout; building buildout, start" \
                    in proc.stdout
    finally:
        base.write_text(kept)
        versions.write_text(pins)
        buildout(example.directory, "-c", "test.cfg")
    # back to the inputs of the last image: every layer of it is reused
    proc = example.hostout("app", "docker")
    assert proc.returncode == 0, proc.stderr
    assert "is up to date" in proc.stdout


def test_ctrl_c_removes_the_build_container(example: Example):
    source = example.directory / "src/kvdemo/src/kvdemo/server.py"
    kept = source.read_text()
    source.write_text(kept + "\n# changed: the image is rebuilt from uploadeggs on\n")
    try:
        started = subprocess.Popen([str(example.directory / "bin/hostout"), "app", "docker"],
                                   cwd=example.directory, env=env(), text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not any(f".{started.pid}.app." in name for name in build_containers()):
            assert started.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(1)  # a step is running in it
        started.send_signal(signal.SIGINT)
        out, err = started.communicate(timeout=60)
        assert started.returncode == 130, out + err
        assert err.strip().splitlines()[-1] == "Error: interrupted"
        assert not [n for n in build_containers() if f".{started.pid}." in n]
    finally:
        source.write_text(kept)


@pytest.fixture(scope="module")
def bad(docker_service: str, base_image: str,
        tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another copy of the example, for bad input (nothing is built in it)."""
    return appdb_for(tmp_path_factory.mktemp("bad"), base_image=base_image,
                     names=f"{NAMES}-bad", app_port=unused_port())


@pytest.mark.parametrize(("case", "expected"), [
    ("no service", "Error: app: no Docker or Podman service answers at unix://{d}/none.sock "
                   "(no such socket); "),
    ("no base image", "Error: app: base image localhost/hostout-nosuch:1 is not there and "
                      "cannot be pulled ("),
    ("no post-commands", "Error: app: the image needs a command: set post-commands to what "
                         "runs the application in the foreground"),
])
def test_bad_input_is_one_line_and_leaves_nothing(bad: Path, case: str, expected: str):
    options = {"no base image": "app:docker-image=localhost/hostout-nosuch:1",
               "no post-commands": "app:post-commands="}
    if case in options:
        buildout(bad, "-c", "test.cfg", options[case])
    run_env = env()
    if case == "no service":
        run_env["DOCKER_HOST"] = f"unix://{bad}/none.sock"
    try:
        proc = subprocess.run([str(bad / "bin/hostout"), "app", "docker"], cwd=bad,
                              env=run_env, text=True, capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=120)
    finally:
        if case in options:
            buildout(bad, "-c", "test.cfg")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(expected.format(d=bad)), proc.stderr
    assert build_containers() == []
