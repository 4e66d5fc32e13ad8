"""``api.env.hostout``: a host part as hostout 1's ``HostOut`` object.

Its methods (``getRemoteBuildoutPath``...) read the host's settings; any other attribute is a
command of the host (``api.env.hostout.uploadeggs()``), run through ``Context.call``.
``hostouts`` holds every host part of the buildout; running another host's command from a
command holds that host's lock, so two threads never drive one host.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..commands.context import Context
from ..errors import HostoutError
from ..packaging import versions
from ..server import keys
from .current import ctx, login_user
from .options import LegacyOptions

#: hostout 1 attributes with no hostout 2 meaning, and what replaces each.
REPLACED = {
    "getHostoutFile": "hostout 2 writes and uploads hostout.cfg itself: call "
                      "api.env.hostout.uploadbuildout()",
    "getHostoutPackage": "hostout 2 uploads the cfg files itself: call "
                         "api.env.hostout.uploadbuildout()",
    "getHostoutPackageFiles": "hostout 2 uploads the cfg files itself: call "
                              "api.env.hostout.uploadbuildout()",
    "releaseid": "hostout 2 has no release id of the cfg files: call "
                 "api.env.hostout.uploadbuildout()",
    "localEggs": "develop eggs are released and shipped by api.env.hostout.uploadeggs(), "
                 "which returns {name: version}",
    "packages": "develop eggs are released and shipped by api.env.hostout.uploadeggs(), "
                "which returns {name: version}",
    "parseVersions": "use api.env.hostout.getVersions()",
    "http_proxy": "hostout 2 has no proxy attributes: a server with no way out gets Python "
                  "and every distribution shipped from here",
    "socks_proxy": "hostout 2 has no proxy attributes: a server with no way out gets Python "
                   "and every distribution shipped from here",
    "readsshconfig": "hostout 2 reads ~/.ssh/config (or ssh-config) when it connects",
    "resetenv": "api.env is the running host's; nothing to reset",
    "allcmds": "dir(api.env.hostout) lists the host's commands",
    "setupusers": "renamed bootstrap_users",
    "getpythonbin": "the buildout's Python is path/bin/python, a venv made by "
                    "bootstrap_buildout",
    # hostout 1's built-in commands that hostout 2 does not have
    "precommands": "pre-commands run inside the buildout command, before bin/buildout",
    "sudobuildout": "sudo-parts are built as root by the buildout command",
    "putrsync": "use api.env.hostout.put(dir), which uploads directories too",
    "bootstrap_python_buildout": "hostout 2 installs the OS's pythonX.Y "
                                 "(bootstrap_python); it does not compile Python",
    "bootstrap_allowsudo": "hostout 2 answers sudo's password prompt itself; it does not "
                           "edit /etc/sudoers",
    "copy_key": "bootstrap_users authorises the buildout user's key",
    "get_url": "a server with no way out gets everything shipped from here; download with "
               "api.run('curl ...') if the server can",
    "proxy_cmd": "hostout 2 sets no proxy for remote commands",
    "dockerfile": "not a hostout 2 command",
    "dockerbuild": "not a hostout 2 command",
}


class HostoutHandle:
    """One host part, as hostout 1 plugins use it. ``target`` None: the running host."""

    __slots__ = ("_target",)

    def __init__(self, target: Context | None = None) -> None:
        self._target = target

    def _c(self) -> Context:
        return self._target or ctx()

    # -- attributes hostout 1 plugins read ------------------------------------------------
    @property
    def options(self) -> LegacyOptions:
        return LegacyOptions(self._c())

    @property
    def name(self) -> str:
        return self._c().name

    @property
    def remote_dir(self) -> str:
        return str(self._c().path)

    @property
    def buildout_dir(self) -> str:
        return str(self._c().settings.buildout_directory)

    @property
    def host(self) -> str:
        return self._c().settings.hostname

    @property
    def port(self) -> int:
        return self._c().settings.port or 22

    @property
    def user(self) -> str:
        return login_user(self._c())

    @property
    def password(self) -> str | None:
        return self._c().settings.password

    @property
    def buildout_cache(self) -> str:
        return str(self._c().settings.layout.cache)

    @property
    def parts(self) -> list[str]:
        return list(self._c().settings.parts)

    @property
    def fabfiles(self) -> list[str]:
        return list(self._c().settings.fabfiles)

    @property
    def extends(self) -> list[str]:
        return [*self._c().settings.plugins, "collective.hostout"]

    @property
    def identityfile(self) -> str:
        return str(self._c().settings.identity_file)

    @property
    def hostouts(self) -> Hostouts:
        return Hostouts(self._c())

    # -- hostout 1's methods ---------------------------------------------------------------
    def getRemoteBuildoutPath(self) -> str:
        """The buildout's directory on the server (``path``)."""
        return str(self._c().path)

    def getLocalBuildoutPath(self) -> str:
        return str(self._c().settings.buildout_directory)

    def getDownloadCache(self) -> str:
        return str(self._c().settings.layout.downloads)

    def getEggCache(self) -> str:
        return str(self._c().settings.layout.eggs)

    def getParts(self) -> list[str]:
        return self.parts

    def getIdentityKey(self) -> tuple[str, str]:
        """(private key file, public key line) of the buildout user's login key, made
        (ed25519, 0600) when missing."""
        c = self._c()
        path = c.settings.identity_file
        return str(path), keys.ensure_key(path, comment=f"hostout-{c.name}")

    def _remote_commands(self, commands: tuple[str, ...]) -> list[str]:
        # hostout 1 rewrote local buildout paths in pre/post-commands to the remote path
        s = self._c().settings
        return [cmd.replace(str(s.buildout_directory), str(s.path)) for cmd in commands]

    def getPreCommands(self) -> list[str]:
        return self._remote_commands(self._c().settings.pre_commands)

    def getPostCommands(self) -> list[str]:
        return self._remote_commands(self._c().settings.post_commands)

    def getBuildoutDependencies(self) -> list[str]:
        s = self._c().settings
        return [str((s.buildout_directory / p).resolve()) for p in s.include]

    def getVersions(self) -> dict[str, str]:
        """The versions the local build used (the versionsfile), by name."""
        c = self._c()
        path = Path(c.settings.versionsfile)
        return versions.read(path, c.facts.versions_section) if path.is_file() else {}

    def runcommand(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._command(name)(*args, **kwargs)

    # -- commands -------------------------------------------------------------------------
    def _command(self, name: str) -> Callable[..., Any]:
        target = self._c()

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._target is None or target is ctx():
                return target.call(name, *args, **kwargs)
            if not target.lock.acquire(blocking=False):
                raise HostoutError(
                    f"host {target.name} is running its own commands in this invocation; "
                    f"leave it out of the hosts, or run them one after another (--serial)",
                    host=ctx().name)
            try:
                return target.call(name, *args, **kwargs)
            finally:
                target.lock.release()

        call.__name__ = name
        return call

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        c = self._c()
        if name in c.registry:  # a plugin's command wins over hostout 1's meaning
            return self._command(name)
        if name in REPLACED:
            raise HostoutError(f"api.env.hostout.{name} is hostout 1's: {REPLACED[name]}",
                               host=c.name)
        raise AttributeError(f"host {c.name} has no command or attribute {name!r}")

    def __dir__(self) -> list[str]:
        return sorted({*object.__dir__(self), *self._c().registry.names()})

    def __repr__(self) -> str:
        return f"<hostout {self._c().name}>"


class Hostouts(Mapping[str, HostoutHandle]):
    """``env.hostout.hostouts``: every host part of the buildout, by name."""

    def __init__(self, c: Context) -> None:
        self._c = c

    def __getitem__(self, name: str) -> HostoutHandle:
        if name not in self._c.peer_names:
            raise KeyError(name)
        return HostoutHandle(self._c.peer(name))

    def __iter__(self) -> Iterator[str]:
        return iter(self._c.peer_names)

    def __len__(self) -> int:
        return len(self._c.peer_names)
