"""The options of ``docker`` and ``compose``, typed: what image a host part becomes and how
compose runs it.

- ``docker-image``: the base image the build starts from (default ``debian:bookworm-slim``);
- ``docker-name``: the image's name, without a tag (default ``hostout/PART``);
- ``docker-ports``: container ports, ``8080``, ``8080:8080`` or ``127.0.0.1:8080:8080``
  (``/udp`` for UDP): exposed by the image, published by compose;
- ``docker-environment``: ``NAME=value`` lines compose sets for the service;
- ``docker-links``: ``PART`` or ``PART:ALIAS`` words: compose starts PART first and sets
  ``ALIAS_PORT_<port>_TCP_ADDR``/``_PORT`` variables for its ports, as Docker links did.

Read by :func:`collective.hostout.config.settings.build_settings` (``settings.image``); an
unsafe or malformed value is refused when bin/buildout runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigError

DEFAULT_BASE = "debian:bookworm-slim"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?/)?"  # noqa: E501
#: An image name without a tag (Docker's reference grammar).
NAME = re.compile(rf"^{_DOMAIN}{_COMPONENT}(?:/{_COMPONENT})*$")
#: A tag.
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
#: An image reference: a name, and a tag or a digest (or both).
REFERENCE = re.compile(
    rf"^{_DOMAIN}{_COMPONENT}(?:/{_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
    r"(?:@sha256:[0-9a-f]{64})?$")
_PORT = re.compile(r"^(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:]+\]):)?"
                   r"(?:(?P<published>\d{0,5}):)?(?P<port>\d{1,5})(?:/(?P<proto>tcp|udp))?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Port:
    """A container port, and where compose publishes it (None: a free port)."""

    port: int
    published: int | None = None
    ip: str | None = None
    protocol: str = "tcp"

    def compose(self) -> str:
        """As compose's ``ports`` list takes it."""
        text = str(self.port) if self.published is None else f"{self.published}:{self.port}"
        if self.ip:
            text = f"{self.ip}:{text}" if self.published is not None else \
                f"{self.ip}::{self.port}"
        return text + ("" if self.protocol == "tcp" else f"/{self.protocol}")


@dataclass(frozen=True)
class Link:
    """Another host part this one needs: compose starts it first; its ports are announced
    to this one in ``ALIAS_PORT_...`` variables."""

    part: str
    alias: str

    @property
    def prefix(self) -> str:
        return re.sub(r"[^A-Z0-9_]", "_", self.alias.upper())


@dataclass(frozen=True)
class ImageSettings:
    """What ``bin/hostout PART docker`` builds and ``compose`` runs."""

    part: str
    base: str = DEFAULT_BASE
    explicit_name: str | None = None
    ports: tuple[Port, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    links: tuple[Link, ...] = ()

    @property
    def name(self) -> str:
        """``docker-name``, else ``hostout/PART`` (lower-cased)."""
        return self.explicit_name or f"hostout/{self.part.lower()}"

    def checked_name(self) -> str:
        """The name, or a ConfigError when the part's name makes no image name."""
        if not NAME.match(self.name):
            raise ConfigError(f"hostout/{self.part} is not a valid image name: set docker-name "
                              "(such as myteam/app)", host=self.part)
        return self.name


def _words(value: str | None) -> list[str]:
    return value.split() if value else []


def _get(options: Mapping[str, str], key: str) -> str | None:
    value = options.get(key)
    return value.strip() if value is not None and value.strip() else None


def image_settings(part: str, options: Mapping[str, str]) -> ImageSettings:
    """The typed ``docker-*`` options of a host part; a ConfigError for a malformed one."""
    def bad(option: str, value: str, what: str) -> ConfigError:
        return ConfigError(f"option {option} = {value!r} is not {what}", host=part)

    base = _get(options, "docker-image") or DEFAULT_BASE
    if not REFERENCE.match(base):
        raise bad("docker-image", base, "an image reference such as debian:bookworm-slim")
    name = _get(options, "docker-name")
    if name is not None and not NAME.match(name):
        raise bad("docker-name", name, "an image name without a tag, such as myteam/app "
                  "(lower-case)")
    ports = []
    for word in _words(options.get("docker-ports")):
        m = _PORT.match(word)
        numbers = [int(n) for n in (m["port"], m["published"]) if n] if m else []
        if m is None or not all(0 < n < 65536 for n in numbers):
            raise bad("docker-ports", word, "a port such as 8080, 8080:8080 or "
                      "127.0.0.1:8080:8080")
        ports.append(Port(int(m["port"]), int(m["published"]) if m["published"] else None,
                          m["ip"], m["proto"] or "tcp"))
    environment = []
    for line in (options.get("docker-environment") or "").splitlines():
        if not line.strip():
            continue
        key, sep, value = line.strip().partition("=")
        if not sep or not _ENV_NAME.match(key.strip()):
            raise bad("docker-environment", line.strip(), "a NAME=value line")
        environment.append((key.strip(), value.strip()))
    links = []
    for word in _words(options.get("docker-links")):
        target, _, alias = word.partition(":")
        if not _PART.match(target) or (alias and not _ALIAS.match(alias)):
            raise bad("docker-links", word, "a host part, or PART:ALIAS")
        if target == part:
            raise bad("docker-links", word, "another part (a part cannot link to itself)")
        links.append(Link(target, alias or target))
    return ImageSettings(part, base, name, tuple(ports), tuple(environment), tuple(links))
