"""``api.env``: Fabric 1's env over the running host.

Reads: Fabric's own keys (``host_string``, ``user``, ``cwd``...), ``hostout`` and
``superfun``, then the host's options with hostout's defaults (``env['buildout-user']``,
``env.buildout_user``), then what commands stored in env.

Writes keep Fabric 1's meaning or fail with one line, never silently:

- ``cwd``/``lcwd``: where the following remote/local commands run (like ``cd``/``lcd``);
- ``user``: the buildout user means "as the buildout user" (``asbuildoutuser``), the login
  user "as the login user"; any other name, and ``hosts``, ``host_string``, ``host``,
  ``port``, ``password``, ``key_filename`` log in elsewhere for the rest of the invocation
  (``Context.retarget``: the next command connects anew, host keys checked);
- hostout's own options (``path``, ``python-version``...) are refused: bin/buildout
  validated them and hostout's steps read those settings;
- anything else is kept for later reads of env on this host (``warn_only`` included).
"""

from __future__ import annotations

import re
from typing import Any

from ..commands.context import Context
from ..config.settings import own_option, parse_hoststring
from ..errors import ConfigError, HostoutError
from ..shell import Account
from .current import ctx, login_user, state, user_of
from .handle import HostoutHandle
from .options import lookup

#: Fabric 1 env keys that say where and as whom to connect.
TARGET_KEYS = ("user", "hosts", "host_string", "host", "port", "password", "key_filename")
#: Keys that belong to hostout, never set by a command.
FIXED_KEYS = ("hostout", "superfun", "all_hosts")
_SSH = "ssh settings come from ~/.ssh/config (or the ssh-config option) and connect-timeout"
_HOSTS = "hosts come from the command line (bin/hostout h1 h2 ..., --parallel, --serial)"
#: Fabric 1 env keys whose meaning hostout 2 does not give, and what to do instead.
REFUSED = {
    "disable_known_hosts": "host keys are always checked (host-key-checking option)",
    "reject_unknown_hosts": "set host-key-checking = yes in the part",
    "gateway": "use ProxyJump in ~/.ssh/config (or the ssh-config option)",
    "forward_agent": _SSH, "no_agent": _SSH, "no_keys": _SSH, "use_ssh_config": _SSH,
    "keepalive": _SSH, "connection_attempts": _SSH, "timeout": _SSH,
    "command_timeout": "put `timeout SECONDS` in front of the command",
    "shell": "remote commands run in the login user's shell",
    "sudo_prefix": "hostout runs sudo itself (its own prompt, the password on stdin)",
    "sudo_prompt": "hostout runs sudo itself (its own prompt, the password on stdin)",
    "parallel": _HOSTS, "pool_size": _HOSTS, "roledefs": _HOSTS, "roles": _HOSTS,
    "skip_bad_hosts": _HOSTS, "abort_on_prompts": _HOSTS, "eagerly_disconnect": _HOSTS,
    "ok_ret_codes": "use warn_only=True and read .return_code",
}


def _norm(name: str) -> str:
    return name.replace("-", "_")


def _read_special(c: Context, name: str) -> Any:
    s = c.settings
    st = state(c)
    user = user_of(c, st.account)
    if name == "hostout":
        return HostoutHandle()
    if name == "superfun":
        return c.super
    if name == "host_string":
        return f"{user}@{s.hoststring}"
    if name == "host":
        return s.hostname
    if name in ("hosts", "all_hosts"):
        return [s.hoststring]
    if name == "port":
        return s.port or 22
    if name == "user":
        return user
    if name == "password":
        return s.password
    if name == "key_filename":
        return [str(s.identity_file)] if s.identity_file.is_file() else None
    if name == "path":
        return str(s.path)
    if name == "cwd":
        return c.cwd or ""
    if name == "lcwd":
        return c.lcwd
    raise KeyError(name)


SPECIAL = {"hostout", "superfun", "host_string", "host", "hosts", "all_hosts", "port", "user",
           "password", "key_filename", "path", "cwd", "lcwd"}


def read(name: str) -> Any:
    c = ctx()
    for key in (name, _norm(name)):
        if key in c.env:
            return c.env[key]
    if _norm(name) in SPECIAL:
        return _read_special(c, _norm(name))
    if _norm(name) == "warn_only":
        return False
    try:
        return lookup(c, name)
    except KeyError:
        raise AttributeError(f"env has no {name!r} (no such option in host {c.name})") \
            from None


def write(name: str, value: Any) -> None:
    """Set one env key with Fabric 1's meaning (see the module docstring)."""
    c = ctx()
    key = _norm(name)
    if key in FIXED_KEYS:
        raise HostoutError(f"api.env.{key} is hostout's own and cannot be set", host=c.name)
    if key in REFUSED:
        raise HostoutError(f"api.env.{key} is not supported by hostout 2: {REFUSED[key]}",
                           host=c.name)
    if key == "shell_env" and not isinstance(value, dict):
        raise ConfigError("api.env.shell_env must be a dict of environment variables",
                          host=c.name)
    if key in ("cwd", "lcwd"):  # until the innermost cd block, or the command, ends
        c.set_cwd(str(value) if value else None, local=key == "lcwd")
    elif key in TARGET_KEYS:
        _retarget(c, key, value)
    elif key == "path" or own_option(name):
        try:
            same = read(name) == value
        except AttributeError:
            same = False
        if not same:
            hint = ("; to run commands elsewhere use `with api.cd(dir)` (hostout's sudo and "
                    "runescalatable commands run in your home while path does not exist yet)"
                    if key == "path" else "")
            raise ConfigError(
                f"api.env.{name} = {value!r}: {name.replace('_', '-')} is hostout's own "
                f"option and cannot change while a command runs; set it in the part "
                f"[{c.name}] and run bin/buildout{hint}", host=c.name)
    else:
        c.env[name] = value


def delete(name: str) -> None:
    c = ctx()
    for key in (name, _norm(name)):
        c.env.pop(key, None)


_HOSTSTRING = re.compile(r"^(?:(?P<user>[^@]+)@)?(?P<host>.+)$")


def _retarget(c: Context, key: str, value: Any) -> None:
    st = state(c)
    if key == "user":
        name = str(value)
        if name == user_of(c, Account.BUILDOUT) and name != login_user(c):
            st.base = Account.BUILDOUT
        elif name == login_user(c):
            st.base = Account.LOGIN
        else:
            st.base = Account.LOGIN
            c.retarget(user=name)
        return
    if key in ("hosts", "host_string", "host"):
        if key == "hosts":
            hosts = [value] if isinstance(value, str) else list(value or ())
            if len(hosts) != 1:
                raise ConfigError(
                    f"api.env.hosts = {value!r}: a host part is one server; make a part per "
                    "server and name them on the command line (bin/hostout h1 h2 cmd)",
                    host=c.name)
            value = hosts[0]
        m = _HOSTSTRING.match(str(value))
        if m is None or not str(value):
            raise ConfigError(f"api.env.{key} = {value!r} is not a host", host=c.name)
        hostname, port = parse_hoststring(m["host"], part=c.name)
        changes: dict[str, Any] = {"hostname": hostname}
        if port is not None:
            changes["port"] = port
        if m["user"]:
            changes["user"] = m["user"]
            st.base = Account.LOGIN
        c.retarget(**changes)
    elif key == "port":
        try:
            port = int(value)
        except (TypeError, ValueError):
            port = 0
        if not 0 < port < 65536:
            raise ConfigError(f"api.env.port = {value!r} is not a port number", host=c.name)
        c.retarget(port=port)
    elif key == "password":
        from ..config.settings import Secret

        c.retarget(password=Secret(value) if value else None)
    elif key == "key_filename":
        from pathlib import Path

        files = [value] if isinstance(value, str) else list(value or ())
        if len(files) != 1:
            raise ConfigError("api.env.key_filename: give one key file (hostout logs the "
                              "buildout user in with one key)", host=c.name)
        path = Path(files[0]).expanduser()
        c.retarget(identity_file=path if path.is_absolute()
                   else c.settings.buildout_directory / path)


class Env:
    """``api.env``: attributes and items over the running host (see the module docstring)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return read(name)

    def __setattr__(self, name: str, value: Any) -> None:
        write(name, value)

    def __delattr__(self, name: str) -> None:
        delete(name)

    def __getitem__(self, name: str) -> Any:
        try:
            return read(name)
        except AttributeError as err:
            raise KeyError(name) from err

    def __setitem__(self, name: str, value: Any) -> None:
        write(name, value)

    def __delitem__(self, name: str) -> None:
        delete(name)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return read(name)
        except AttributeError:
            return default

    def setdefault(self, name: str, default: Any = None) -> Any:
        try:
            return read(name)
        except AttributeError:
            write(name, default)
            return default

    def update(self, values: dict[str, Any] | None = None, **more: Any) -> None:
        for name, value in {**(values or {}), **more}.items():
            write(name, value)

    def __contains__(self, name: str) -> bool:
        try:
            read(name)
        except AttributeError:
            return False
        return True


env = Env()
