"""Images and compose files from host parts, without a container service: the docker-*
options, the layer plan and its keys, the build's orchestration against a recording fake
(which layers are built, which reused, what runs in them), the start-up script and the
compose file. The same build runs against Podman in tests/test_docker.py."""

from __future__ import annotations

import io
import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
import yaml

from collective.hostout import Account, RecordingRemote
from collective.hostout.commands.context import Context
from collective.hostout.commands.discovery import registry_for
from collective.hostout.config.facts import BuildoutFacts
from collective.hostout.config.images import Port, image_settings
from collective.hostout.config.settings import HostSettings, Layout, build_settings
from collective.hostout.errors import ConfigError, ImageError
from collective.hostout.images import build, compose, layers, startup
from collective.hostout.images.startup import in_image
from collective.hostout.output import QUIET, Output
from collective.hostout.packaging.dists import Target
from collective.hostout.packaging.resolve import Resolution
from collective.hostout.remote.container import Image
from collective.hostout.shared import Shared

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n'
PROBE = r"sysconfig\.get_platform"


# -- the docker-* options ---------------------------------------------------------------------
def test_options_are_typed_with_the_seeds_defaults():
    spec = image_settings("app", {})
    assert (spec.name, spec.base, spec.ports, spec.links) == (
        "hostout/app", "debian:bookworm-slim", (), ())
    spec = image_settings("App_1", {
        "docker-name": "registry.example.com:5000/team/app", "docker-image": "python:3.11-slim",
        "docker-ports": "8080 127.0.0.1:9000:9000 127.0.0.1::8100 53:53/udp",
        "docker-environment": "A=1\n  B = two words \n", "docker-links": "db db:zeo"})
    assert spec.name == "registry.example.com:5000/team/app"
    assert [p.compose() for p in spec.ports] == [
        "8080", "127.0.0.1:9000:9000", "127.0.0.1::8100", "53:53/udp"]
    assert spec.environment == (("A", "1"), ("B", "two words"))
    assert [(link.part, link.prefix) for link in spec.links] == [("db", "DB"), ("db", "ZEO")]
    assert image_settings("App_1", {}).name == "hostout/app_1"


@pytest.mark.parametrize(("option", "value"), [
    ("docker-image", "Debian:Bookworm"), ("docker-image", "debian;rm -rf /"),
    ("docker-name", "hostout/app:latest"), ("docker-name", "a b"),
    ("docker-ports", "80800"), ("docker-ports", "http"), ("docker-ports", "8080:"),
    ("docker-environment", "no equals sign"), ("docker-environment", "1A=x"),
    ("docker-links", "db:zeo:x"), ("docker-links", "app"), ("docker-links", "$(x)"),
])
def test_malformed_options_are_refused_naming_them(option: str, value: str):
    with pytest.raises(ConfigError, match=f"option {option} = "):
        image_settings("app", {option: value})


def test_bad_options_fail_when_buildout_reads_them(tmp_path: Path):
    with pytest.raises(ConfigError, match="docker-ports"):
        build_settings("app", {"docker-ports": "eighty"}, buildout_directory=tmp_path)


# -- a context whose host stands in for a container ------------------------------------------
@dataclass
class FakeRelease:
    name: str
    version: str
    sdist: Path
    source: Path
    rebuilt: bool = True


class FakePackager:
    """The local side: a file per pin, and the develop releases given."""

    def __init__(self, directory: Path, releases: Sequence[FakeRelease] = ()) -> None:
        self.directory = directory
        self._releases = list(releases)

    def releases(self) -> list[FakeRelease]:
        return self._releases

    def resolution(self, cfg: Path, *, pins: Mapping[str, str],
                   pinned_by_cfg: Mapping[str, str], parts: Sequence[str] = (),
                   skip_parts: Sequence[str] = (),
                   markers: Mapping[str, str] | None = None) -> Resolution:
        """The chosen cfg as if buildout resolved it here: its own pins and parts."""
        return Resolution(cfg=cfg.name, pins=dict(pins), parts=tuple(parts) or ("app",),
                          buildout_options={}, unpinned=(), not_run={}, skipped=(),
                          digest="0" * 64)

    def distributions(self, pins: Mapping[str, str], target: Target) -> dict[str, Path]:
        found = {}
        for name, version in pins.items():
            path = self.directory / f"{name}-{version}-py3-none-any.whl"
            path.write_text(name)
            found[name] = path
        return found


class FakeStore:
    """The container service: images by layer key."""

    def __init__(self) -> None:
        self.images: dict[str, Image] = {}
        self.tags: list[str] = []

    def image(self, ref: str) -> Image | None:
        return Image("base-id") if ref == "debian:bookworm-slim" else None

    def require_image(self, ref: str) -> Image:
        if ref != "debian:bookworm-slim":
            raise ImageError(f"base image {ref} is not there")
        return Image("base-id")

    def find(self, labels: Mapping[str, str]) -> Image | None:
        return self.images.get(labels[build.LAYER])

    def tag(self, image: str, repository: str, tag: str) -> None:
        self.tags.append(f"{repository}:{tag}={image}")

    def remove_stale(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


@dataclass
class FakeBuildHost(RecordingRemote):
    """A RecordingRemote with a container's lifecycle: what ran in which layer."""

    login: str = "root"
    key_login: bool = False
    store: FakeStore = field(default_factory=FakeStore)
    started: list[str] = field(default_factory=list)
    commits: list[list[str]] = field(default_factory=list)
    running: str | None = None
    discarded: int = 0
    layer_calls: dict[str, list[str]] = field(default_factory=dict)

    def start(self, image: str) -> None:
        assert self.running is None, "one container at a time"
        self.running = image
        self.started.append(image)
        self._mark = len(self.calls)

    def commit(self, *, changes: Sequence[str] = ()) -> Image:
        labels = {k: json.loads(v) for k, v in
                  (c.removeprefix("LABEL ").split("=", 1) for c in changes
                   if c.startswith("LABEL "))}
        image = Image(f"img-{labels[build.STEP]}-{len(self.commits)}", labels=labels)
        self.store.images[labels[build.LAYER]] = image
        self.commits.append(list(changes))
        self.layer_calls[labels[build.STEP]] = [c.script for c in self.calls[self._mark:]]
        return image

    def discard(self) -> None:
        self.running = None
        self.discarded += 1


def bare_container(store: FakeStore | None = None) -> FakeBuildHost:
    host = FakeBuildHost("app", store=store or FakeStore())
    # bootstrap_buildout's probe: no directories yet (it prints "have" once they exist)
    host.respond(r"^test -d /var/buildout/app ", stdout="")
    host.respond(PROBE, stdout="linux-x86_64 3.11\n")
    host.respond(PROBE, exited=1, times=1)
    host.respond(r"^cat /etc/os-release$", stdout=DEBIAN)
    return host


def make(tmp_path: Path, host: RecordingRemote, releases: Sequence[FakeRelease] = (),
         **options: str) -> Context:
    (tmp_path / "prod.cfg").write_text("[buildout]\nparts = app\n[versions]\nwebob = 1.8.11\n")
    opts = {"buildout": "prod.cfg", "buildout-user": "bo", "effective-user": "app",
            "buildout-group": "grp", "pre-commands": "prepare",
            "post-commands": "bin/app fg", "docker-ports": "8080", **options}
    settings = build_settings("app", opts, buildout_directory=tmp_path)
    dists = tmp_path / "dists"
    dists.mkdir(exist_ok=True)
    return Context(settings, host, registry_for(settings), Output(verbosity=QUIET),
                   BuildoutFacts.of_directory(tmp_path), shared=Shared(),
                   packager=FakePackager(dists, releases))  # type: ignore[arg-type]


def in_image_context(c: Context) -> Context:
    """``c`` with the settings its image has (in place: no releases), as the build plans."""
    return Context(in_image(c.settings), c.remote, c.registry, c.out, c.facts,
                   shared=c.shared, packager=c.packager)


def release(tmp_path: Path, version: str) -> FakeRelease:
    sdist = tmp_path / f"myapp-{version}.tar.gz"
    sdist.write_text(version)
    return FakeRelease("myapp", version, sdist, tmp_path / "src" / "myapp")


def run_build(c: Context, host: FakeBuildHost) -> build.Built:
    return build.docker(c, store=host.store, host=host)  # type: ignore[arg-type]


# -- the build's orchestration -------------------------------------------------------------------
def test_a_first_build_runs_the_deploys_steps_one_layer_each(tmp_path: Path):
    host = bare_container()
    c = make(tmp_path, host, [release(tmp_path, "0.1.dev0+aaaa")])
    built = run_build(c, host)
    assert built.built == list(layers.STEPS) and built.reused == []
    assert host.started[0] == "base-id"  # then each layer on the one below
    assert host.started[1:] == [f"img-{step}-{i}" for i, step in enumerate(layers.STEPS[:-1])]
    assert host.discarded >= len(layers.STEPS) and host.running is None
    calls = host.layer_calls
    assert any("useradd" in s for s in calls["bootstrap_users"])
    assert not any("authorized_keys" in s for s in calls["bootstrap_users"])  # no key login
    assert not (tmp_path / "app_key").exists()
    assert any("apt-get install" in s for s in calls["bootstrap_python"])
    assert any("rm -rf /var/lib/apt/lists" in s for s in calls["bootstrap_python"])
    assert any("-m venv" in s for s in calls["bootstrap_buildout"])
    assert any("bin/buildout' -c hostout.cfg" in s or "bin/buildout -c hostout.cfg" in s
               for s in calls["buildout"])
    assert any(s == "prepare" for s in calls["buildout"])  # pre-commands run in the build
    everything = [call.script for call in host.calls]
    assert "bin/app fg" not in everything  # post-commands are the image's command
    assert "/var/buildout/app/myapp-0.1.dev0+aaaa.tar.gz" not in host.files  # (in dist/)
    assert any(p.endswith("/dist/myapp-0.1.dev0+aaaa.tar.gz") for p in host.files)
    # the buildout user ran buildout and owns what it uploaded
    (run,) = host.ran(r"bin/buildout'? -c hostout\.cfg")
    assert run.account is Account.BUILDOUT
    assert host.files["/usr/local/bin/hostout-start"].startswith(b"#!/bin/sh")
    final = host.commits[-1]
    assert 'ENTRYPOINT ["/usr/local/bin/hostout-start"]' in final
    assert 'CMD ["/bin/sh", "-c", "exec bin/app fg"]' in final
    assert 'VOLUME ["/var/buildout/app/var"]' in final and "EXPOSE 8080/tcp" in final
    assert f'LABEL {build.DEVELOP}="myapp==0.1.dev0+aaaa"' in final
    assert re.fullmatch(r"\d{8}-\d{6}", built.release)
    assert host.store.tags == [f"hostout/app:{built.release}={built.image}",
                               f"hostout/app:latest={built.image}"]


def test_unchanged_inputs_reuse_every_layer(tmp_path: Path):
    store = FakeStore()
    first = bare_container(store)
    built = run_build(make(tmp_path, first), first)
    again = FakeBuildHost("app", store=store)
    c = make(tmp_path, again)
    c.out = Output(stream=io.StringIO())
    second = run_build(c, again)
    assert again.started == [] and again.calls == []
    assert (second.image, second.release) == (built.image, built.release)
    assert second.built == [] and second.reused == list(layers.STEPS)
    assert c.out.stream.getvalue() == (  # type: ignore[attr-defined]  (outside a command:
        f"[app] hostout/app:{built.release} is up to date (every layer reused; "  # no name)
        "tagged latest)\n")


def test_layers_two_parts_share_are_built_once(tmp_path: Path):
    store, shared = FakeStore(), Shared()
    one, two = bare_container(store), FakeBuildHost("app", store=store)
    two.respond(r"^test -d ", stdout="")
    two.respond(PROBE, stdout="linux-x86_64 3.11\n")  # Python came with the shared layer
    first = make(tmp_path, one)
    second = make(tmp_path, two, path="/var/buildout/app2")  # another part's own path
    first.shared = second.shared = shared
    second.out = Output(stream=io.StringIO())
    run_build(first, one)
    built = run_build(second, two)
    assert built.reused == ["bootstrap_users", "bootstrap_python"]  # made by the first
    assert built.built == list(layers.STEPS[2:])
    assert not two.ran("useradd|apt-get")


def test_a_code_change_redoes_only_upload_and_build(tmp_path: Path):
    store = FakeStore()
    first = bare_container(store)
    run_build(make(tmp_path, first, [release(tmp_path, "0.1.dev0+aaaa")]), first)
    again = FakeBuildHost("app", store=store)
    again.respond(PROBE, stdout="linux-x86_64 3.11\n")
    built = run_build(make(tmp_path, again, [release(tmp_path, "0.1.dev0+bbbb")]), again)
    assert built.reused == ["bootstrap_users", "bootstrap_python", "bootstrap_buildout"]
    assert built.built == ["uploadeggs", "uploadbuildout", "buildout", "start"]
    assert again.started[0] == store.images[
        layers.plan(in_image_context(make(tmp_path, again)), "base-id",
                    ("bin/app fg",))[2].key].id
    assert not again.ran("useradd|apt-get|-m venv")


def test_a_failed_step_names_the_layer_to_go_on_from_and_leaves_no_container(tmp_path: Path):
    store = FakeStore()
    host = bare_container(store)
    host.respond(r"bin/buildout'? -c hostout\.cfg", exited=1, stderr="Error: broken part\n")
    with pytest.raises(ImageError) as failed:
        run_build(make(tmp_path, host), host)
    message = str(failed.value)
    assert message.startswith("app: buildout failed building hostout/app: ")
    assert "broken part" in message
    assert message.endswith("rerun 'bin/hostout app docker': it goes on from the "
                            "uploadbuildout layer")
    assert host.running is None  # discarded
    assert [step for step in layers.STEPS if any(
        json.dumps(step) in c for commit in host.commits for c in commit)] == list(
        layers.STEPS[:5])
    # run again: it starts from the last good layer
    again = FakeBuildHost("app", store=store)
    again.respond(PROBE, stdout="linux-x86_64 3.11\n")
    built = run_build(make(tmp_path, again), again)
    assert built.reused == list(layers.STEPS[:5]) and built.built == ["buildout", "start"]


def test_a_plugins_override_changes_its_layer_and_those_above(tmp_path: Path):
    plain = layers.plan(make(tmp_path, RecordingRemote("app", login="root")), "base", ("x",))
    fabfile = tmp_path / "fab.py"
    fabfile.write_text("from collective.hostout import command\n\n@command\n"
                       "def bootstrap_python(c):\n    return c.super()\n")
    other = layers.plan(make(tmp_path, RecordingRemote("app", login="root"),
                             fabfiles=str(fabfile)), "base", ("x",))
    assert plain[0].key == other[0].key
    assert all(a.key != b.key for a, b in zip(plain[1:], other[1:], strict=True))


def test_what_the_image_needs_is_checked_before_anything_connects(tmp_path: Path):
    host = bare_container()
    with pytest.raises(ConfigError, match=r"app: the image needs a command: set "
                       r"post-commands"):
        run_build(make(tmp_path, host, **{"post-commands": ""}), host)
    with pytest.raises(ConfigError, match="would run as root"):
        run_build(make(tmp_path, host, **{"effective-user": "root"}), host)
    with pytest.raises(ImageError, match="base image nosuch:1 is not there"):
        run_build(make(tmp_path, host, **{"docker-image": "nosuch:1"}), host)
    assert host.calls == [] and host.started == []


# -- start-up -------------------------------------------------------------------------------------
def test_the_start_script_is_shell_that_switches_users_with_python(tmp_path: Path):
    c = make(tmp_path, RecordingRemote("app", login="root"))
    text = startup.start_script("app", c.settings.accounts("root"), c.settings.layout)
    script = tmp_path / "hostout-start"
    script.write_text(text)
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
    assert "PIP_NO_INDEX=1" in text and "-c hostout.cfg" in text
    assert text.rstrip().endswith('exec "$PYTHON" -c "$DROP" app "$@"')
    compile(startup.DROP, "drop", "exec")  # the user switch is valid Python


@pytest.mark.parametrize(("commands", "script"), [
    (("./bin/instance fg",), "exec ./bin/instance fg"),
    (("bin/prepare", "bin/app --port 8080"), "bin/prepare\nexec bin/app --port 8080"),
    (("bin/a && bin/b",), "bin/a && bin/b"),
    (("if true; then bin/app; fi",), "if true; then bin/app; fi"),
    (("FOO=1 bin/app",), "FOO=1 bin/app"),
])
def test_the_command_execs_its_last_line_when_simple(commands: tuple[str, ...], script: str):
    assert startup.command_script(commands) == script
    layout = Layout(PurePosixPath("/srv/app"), PurePosixPath("/srv/app/buildout-cache"))
    changes = startup.image_changes(commands, layout, (Port(80), Port(80)), {"k": "v w"})
    assert json.loads(changes[1].removeprefix("CMD ")) == ["/bin/sh", "-c", script]
    assert changes[2:] == ["WORKDIR /srv/app", 'VOLUME ["/srv/app/var"]', "USER root",
                           "EXPOSE 80/tcp", 'LABEL k="v w"']


# -- compose --------------------------------------------------------------------------------------
def peers(tmp_path: Path, **parts: Mapping[str, str]):
    settings = {name: build_settings(name, {"buildout-group": "g", **opts},
                                     buildout_directory=tmp_path)
                for name, opts in parts.items()}
    return settings


class Peers:
    """The hosts of an invocation, as a Context sees them (the runner's Invocation)."""

    def __init__(self, tmp_path: Path, settings: Mapping[str, HostSettings],
                 shared: Shared) -> None:
        self.tmp_path, self.settings, self.shared = tmp_path, settings, shared

    @property
    def host_names(self) -> list[str]:
        return sorted(self.settings)

    def context(self, host: str) -> Context:
        return Context(self.settings[host], RecordingRemote(host),
                       registry_for(self.settings[host]), Output(verbosity=QUIET),
                       BuildoutFacts.of_directory(self.tmp_path), shared=self.shared,
                       peers=self)


def compose_context(tmp_path: Path, name: str, settings, shared: Shared) -> Context:
    return Peers(tmp_path, settings, shared).context(name)


def test_compose_writes_a_service_per_part_with_links_as_variables(tmp_path: Path):
    settings = peers(tmp_path,
                     app={"docker-ports": "127.0.0.1:8080:8080", "docker-links": "db:zeo",
                          "docker-environment": "ZEO_PORT_8100_TCP_PORT=9999\nMODE=prod"},
                     db={"docker-ports": "8100", "docker-name": "team/db"},
                     other={})
    shared = Shared()
    path = compose.compose(compose_context(tmp_path, "app", settings, shared))
    doc = yaml.safe_load(path.read_text())
    assert sorted(doc["services"]) == ["app", "db"]  # db comes with the app that needs it
    app, db = doc["services"]["app"], doc["services"]["db"]
    assert app["image"] == "hostout/app:latest" and db["image"] == "team/db:latest"
    assert app["ports"] == ["127.0.0.1:8080:8080"] and db["ports"] == ["8100"]
    assert app["depends_on"] == ["db"] and "depends_on" not in db
    assert app["environment"] == {
        "ZEO_PORT": "tcp://db:8100", "ZEO_PORT_8100_TCP": "tcp://db:8100",
        "ZEO_PORT_8100_TCP_ADDR": "db", "ZEO_PORT_8100_TCP_PORT": "9999",  # the part's say
        "ZEO_PORT_8100_TCP_PROTO": "tcp", "MODE": "prod"}
    assert app["volumes"] == ["app-var:/var/buildout/app/var"]
    assert app["init"] is True
    assert doc["volumes"] == {"app-var": {}, "db-var": {}}
    # another host of the same invocation adds its part to the same file
    compose.compose(compose_context(tmp_path, "other", settings, shared))
    assert sorted(yaml.safe_load(path.read_text())["services"]) == ["app", "db", "other"]


def test_compose_refuses_a_link_to_no_part(tmp_path: Path):
    settings = peers(tmp_path, app={"docker-links": "nosuch"})
    c = compose_context(tmp_path, "app", settings, Shared())
    with pytest.raises(ConfigError, match="nosuch is not a host part"):
        compose.compose(c)
    assert not (tmp_path / "docker-compose.yml").exists()
