"""What a server runs, and the commands that give it the Python hostout needs.

Pure data in, commands out: the plans are unit-tested for every OS family without a host.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ..errors import UnsupportedSystem
from ..shell import RemoteCommand, join, q

APT_ENV = "DEBIAN_FRONTEND=noninteractive"
# A server with no way out should fail in seconds, not minutes of retries; and a server needs
# no translated package descriptions (6 of the 16 MB an update of Debian 12 fetches).
APT_QUICK = ("-o Acquire::Retries=0 -o Acquire::http::Timeout=15 -o Acquire::https::Timeout=15 "
             "-o Acquire::Languages=none")


@dataclass(frozen=True)
class OsRelease:
    """The fields of /etc/os-release hostout cares about."""

    id: str
    like: tuple[str, ...] = ()
    version_id: str = ""
    codename: str = ""
    pretty: str = ""

    @classmethod
    def parse(cls, text: str) -> OsRelease:
        fields: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip():
                words = shlex.split(value, posix=True) if value.strip() else [""]
                fields[key.strip()] = words[0] if words else ""
        return cls(
            id=fields.get("ID", "").lower(),
            like=tuple(fields.get("ID_LIKE", "").lower().split()),
            version_id=fields.get("VERSION_ID", ""),
            codename=fields.get("VERSION_CODENAME", ""),
            pretty=fields.get("PRETTY_NAME", fields.get("ID", "unknown")),
        )

    @property
    def family(self) -> str:
        """debian, redhat or alpine (what ``hostos`` names), or the raw ID."""
        ids = (self.id, *self.like)
        for family, members in FAMILIES.items():
            if any(i in members for i in ids):
                return family
        return self.id or "unknown"


FAMILIES = {
    "debian": ("debian", "ubuntu", "linuxmint", "raspbian"),
    "redhat": ("rhel", "centos", "fedora", "rocky", "almalinux", "redhat", "ol"),
    "alpine": ("alpine",),
}


def python_binary(version: str) -> str:
    return f"python{version}"


def probe_python(version: str, python: str | None = None) -> RemoteCommand:
    """Exit 0 (and print the platform facts) when ``pythonX.Y`` (or ``python``) with venv
    support is there."""
    code = ("import sys, sysconfig, venv, ensurepip; "
            "print(sysconfig.get_platform(), '%d.%d' % sys.version_info[:2], "
            "'%d.%d.%d' % sys.version_info[:3])")
    return RemoteCommand.argv([python or python_binary(version), "-c", code])


#: What ``missing_packages`` prints for each package the server lacks.
MISSING = "missing-package "


def missing_packages(packages: tuple[str, ...]) -> str:
    """Shell text printing ``missing-package NAME`` for each of ``packages`` the server's
    package manager (dpkg, rpm or apk, whichever it has) does not have installed."""
    if not packages:
        return "true"
    names = join(packages)
    return (f"for p in {names}; do "
            'if command -v dpkg-query >/dev/null 2>&1; then '
            """dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; """
            'elif command -v rpm >/dev/null 2>&1; then rpm -q "$p" >/dev/null 2>&1; '
            'elif command -v apk >/dev/null 2>&1; then apk info -e "$p" >/dev/null 2>&1; '
            'else false; fi '
            f'|| echo {q(MISSING)}"$p"; done')


def install_packages(release: OsRelease, packages: tuple[str, ...],
                     hostos: str | None = None) -> list[RemoteCommand]:
    """Root commands that install more OS packages (``system-packages`` added later)."""
    family = (hostos or release.family).lower()
    if family in ("debian", "ubuntu"):
        install = (f"{APT_ENV} apt-get install -y -q --no-install-recommends {APT_QUICK} "
                   + join(packages))
        # lists may be stale or gone (a slim image): update once if the install fails
        return [RemoteCommand(f"{install} || {{ {APT_ENV} apt-get update -q {APT_QUICK} && "
                              f"{install}; }}", sudo=True, network=True)]
    if family in ("redhat", "fedora", "rhel", "centos"):
        return [RemoteCommand(join(["dnf", "install", "-y", *packages]), sudo=True,
                              network=True)]
    if family == "alpine":
        return [RemoteCommand(join(["apk", "add", "--no-cache", *packages]), sudo=True,
                              network=True)]
    raise UnsupportedSystem(
        f"hostout cannot install packages on {release.pretty} (family {family!r}); set hostos "
        "to debian, redhat or alpine, or install them yourself")


def install_python(release: OsRelease, version: str, hostos: str | None = None,
                   extra: tuple[str, ...] = ()) -> list[RemoteCommand]:
    """Root commands that install Python ``version`` with venv support on ``release``."""
    family = (hostos or release.family).lower()
    if family in ("debian", "ubuntu"):
        packages = [f"python{version}", f"python{version}-venv", "ca-certificates", *extra]
        return [
            RemoteCommand(f"{APT_ENV} apt-get update -q {APT_QUICK}", sudo=True, network=True),
            RemoteCommand(f"{APT_ENV} apt-get install -y -q --no-install-recommends {APT_QUICK} "
                          + join(packages), sudo=True, network=True),
        ]
    if family in ("redhat", "fedora", "rhel", "centos"):
        packages = [f"python{version}", "ca-certificates", *extra]
        return [RemoteCommand(join(["dnf", "install", "-y", *packages]), sudo=True,
                              network=True)]
    if family == "alpine":
        # Alpine ships one Python 3 per release; the probe afterwards checks it is ours.
        return [RemoteCommand(join(["apk", "add", "--no-cache", "python3", "ca-certificates",
                                    *extra]), sudo=True, network=True),
                RemoteCommand(f"ln -sf /usr/bin/python3 /usr/local/bin/{q(python_binary(version))}"
                              f" && python3 -c {q(_alpine_check(version))}", sudo=True)]
    raise UnsupportedSystem(
        f"hostout cannot install Python on {release.pretty} (family {family!r}); set hostos to "
        "debian, redhat or alpine, or install python" + version + " yourself")


def _alpine_check(version: str) -> str:
    major, minor = version.split(".")
    return (f"import sys; sys.exit(0 if sys.version_info[:2] == ({major}, {minor}) else "
            f"'this Alpine provides Python %d.%d, not {version}' % sys.version_info[:2])")
