"""``bin/hostout PART docker``: the part's image, built by the deploy's own steps in a
container, one layer per step.

The build runs the commands a deploy runs (bootstrap_users, bootstrap_python,
bootstrap_buildout, uploadeggs, uploadbuildout, buildout: plugins' overrides included) in a
:class:`~collective.hostout.remote.container.ContainerRemote`, each in a fresh container of
the layer below, and commits each as a layer (:mod:`.layers` says how layers are keyed).
Before running a step, the build looks for a layer with its key: a failed build that is run
again goes on from its last good layer, and a build with unchanged inputs reuses the
previous image's layers. The last layer, ``start``, adds the entry point and the image's
config (:mod:`.startup`); the image is tagged ``NAME:RELEASE`` and ``NAME:latest``.

Post-commands do not run during the build: they are the image's command.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Protocol

from ..commands.context import Context
from ..config.settings import Accounts
from ..errors import BootstrapError, ConfigError, HostoutError, ImageError
from ..remote.base import Remote
from ..remote.container import ContainerRemote, Engine, Image
from ..shell import RemoteCommand
from ..steps import build as build_step
from ..steps.accounts import accounts
from . import layers as layers_
from .startup import START_SCRIPT, image_changes, in_image, layer_changes, start_script

#: Labels hostout puts on the layers and images it makes.
LAYER = "io.hostout.layer"  # the layer's key
STEP = "io.hostout.step"
PART = "io.hostout.part"
RELEASE = "io.hostout.release"
DEVELOP = "io.hostout.develop"  # the develop releases in the image


class BuildHost(Remote, Protocol):
    """A remote that runs in a container it can start, commit and discard."""

    def start(self, image: str) -> None: ...

    def commit(self, *, changes: Sequence[str] = ()) -> Image: ...

    def discard(self) -> None: ...


class ImageStore(Protocol):
    """The container service, as the build uses it."""

    def image(self, ref: str) -> Image | None: ...

    def require_image(self, ref: str) -> Image: ...

    def find(self, labels: Mapping[str, str]) -> Image | None: ...

    def tag(self, image: str, repository: str, tag: str) -> None: ...

    def remove_stale(self) -> list[str]: ...

    def close(self) -> None: ...


@dataclass
class Built:
    """What ``docker`` made for a part."""

    name: str  # the image's name (docker-name)
    release: str  # its release tag
    image: str  # its id
    built: list[str] = field(default_factory=list)  # the layers built this time
    reused: list[str] = field(default_factory=list)  # the layers found already made

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.release}"


def check(c: Context) -> Accounts:
    """What an image needs of the options, checked before anything connects: a command
    (post-commands), an effective user who is not root, a valid name."""
    s = c.settings
    s.image.checked_name()
    if not s.post_commands:
        raise ConfigError("the image needs a command: set post-commands to what runs the "
                          "application in the foreground (the seed: ./bin/instance fg)",
                          host=c.name)
    a = s.accounts("root")
    if "root" in (a.effective_user, a.buildout_user):
        raise ConfigError("the application would run as root in the image: set "
                          "buildout-user and effective-user", host=c.name)
    return a


def release_id(now: datetime | None = None) -> str:
    """A new release's tag: its UTC time, sortable (``20261207-101500``)."""
    return (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")


class _Peers:
    """The build context's peers: those of the part's own context."""

    def __init__(self, c: Context) -> None:
        self._c = c

    @property
    def host_names(self) -> list[str]:
        return self._c.peer_names

    def context(self, host: str) -> Context:
        return self._c.peer(host)


class ImageBuild:
    """One part's image build (``run()``), on a service and a build host."""

    def __init__(self, c: Context, store: ImageStore, host: BuildHost) -> None:
        self.c = c
        self.store = store
        self.host = host
        # the build's own context: the same commands, options and state for every layer,
        # its host a container; post-commands are the image's command, not part of its build
        self.ctx = Context(in_image(c.settings), host, c.registry, c.out,
                           c.facts, packager=c.packager, shared=c.shared, peers=_Peers(c))

    def run(self) -> Built:
        c, s = self.c, self.c.settings
        name = s.image.checked_name()
        began = time.monotonic()
        for gone in self.store.remove_stale():
            c.out.info(f"removed build container {gone} of a build that was killed",
                       host=c.name)
        if self.store.image(s.image.base) is None:
            c.report(f"pulling the base image {s.image.base}")
        base = self.store.require_image(s.image.base)
        plan = layers_.plan(self.ctx, base.id, s.post_commands, self._config_text())
        start, below = 0, base.id
        for index in reversed(range(len(plan))):
            found = self.store.find({LAYER: plan[index].key})
            if found is not None:
                start, below = index + 1, found.id
                break
        built = Built(name, "", below, reused=[layer.step for layer in plan[:start]])
        if 0 < start < len(plan):
            c.report(f"reusing the layers up to {plan[start - 1].step}; building "
                     + ", ".join(layer.step for layer in plan[start:]))
        final: Image | None = None
        for index in range(start, len(plan)):
            layer = plan[index]
            last_good = plan[index - 1].step if index else f"base image {s.image.base}"
            made: list[str] = []

            def make(layer: layers_.Layer = layer, below: str = below,
                     last_good: str = last_good, made: list[str] = made) -> Image:
                made.append(layer.step)
                return self._layer(layer, below, last_good)

            # a layer another part of this invocation builds (the same users and Python)
            # is built once, and waited for
            final = self.c.shared.once(("docker-layer", layer.key), make)
            below = final.id
            (built.built if made else built.reused).append(layer.step)
        if final is None:
            final = self.store.find({LAYER: plan[-1].key})
            if final is None:  # removed since we looked
                raise ImageError(f"the image of {c.name} vanished while building; rerun",
                                 host=c.name)
        built.image = final.id
        built.release = final.labels.get(RELEASE) or release_id()
        for tag in (built.release, "latest"):
            self.store.tag(final.id, name, tag)
        seconds = time.monotonic() - began
        if built.built:
            c.report(f"built {name}:{built.release} (and latest) in {seconds:.1f} s: "
                     f"{len(built.built)} of {len(plan)} layers built")
        elif start < len(plan):  # its new layers were all built by another part's build
            c.report(f"built {name}:{built.release} (and latest) in {seconds:.1f} s: "
                     "its layers were built for another part")
        else:
            c.report(f"{name}:{built.release} is up to date (every layer reused; tagged "
                     "latest)")
        return built

    def _config_text(self) -> str:
        s = self.ctx.settings
        return repr((s.image.ports, s.layout.var, START_SCRIPT))

    def _labels(self, layer: layers_.Layer) -> dict[str, str]:
        return {LAYER: layer.key, STEP: layer.step}

    def _layer(self, layer: layers_.Layer, below: str, last_good: str) -> Image:
        """Run ``layer``'s step in a fresh container of ``below`` and commit it."""
        ctx, host = self.ctx, self.host
        host.start(below)
        try:
            try:
                for name in layer.commands:
                    ctx.call(name)
                changes = self._finish(layer)
            except HostoutError as err:
                reason = err.cause.message if (isinstance(err, BootstrapError) and isinstance(
                    err.cause, HostoutError)) else err.message
                raise ImageError(
                    f"{layer.step} failed building {self.c.settings.image.name}: {reason}; "
                    f"fix it and rerun 'bin/hostout {self.c.name} docker': it goes on from "
                    f"the {last_good} layer", host=self.c.name, cause=err) from err
            return host.commit(changes=changes)
        finally:
            host.discard()

    def _finish(self, layer: layers_.Layer) -> list[str]:
        """What a layer adds after its commands, and its commit's changes."""
        ctx, s = self.ctx, self.ctx.settings
        labels = self._labels(layer)
        if layer.step == "bootstrap_python":  # apt's lists: not worth a layer's space
            ctx.remote.execute(RemoteCommand("rm -rf /var/lib/apt/lists/*", sudo=True),
                               hide=True, echo=False)
        elif layer.step == "buildout" and not build_step.uses_sudo(ctx):
            ctx.call("setowners")  # a deploy without sudo skips it; an image needs it
        elif layer.step == "start":
            a = accounts(ctx)
            self._put_text(start_script(self.c.name, a, s.layout), START_SCRIPT, mode=0o755)
            develop = " ".join(f"{r.name}=={r.version}" for r in ctx.packager.releases())
            labels.update({PART: self.c.name, RELEASE: release_id(), DEVELOP: develop})
            return image_changes(self.c.settings.post_commands, s.layout, s.image.ports,
                                 labels)
        return layer_changes(labels)

    def _put_text(self, text: str, target: PurePosixPath, *, mode: int) -> None:
        work = self.c.facts.work_dir(self.c.name)
        local = work / "hostout-start"
        local.write_text(text)
        self.ctx.remote.put(local, target, mode=mode)


def docker(c: Context, *, store: ImageStore | None = None,
           host: BuildHost | None = None) -> Built:
    """Build ``c``'s image; the service is ``DOCKER_HOST``'s (else the default socket)
    unless given. Every build container is removed, even when the invocation is
    interrupted."""
    check(c)
    if store is None:
        engine = Engine.connect(c.name)
        c.on_close(engine.close)
        store = engine
        if host is None:
            host = ContainerRemote(c.settings, c.out, engine)
    if host is None:
        raise ImageError("a build host is needed with a given store", host=c.name)
    c.on_close(host.close)
    try:
        return ImageBuild(c, store, host).run()
    finally:
        host.discard()
