"""The layers of an image: the deploy's steps, each committed as a layer keyed by what
decides it.

A layer's key is the digest of the key of the layer below it (the base image's id for the
first), its step, that step's own inputs, the definitions of its commands (a plugin that
overrides bootstrap_python changes the key) and hostout's version. So a layer is reused
exactly when everything it was made from is the same, and a change invalidates its layer
and every one above: a code change (a new develop release, so new pins) redoes uploadeggs,
uploadbuildout, buildout and start, never the users, Python or buildout's venv.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata

from ..commands.context import Context
from ..steps import bootstrap, shipping
from ..steps.accounts import accounts
from .startup import command_script, start_script

#: The layers, lowest first: the deploy's steps (commands, so plugins' overrides run), then
#: ``start``, the entry point and the image's config.
STEPS = ("bootstrap_users", "bootstrap_python", "bootstrap_buildout", "uploadeggs",
         "uploadbuildout", "buildout", "start")


@dataclass(frozen=True)
class Layer:
    step: str
    commands: tuple[str, ...]  # what runs for it (none for ``start``)
    inputs: str  # what besides the layers below decides it
    key: str  # the digest of all that


def _version() -> str:
    try:
        return metadata.version("collective.hostout")
    except metadata.PackageNotFoundError:
        return "unknown"


def step_inputs(c: Context) -> dict[str, str]:
    """The deploy steps' own inputs, as text (read here, on this machine: nothing runs on
    the host; develop packages are released, as uploadeggs would)."""
    s = c.settings
    a = accounts(c)
    lay = s.layout
    pins = bootstrap.bootstrap_pins(c)
    files = shipping.buildout_files(c)
    return {
        "bootstrap_users": f"{a.login} {a.buildout_user} {a.effective_user} {a.group}",
        "bootstrap_python": f"{s.python_version} {s.hostos} {' '.join(s.system_packages)}",
        "bootstrap_buildout": f"{lay.path} {lay.cache} "
                              f"{bootstrap.pins_digest(pins, s.python_version)}",
        "uploadeggs": "\n".join(f"{n}=={v}" for n, v in
                                sorted(shipping.remote_pins(c).items())),
        "uploadbuildout": shipping.build_digest(c, files),
        "buildout": "",
    }


def plan(c: Context, base: str, post_commands: tuple[str, ...], extra: str = "") -> list[Layer]:
    """The layers of ``c``'s image on the base image ``base`` (an image id), keyed.
    ``post_commands`` and ``extra`` (the image's config) decide the ``start`` layer."""
    inputs = step_inputs(c)
    a = accounts(c)
    inputs["start"] = "\n".join([start_script(c.name, a, c.settings.layout),
                                 command_script(post_commands), extra])
    version = _version()
    below = base
    layers = []
    for step in STEPS:
        commands = (step,) if step != "start" else ()
        origins = [f"{cmd.origin}:{getattr(cmd.func, '__qualname__', '')}"
                   for name in commands for cmd in c.registry.chain(name, c.name)]
        text = "\n".join([below, step, inputs[step], *origins, version])
        key = hashlib.sha256(text.encode()).hexdigest()
        layers.append(Layer(step, commands, inputs[step], key))
        below = key
    return layers
