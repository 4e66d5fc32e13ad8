"""Typed, validated settings of one host part, built from buildout's resolved options."""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import ConfigError

#: Options whose values are lists (one item per line), merged when a part extends another.
MERGED_OPTIONS = ("fabfiles", "pre-commands", "post-commands")

HOST_KEY_POLICIES = ("accept-new", "yes")

_PYTHON_VERSION = re.compile(r"^3\.\d{1,2}$")


class Secret(str):
    """A string that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('****')"


def lines(value: str | None) -> tuple[str, ...]:
    """Split a multi-line buildout value into its non-empty stripped lines."""
    if not value:
        return ()
    return tuple(line.strip() for line in value.splitlines() if line.strip())


def words(value: str | None) -> tuple[str, ...]:
    return tuple(value.split()) if value else ()


def parse_hoststring(value: str, *, part: str) -> tuple[str, int | None]:
    """``name``, ``name:port``, ``[v6addr]`` or ``[v6addr]:port`` -> (name, port)."""
    value = value.strip()
    m = re.fullmatch(r"\[(?P<v6>[0-9A-Fa-f:.%\w]+)\](?::(?P<p6>[^:]*))?", value)
    if m:
        name, port = m["v6"], m["p6"]
    elif value.count(":") == 1:
        name, port = value.split(":")
    elif value.count(":") > 1:  # only a bare IPv6 address has several colons
        name, port = value, None
        try:
            ipaddress.ip_address(value.split("%")[0])
        except ValueError:
            name = ""
    else:
        name, port = value, None
    if not name or not re.fullmatch(r"[\w.\-:%]+", name):
        raise ConfigError(f"option host = {value!r} is not a host name or address", host=part)
    if port is None:
        return name, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"option host = {value!r} has a bad port {port!r}", host=part)
    return name, int(port)


@dataclass(frozen=True)
class HostSettings:
    """Everything hostout knows about one host part. ``options`` keeps every raw option."""

    name: str
    hostname: str
    port: int | None
    user: str | None
    password: Secret | None
    identity_file: Path
    path: PurePosixPath
    buildout: str
    buildout_user: str | None
    effective_user: str | None
    buildout_group: str | None  # mandatory for the commands that create or chown files
    python_version: str
    hostos: str | None
    pre_commands: tuple[str, ...]
    post_commands: tuple[str, ...]
    sudo_parts: tuple[str, ...]
    parts: tuple[str, ...]
    include: tuple[str, ...]
    buildout_cache: str | None
    fabfiles: tuple[str, ...]
    plugins: tuple[str, ...]
    versionsfile: Path
    host_key_checking: str
    known_hosts: Path
    ssh_config: Path | None
    connect_timeout: float
    buildout_directory: Path
    options: Mapping[str, str] = field(repr=False)

    @property
    def hoststring(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{host}:{self.port}" if self.port else host

    def require(self, option: str) -> str:
        """The value of a mandatory option, or a ConfigError that names it."""
        value = self.options.get(option, "").strip()
        if not value:
            raise ConfigError(f"option {option} is required for this command", host=self.name)
        return value

    def __getattr__(self, item: str) -> str:
        # Extra options are available as attributes: ``settings.option1``.
        options = self.__dict__.get("options", {})
        key = item.replace("_", "-")
        for candidate in (item, key):
            if candidate in options:
                return options[candidate]
        raise AttributeError(f"host {self.__dict__.get('name')!r} has no option {item!r}")


def _get(options: Mapping[str, str], name: str) -> str | None:
    """An option by its dashed name, accepting hostout 1's underscore spelling too."""
    for key in (name, name.replace("-", "_")):
        value = options.get(key)
        if value is not None and value.strip():
            return value.strip()
    return None


def local_python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def build_settings(
    name: str,
    options: Mapping[str, str],
    *,
    buildout_directory: Path,
    plugins: tuple[str, ...] = (),
) -> HostSettings:
    """Validate one host part's resolved options into :class:`HostSettings`."""
    if not re.fullmatch(r"[\w.\-]+", name):
        raise ConfigError(f"part name {name!r} is not usable as a host name")

    hostname, port = parse_hoststring(_get(options, "host") or name, part=name)
    if (explicit_port := _get(options, "port")) is not None:
        if not explicit_port.isdigit() or not 0 < int(explicit_port) < 65536:
            raise ConfigError(f"option port = {explicit_port!r} is not a port number", host=name)
        port = int(explicit_port)

    path = PurePosixPath(_get(options, "path") or f"/var/buildout/{name}")
    if not path.is_absolute():
        raise ConfigError(f"option path = {str(path)!r} must be an absolute path", host=name)

    python_version = _get(options, "python-version") or local_python_version()
    if not _PYTHON_VERSION.match(python_version):
        raise ConfigError(
            f"option python-version = {python_version!r} is not a Python 3 major.minor "
            "such as 3.11",
            host=name,
        )

    policy = (_get(options, "host-key-checking") or "accept-new").lower()
    if policy not in HOST_KEY_POLICIES:
        raise ConfigError(
            f"option host-key-checking = {policy!r}: use one of {', '.join(HOST_KEY_POLICIES)}",
            host=name,
        )

    timeout_text = _get(options, "connect-timeout") or "10"
    try:
        timeout = float(timeout_text)
    except ValueError:
        timeout = -1.0
    if timeout <= 0:
        raise ConfigError(f"option connect-timeout = {timeout_text!r} must be seconds > 0",
                          host=name)

    def local_path(value: str | None) -> Path | None:
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else buildout_directory / p

    user = _get(options, "user")
    buildout_user = _get(options, "buildout-user") or user
    password = _get(options, "password")
    return HostSettings(
        name=name,
        hostname=hostname,
        port=port,
        user=user,
        password=Secret(password) if password else None,
        # The seed's default: ${hostname}_key in the buildout directory, made by bootstrap.
        identity_file=local_path(_get(options, "identity-file") or _get(options, "key")
                                 or f"{name}_key"),
        path=path,
        buildout=_get(options, "buildout") or "buildout.cfg",
        buildout_user=buildout_user,
        effective_user=_get(options, "effective-user") or buildout_user,
        buildout_group=_get(options, "buildout-group"),
        python_version=python_version,
        hostos=_get(options, "hostos"),
        pre_commands=lines(options.get("pre-commands")),
        post_commands=lines(options.get("post-commands")),
        sudo_parts=words(options.get("sudo-parts")),
        parts=words(options.get("parts")),
        include=lines(options.get("include")),
        buildout_cache=_get(options, "buildout-cache"),
        fabfiles=lines(options.get("fabfiles")),
        plugins=plugins,
        versionsfile=local_path(_get(options, "versionsfile") or "hostoutversions.cfg")
        or buildout_directory / "hostoutversions.cfg",
        host_key_checking=policy,
        known_hosts=local_path(_get(options, "known-hosts") or "~/.ssh/known_hosts")
        or Path.home() / ".ssh" / "known_hosts",
        ssh_config=local_path(_get(options, "ssh-config")),
        connect_timeout=timeout,
        buildout_directory=buildout_directory,
        options=dict(options),
    )
