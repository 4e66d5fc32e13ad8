"""hostout.cloud's options, checked (hostout 1's names accepted)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ...config.settings import SAFE_PART, seconds
from ...errors import ConfigError

DEFAULT_TIMEOUT = 300.0
#: ``provider-ARG`` options whose values are credentials: masked wherever hostout prints.
SECRET_WORDS = ("key", "secret", "token", "password", "passwd", "credential")


@dataclass(frozen=True)
class CloudOptions:
    provider: str  # a Libcloud compute provider (dummy, ec2, ...), podman, or module:Class
    arguments: Mapping[str, str]  # the driver's constructor arguments (provider-ARG)
    name: str  # the VM's name (vm-name; hostout 1: hostname)
    size: str | None  # a size's id or name (hostout 1: hostsize_name)
    ram: int | None  # MB: the smallest size with at least this much (hostout 1: hostsize)
    image: str | None  # an image's id, or the start of its name (hostout 1: imageid)
    location: str | None  # a location's id or name
    extra: Mapping[str, str] = field(default_factory=dict)  # ex_* arguments of create_node
    timeout: float = DEFAULT_TIMEOUT  # seconds to wait for a VM to run and answer SSH

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(v for k, v in self.arguments.items()
                     if any(w in k.lower() for w in SECRET_WORDS) and v)

    @classmethod
    def of(cls, options: Mapping[str, str], host: str) -> CloudOptions:
        def get(*names: str) -> str | None:
            for name in names:
                value = (options.get(name) or "").strip()
                if value:
                    return value
            return None

        provider = get("provider", "hosttype")
        if provider is None:
            raise ConfigError("hostout.cloud needs option provider (a Libcloud provider such "
                              "as ec2 or digitalocean, or podman for local test hosts)",
                              host=host)
        arguments = {key.removeprefix("provider-").replace("-", "_"): value.strip()
                     for key, value in options.items()
                     if key.startswith("provider-") and value.strip()}
        if get("hosttype"):  # hostout 1 named the credentials key and secret
            for old in ("key", "secret"):
                if get(old) and old not in arguments:
                    arguments[old] = get(old) or ""
        name = get("vm-name", "hostname") or host
        if not SAFE_PART.match(name):
            raise ConfigError(f"option vm-name = {name!r} is not a usable VM name (letters, "
                              "digits, ., _ and -)", host=host)
        ram_text = get("hostsize", "ram")
        ram = None
        if ram_text is not None:
            if not ram_text.isdigit():
                raise ConfigError(f"option hostsize = {ram_text!r} is not megabytes",
                                  host=host)
            ram = int(ram_text)
        timeout = seconds(options, "cloud-timeout", str(DEFAULT_TIMEOUT), host)
        extra = {"ex_" + re.sub(r"^ex[-_]", "", k).replace("-", "_"): v.strip()
                 for k, v in options.items() if re.match(r"^ex[-_]\w", k) and v.strip()}
        return cls(provider, arguments, name, get("size", "hostsize_name", "hostsize-name"),
                   ram, get("image", "imageid"), get("location"), extra, timeout)
