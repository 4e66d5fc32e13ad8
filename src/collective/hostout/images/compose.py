"""``bin/hostout app db compose``: a ``docker-compose.yml`` that runs the parts' images.

One service per host part, named as the part: its image (``NAME:latest``, what ``docker``
built last), its ports (``docker-ports``), a named volume for ``var/``, its environment
(``docker-environment``) and the parts it links to (``docker-links``): compose starts those
first, and, as Docker's links did, announces each of their ports in variables the buildout
reads at start-up (``DB_PORT_8100_TCP_ADDR=db``, ``DB_PORT_8100_TCP_PORT=8100``...). The
parts linked to are written too, so the file always runs. ``init: true`` gives every
service an init process that forwards signals (``compose stop`` is prompt).

The hosts of an invocation run side by side: each adds its services to one file per path,
which is rewritten whole (sorted) after each addition, so the last write holds every part
named on the command line whatever the order.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..commands.context import Context
from ..config.settings import HostSettings
from ..errors import ConfigError
from ..files import write_atomically
from .startup import in_image

HEADER = """\
# Written by collective.hostout (bin/hostout {parts} compose) from the host parts of
# {directory}; written again each time: put your own additions in
# docker-compose.override.yml. Build the images first: bin/hostout {parts} docker
#   podman-compose up -d        (or: docker compose up -d)"""


@dataclass(frozen=True)
class Service:
    """One part's service."""

    name: str
    image: str
    ports: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    volume: str  # the named volume for var/
    var: str  # where var/ is in the image
    depends_on: tuple[str, ...]


def link_environment(alias: str, target: HostSettings) -> list[tuple[str, str]]:
    """The variables a Docker link announced for ``target``'s ports, under ``alias``."""
    found: list[tuple[str, str]] = []
    name = target.name
    for port in target.image.ports:
        proto = port.protocol
        base = f"{alias}_PORT_{port.port}_{proto.upper()}"
        found += [(base, f"{proto}://{name}:{port.port}"), (f"{base}_ADDR", name),
                  (f"{base}_PORT", str(port.port)), (f"{base}_PROTO", proto)]
    if target.image.ports:
        first = target.image.ports[0]
        found.insert(0, (f"{alias}_PORT", f"{first.protocol}://{name}:{first.port}"))
    return found


def service(settings: HostSettings, peer: Mapping[str, HostSettings]) -> Service:
    """The service of a part; ``peer`` holds the parts it links to."""
    spec = settings.image
    environment: dict[str, str] = {}
    for link in spec.links:
        environment.update(link_environment(link.prefix, peer[link.part]))
    environment.update(spec.environment)  # the part's own say last
    return Service(
        name=settings.name,
        image=f"{spec.checked_name()}:latest",
        ports=tuple(p.compose() for p in spec.ports),
        environment=tuple(environment.items()),
        volume=f"{settings.name}-var",
        var=str(in_image(settings).layout.var),
        depends_on=tuple(dict.fromkeys(link.part for link in spec.links)),
    )


def services(c: Context) -> dict[str, Service]:
    """The services of ``c``'s part and of every part it links to, transitively."""
    found: dict[str, Service] = {}
    waiting = [c.settings]
    known: dict[str, HostSettings] = {c.name: c.settings}
    while waiting:
        settings = waiting.pop()
        if settings.name in found:
            continue
        for link in settings.image.links:
            if link.part not in known:
                try:
                    known[link.part] = c.peer(link.part).settings
                except Exception as err:
                    raise ConfigError(f"docker-links of {settings.name}: {link.part} is not a "
                                      "host part of this buildout", host=c.name) from err
            waiting.append(known[link.part])
        found[settings.name] = service(settings, known)
    return found


def _s(value: str) -> str:
    return json.dumps(value)  # a JSON string is a YAML string


def render(found: Mapping[str, Service], *, parts: str, directory: str) -> str:
    """The compose file's YAML."""
    out = [HEADER.format(parts=parts, directory=directory), "services:"]
    for name in sorted(found):
        svc = found[name]
        out += [f"  {name}:", f"    image: {_s(svc.image)}", "    init: true"]
        if svc.ports:
            out += ["    ports:", *(f"      - {_s(p)}" for p in svc.ports)]
        if svc.environment:
            out += ["    environment:", *(f"      {k}: {_s(v)}" for k, v in svc.environment)]
        out += ["    volumes:", f"      - {_s(f'{svc.volume}:{svc.var}')}"]
        if svc.depends_on:
            out += ["    depends_on:", *(f"      - {_s(d)}" for d in svc.depends_on)]
    out += ["volumes:", *(f"  {found[name].volume}: {{}}" for name in sorted(found))]
    return "\n".join(out) + "\n"


class ComposeFile:
    """The services gathered for one file by the hosts of an invocation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.services: dict[str, Service] = {}
        self._lock = threading.Lock()

    def add(self, found: Mapping[str, Service], directory: Path) -> None:
        with self._lock:
            self.services.update(found)
            text = render(self.services, parts=" ".join(sorted(self.services)),
                          directory=str(directory))
            write_atomically(self.path, text)


def compose(c: Context, file: str = "docker-compose.yml") -> Path:
    """Write (or add ``c``'s part to) the compose file ``file`` of the buildout directory."""
    path = Path(file)
    if not path.is_absolute():
        path = c.settings.buildout_directory / path
    found = services(c)
    gathered = c.shared.once(("compose", str(path)), lambda: ComposeFile(path))
    gathered.add(found, c.settings.buildout_directory)
    others = sorted(set(found) - {c.name})
    c.report(f"{path.name}: service {c.name} ({found[c.name].image})"
             + (f", and {', '.join(others)} it links to" if others else ""))
    return path
