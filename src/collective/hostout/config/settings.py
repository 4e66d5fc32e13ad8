"""Typed, validated settings of one host part, built from buildout's resolved options.

This is the one place an option's text becomes a value: defaults, validation (values that
cannot be a safe path, user or group name are refused here, before anything connects) and
the derived facts commands share (the server layout, the accounts).
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath

from ..errors import ConfigError
from .images import ImageSettings, image_settings

#: Options whose values are lists (one item per line), merged when a part extends another.
MERGED_OPTIONS = ("fabfiles", "pre-commands", "post-commands")

HOST_KEY_POLICIES = ("accept-new", "yes")

#: The options hostout itself reads (:func:`build_settings`, the recipe's ``extends``):
#: validated by bin/buildout, fixed for an invocation. Commands may set other options for
#: later commands (``Context.set_option``), never these.
OWN_OPTIONS = frozenset({
    "recipe", "extends", "host", "port", "user", "password", "identity-file", "key", "path",
    "buildout", "buildout-user", "effective-user", "buildout-group", "python-version",
    "hostos", "pre-commands", "post-commands", "sudo-parts", "parts", "include",
    "buildout-cache", "system-packages", "fabfiles", "versionsfile", "host-key-checking",
    "known-hosts", "ssh-config", "connect-timeout", "tunnel", "releases", "keep-releases",
    "healthcheck", "healthcheck-timeout", "lock-timeout",
    "docker-image", "docker-name", "docker-ports", "docker-environment", "docker-links",
})


#: hostout 1 options hostout 2 gives no meaning, and what replaces each: set, they fail
#: bin/buildout in one line rather than being ignored.
HOSTOUT1_OPTIONS = {
    "buildout-password": "the buildout user logs in with the key of identity-file, which "
                         "bootstrap_users authorises; remove buildout-password",
    "no-sudo": "bootstrap and setowners need the login user's sudo; bootstrap the server "
               "once with a sudo-capable user, then deploys run as buildout-user",
    "force-python-compile": "Python comes from the OS's packages (python-version, "
                            "hostos, system-packages); remove it",
    "system-python-use-not": "Python comes from the OS's packages (python-version, "
                             "hostos, system-packages); remove it",
    "python-path": "buildout runs in a venv of the OS's pythonX.Y; remove it",
    "python-prefix": "buildout runs in a venv of the OS's pythonX.Y; remove it",
    "shell": "remote commands run in the login user's shell; remove it",
}


def own_option(name: str) -> bool:
    """Whether ``name`` (dashed, or hostout 1's underscore spelling) is one of hostout's."""
    return name.replace("_", "-") in OWN_OPTIONS

_PYTHON_VERSION = re.compile(r"^(?P<major>\d+)\.(?P<minor>\d{1,2})(\.\d+)?$")

#: A path on the server hostout puts in commands: absolute, no shell or glob characters.
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._+@%/-]*$")
#: A relative file name in the buildout (the ``buildout`` option, include entries).
SAFE_RELATIVE = re.compile(r"^[A-Za-z0-9._+@%-][A-Za-z0-9._+@%/-]*$")
#: A user or group name as useradd/groupadd accept them (Debian's default NAME_REGEX).
SAFE_ACCOUNT = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
#: A buildout part name.
SAFE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
#: A health check URL: http(s), a host, no white space or quotes (it travels quoted anyway).
HEALTH_URL = re.compile(r"^https?://[^\s/'\"`\\]+(/[^\s'\"`\\]*)?$")
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


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
class Layout:
    """Where things are on the server, derived from ``path``, ``buildout-cache`` and
    ``releases``.

    The release layout (``releases = true``, the default)::

        path -> path.hostout/current      a symlink: where the running buildout is
        path.hostout/                     ``home``: owned by buildout-user
          current -> releases/ID          switched atomically (rename of a symlink)
          releases/ID/                    one buildout per deploy that changed anything
            var -> ../../var              every release shares var/
          var/                            the application's data
          staging/                        the cfg files of the next release (uploadbuildout)
          venv/                           Python with zc.buildout: runs every release's build
          buildout-cache/                 (default) downloads/dist/ and eggs/, shared
          lock, history.jsonl             the deploy lock and the history

    The in-place layout (``releases = false``: e.g. inside a docker image): ``path`` is the
    venv and the buildout at once (``path/bin/buildout``, ``path/var``, by default
    ``path/buildout-cache``); only the lock and the history live in ``path.hostout``.
    """

    path: PurePosixPath
    cache: PurePosixPath
    releases: bool = False  # the release layout (else: in place)

    @property
    def home(self) -> PurePosixPath:
        """``path.hostout``: beside path, so path itself can be a symlink."""
        return self.path.parent / f"{self.path.name}.hostout"

    @property
    def state(self) -> PurePosixPath:
        """Where the lock and the history are, in either layout."""
        return self.home

    @property
    def lock(self) -> PurePosixPath:
        return self.state / "lock"

    @property
    def history(self) -> PurePosixPath:
        return self.state / "history.jsonl"

    @property
    def releases_dir(self) -> PurePosixPath:
        return self.home / "releases"

    @property
    def current(self) -> PurePosixPath:
        """The symlink naming the current release (release layout)."""
        return self.home / "current"

    def release(self, release_id: str) -> PurePosixPath:
        return self.releases_dir / release_id

    @property
    def venv(self) -> PurePosixPath:
        """The venv with zc.buildout that runs the build."""
        return self.home / "venv" if self.releases else self.path

    @property
    def inputs(self) -> PurePosixPath:
        """Where uploadbuildout puts the cfg files: the next release's, or path itself."""
        return self.home / "staging" if self.releases else self.path

    @property
    def downloads(self) -> PurePosixPath:
        return self.cache / "downloads"

    @property
    def dist(self) -> PurePosixPath:
        return self.downloads / "dist"

    @property
    def eggs(self) -> PurePosixPath:
        return self.cache / "eggs"

    @property
    def buildout_script(self) -> PurePosixPath:
        return self.venv / "bin" / "buildout"

    @property
    def python(self) -> PurePosixPath:
        return self.venv / "bin" / "python"

    @property
    def var(self) -> PurePosixPath:
        return self.home / "var" if self.releases else self.path / "var"


@dataclass(frozen=True)
class Accounts:
    """Who is who on the server: the sudo-capable login user, the buildout user (owns the
    code, runs buildout), the effective user (owns var/, runs the app), their group."""

    login: str
    buildout_user: str
    effective_user: str
    group: str


@dataclass(frozen=True)
class HostSettings:
    """Everything hostout knows about one host part. ``options`` keeps every raw option,
    for plugins; hostout's own code reads the typed fields."""

    name: str
    hostname: str
    port: int | None
    user: str | None  # None: ~/.ssh/config's User, else the local user
    password: Secret | None
    identity_file: Path
    path: PurePosixPath
    buildout_cfg: str  # the ``buildout`` option: the cfg built on the server
    buildout_user: str | None  # None: the login user
    effective_user: str | None  # None: the buildout user
    buildout_group: str | None  # mandatory for the commands that create or chown files
    python_version: str
    hostos: str | None
    pre_commands: tuple[str, ...]
    post_commands: tuple[str, ...]
    sudo_parts: tuple[str, ...]
    parts: tuple[str, ...]
    include: tuple[str, ...]
    buildout_cache: PurePosixPath | None
    system_packages: tuple[str, ...]
    fabfiles: tuple[str, ...]
    plugins: tuple[str, ...]
    versionsfile: Path
    host_key_checking: str
    known_hosts: Path
    ssh_config: Path | None
    connect_timeout: float
    buildout_directory: Path
    image: ImageSettings  # the docker-* options (bin/hostout PART docker / compose)
    options: Mapping[str, str] = field(repr=False)
    tunnel: bool = False  # the server downloads through hostout's proxy, over SSH
    releases: bool = True  # the release layout; False: in place (see Layout)
    keep_releases: int = 5  # releases kept, the current and the previous always among them
    healthcheck: str | None = None  # an http(s) URL fetched on the server, or a command
    healthcheck_timeout: float = 60.0  # seconds deploy waits for the health check
    lock_timeout: float = 30.0  # a lock whose holder stopped refreshing it is stale after

    @property
    def hoststring(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{host}:{self.port}" if self.port else host

    @cached_property
    def layout(self) -> Layout:
        cache = self.buildout_cache or PurePosixPath("buildout-cache")
        base = Layout(self.path, cache, self.releases).home if self.releases else self.path
        return Layout(self.path, cache if cache.is_absolute() else base / cache,
                      self.releases)

    @property
    def healthcheck_url(self) -> str | None:
        """The health check when it is a URL (fetched on the server), else None."""
        hc = self.healthcheck
        return hc if hc is not None and HEALTH_URL.match(hc) else None

    def accounts(self, login: str) -> Accounts:
        """The accounts, given who the login user turned out to be. ``buildout-group`` is
        mandatory (the seed): a ConfigError naming it, before anything connects."""
        group = self.require("buildout-group")
        buildout_user = self.buildout_user or login
        return Accounts(login, buildout_user, self.effective_user or buildout_user, group)

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


TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0", "")


def boolean(value: str | None, option: str, part: str, default: bool = False) -> bool:
    """An on/off option: true/yes/on/1 or false/no/off/0 (any case); unset: ``default``."""
    if value is None:
        return default
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"option {option} = {value!r} is not true or false", host=part)


def local_python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def python_version(value: str | None, *, part: str) -> str:
    """``3.X`` from the option (hostout 1 also took ``3.X.Y``: trimmed), else this Python's."""
    if value is None:
        return local_python_version()
    m = _PYTHON_VERSION.match(value)
    if m is None:
        raise ConfigError(f"option python-version = {value!r} is not a Python 3 version such "
                          "as 3.11", host=part)
    if m["major"] != "3":
        raise ConfigError(f"option python-version = {value!r} is not a Python 3 version: "
                          "hostout 2 deploys Python 3 buildouts only; set python-version to "
                          "the 3.X your buildout runs on (or leave it out to use this "
                          "machine's)", host=part)
    return f"3.{int(m['minor'])}"


def _safe(value: str | None, pattern: re.Pattern[str], option: str, part: str,
          what: str) -> str | None:
    if value is not None and not pattern.match(value):
        raise ConfigError(f"option {option} = {value!r} is not {what}", host=part)
    return value


def _safe_path(value: str, option: str, part: str) -> PurePosixPath:
    if not value.startswith("/"):
        raise ConfigError(f"option {option} = {value!r} must be an absolute path", host=part)
    _safe(value, SAFE_PATH, option, part, "a safe path (letters, digits and ._+@%/- only)")
    path = PurePosixPath(value)
    if ".." in path.parts:
        raise ConfigError(f"option {option} = {value!r} must not contain '..'", host=part)
    return path


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
    for key, why in HOSTOUT1_OPTIONS.items():
        if _get(options, key) is not None:
            raise ConfigError(f"option {key} is hostout 1's and has no meaning in hostout 2: "
                              f"{why}", host=name)

    hostname, port = parse_hoststring(_get(options, "host") or name, part=name)
    if (explicit_port := _get(options, "port")) is not None:
        if not explicit_port.isdigit() or not 0 < int(explicit_port) < 65536:
            raise ConfigError(f"option port = {explicit_port!r} is not a port number", host=name)
        port = int(explicit_port)

    path = _safe_path(_get(options, "path") or f"/var/buildout/{name}", "path", name)
    cache_text = _get(options, "buildout-cache")
    cache: PurePosixPath | None = None
    if cache_text is not None:
        if cache_text.startswith("/"):
            cache = _safe_path(cache_text, "buildout-cache", name)
        else:
            _safe(cache_text, SAFE_RELATIVE, "buildout-cache", name, "a safe path")
            cache = PurePosixPath(cache_text)
            if ".." in cache.parts:
                raise ConfigError(f"option buildout-cache = {cache_text!r} must not contain "
                                  "'..'", host=name)

    policy = (_get(options, "host-key-checking") or "accept-new").lower()
    if policy not in HOST_KEY_POLICIES:
        raise ConfigError(
            f"option host-key-checking = {policy!r}: use one of {', '.join(HOST_KEY_POLICIES)}",
            host=name,
        )

    timeout = seconds(options, "connect-timeout", "10", name)

    def local_path(value: str | None) -> Path | None:
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else buildout_directory / p

    account = "a user or group name (lower-case letters, digits, _ and -)"
    user = _safe(_get(options, "user"), re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._@-]*$"), "user",
                 name, "a login name")
    buildout_user = _safe(_get(options, "buildout-user"), SAFE_ACCOUNT, "buildout-user", name,
                          account) or user
    effective_user = _safe(_get(options, "effective-user"), SAFE_ACCOUNT, "effective-user",
                           name, account)
    group = _safe(_get(options, "buildout-group"), SAFE_ACCOUNT, "buildout-group", name,
                  account)
    buildout_cfg = _safe(_get(options, "buildout") or "buildout.cfg", SAFE_RELATIVE, "buildout",
                         name, "a file name in the buildout directory")
    assert buildout_cfg is not None
    if ".." in PurePosixPath(buildout_cfg).parts:
        raise ConfigError(f"option buildout = {buildout_cfg!r} must be inside the buildout "
                          "directory", host=name)
    part_lists = {key: words(options.get(key)) for key in ("parts", "sudo-parts")}
    for key, parts in part_lists.items():
        for part in parts:
            _safe(part, SAFE_PART, key, name, "a list of part names")
    system_packages = words(options.get("system-packages"))
    for package in system_packages:
        _safe(package, re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_:=-]*$"), "system-packages", name,
              "a list of package names")
    password = _get(options, "password")
    releases = _flag(_get(options, "releases"), "releases", name, default=True)
    if releases and path.parent == path:
        raise ConfigError("option path = '/' cannot hold releases; choose a directory such "
                          "as /var/buildout/NAME", host=name)
    keep_text = _get(options, "keep-releases") or "5"
    if not keep_text.isdigit() or int(keep_text) < 2:
        raise ConfigError(f"option keep-releases = {keep_text!r} must be a whole number >= 2 "
                          "(the current and the previous release are always kept; "
                          "releases = false deploys in place)", host=name)
    healthcheck = _get(options, "healthcheck")
    if healthcheck is not None:
        if "\n" in healthcheck:
            raise ConfigError("option healthcheck must be one URL or one command line",
                              host=name)
        if healthcheck.startswith(("http:", "https:")) and not HEALTH_URL.match(healthcheck):
            raise ConfigError(f"option healthcheck = {healthcheck!r} is not an http(s) URL "
                              "such as http://127.0.0.1:8080/", host=name)
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
        buildout_cfg=buildout_cfg,
        buildout_user=buildout_user,
        effective_user=effective_user or buildout_user,
        buildout_group=group,
        python_version=python_version(_get(options, "python-version"), part=name),
        hostos=_safe(_get(options, "hostos"), re.compile(r"^[a-z][a-z0-9_]*$"), "hostos", name,
                     "an OS family name such as debian, redhat or alpine"),
        pre_commands=lines(options.get("pre-commands")),
        post_commands=lines(options.get("post-commands")),
        sudo_parts=part_lists["sudo-parts"],
        parts=part_lists["parts"],
        include=lines(options.get("include")),
        buildout_cache=cache,
        system_packages=system_packages,
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
        image=image_settings(name, options),
        options=dict(options),
        tunnel=boolean(_get(options, "tunnel"), "tunnel", name),
        releases=releases,
        keep_releases=int(keep_text),
        healthcheck=healthcheck,
        healthcheck_timeout=seconds(options, "healthcheck-timeout", "60", name),
        lock_timeout=seconds(options, "lock-timeout", "30", name, least=5),
    )


def _flag(value: str | None, option: str, part: str, *, default: bool) -> bool:
    if value is None:
        return default
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise ConfigError(f"option {option} = {value!r} must be true or false", host=part)


def seconds(options: Mapping[str, str], option: str, default: str, part: str, *,
            least: float = 0.0) -> float:
    """Option ``option`` as seconds (up to a day; ``default`` where unset), or a ConfigError
    naming the option and its value. For plugins' timeouts too."""
    text = _get(options, option) or default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0 or value < least or value > 86400:
        raise ConfigError(f"option {option} = {text!r} must be seconds"
                          + (f" >= {least:g}" if least else " > 0"), host=part)
    return value
