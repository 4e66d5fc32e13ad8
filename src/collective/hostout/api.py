"""Seed-style fabfiles: ``from collective.hostout import api`` for ``from fabric import api``.

A thin layer over the :class:`~collective.hostout.commands.context.Context` of the command
that is running (held in a context variable, so hosts running side by side never see each
other's): ``api.env`` shows the host's options as attributes, and ``run``, ``sudo``, ``put``,
``get``, ``cd``, ``lcd``, ``local``, ``settings``, ``hide`` and ``abort`` behave as Fabric 1's
did for hostout 1 fabfiles. ``api.env.superfun()`` calls the overridden command and
``api.env.hostout.<command>()`` any other command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from .commands.context import Context, current
from .errors import HostoutError

__all__ = ["abort", "cd", "env", "get", "hide", "lcd", "local", "put", "run", "settings",
           "show", "sudo"]


def _ctx() -> Context:
    try:
        return current.get()
    except LookupError:
        raise HostoutError(
            "collective.hostout.api is only usable inside a command run by bin/hostout"
        ) from None


class OutputString(str):
    """A command's stdout, with Fabric 1's result attributes (``return_code``,
    ``stderr``, ``succeeded``, ``failed``)."""

    return_code: int
    stderr: str

    @property
    def succeeded(self) -> bool:
        return self.return_code == 0

    @property
    def failed(self) -> bool:
        return not self.succeeded


class HostoutHandle:
    """``env.hostout``: the options and every command of the current host."""

    @property
    def options(self) -> dict[str, str]:
        return dict(_ctx().options)

    @property
    def name(self) -> str:
        return _ctx().name

    @property
    def remote_dir(self) -> str:
        return str(_ctx().path)

    def __getattr__(self, name: str) -> Any:
        return getattr(_ctx().commands, name)


class Env:
    """``api.env``: the running host's options (``option-name`` as ``option_name``)."""

    _special = {"hostout", "superfun", "host_string", "host", "user", "password", "path",
                "warn_only", "hosts"}

    def _lookup(self, name: str) -> Any:
        ctx = _ctx()
        if name in ctx.env:
            return ctx.env[name]
        s = ctx.settings
        special: dict[str, Any] = {
            "hostout": HostoutHandle(),
            "superfun": ctx.super,
            "host_string": s.hoststring,
            "host": s.hostname,
            "user": s.user,
            "password": s.password,
            "path": str(s.path),
            "warn_only": False,
            "hosts": [s.hoststring],
        }
        if name in special:
            return special[name]
        for key in (name, name.replace("_", "-")):
            if key in s.options:
                return s.options[key]
        raise AttributeError(f"env has no {name!r} (no such option in host {ctx.name})")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._lookup(name)

    def __setattr__(self, name: str, value: Any) -> None:
        _ctx().env[name] = value

    def __getitem__(self, name: str) -> Any:
        try:
            return self._lookup(name)
        except AttributeError as err:
            raise KeyError(name) from err

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self._lookup(name)
        except AttributeError:
            return default

    def __contains__(self, name: str) -> bool:
        return self.get(name, _missing) is not _missing


_missing = object()
env = Env()


def _result(fn: Any, *args: Any, **kwargs: Any) -> OutputString:
    ctx = _ctx()
    warn = bool(ctx.env.get("warn_only", False))
    hide = bool(ctx.env.get("_hide", False))
    res = fn(*args, warn=warn, hide=hide, **kwargs)
    out = OutputString(res.stdout.rstrip("\n"))
    out.return_code = res.exited
    out.stderr = res.stderr
    return out


def run(command: str, shell: bool = True, pty: bool = False, **_: Any) -> OutputString:
    """Run ``command`` on the host as the login user."""
    return _result(_ctx().run, command)


def sudo(command: str, shell: bool = True, pty: bool = False, user: str | None = None,
         **_: Any) -> OutputString:
    """Run ``command`` as root (or ``user``) through sudo."""
    return _result(_ctx().sudo, command, user=user)


def put(local_path: str | Path, remote_path: str, use_sudo: bool = False,
        mode: int | None = None, **_: Any) -> list[str]:
    ctx = _ctx()
    target = PurePosixPath(remote_path)
    if ctx._cwd and not target.is_absolute():
        target = PurePosixPath(ctx._cwd[-1]) / target
    if use_sudo:  # upload into a private temporary directory, then move it as root
        tmpdir = ctx.run("mktemp -d", hide=True).stdout.strip()
        staging = PurePosixPath(tmpdir) / Path(local_path).name
        ctx.put(local_path, staging, mode=mode)
        ctx.sudo(f"mv -f {ctx.quote(staging)} {ctx.quote(target)} && rmdir {ctx.quote(tmpdir)}")
    else:
        ctx.put(local_path, target, mode=mode)
    return [str(target)]


def get(remote_path: str, local_path: str | Path) -> list[str]:
    _ctx().get(remote_path, local_path)
    return [str(local_path)]


def local(command: str, capture: bool = False) -> OutputString:
    ctx = _ctx()
    proc = ctx.local(command, warn=bool(ctx.env.get("warn_only")), capture=capture)
    out = OutputString((proc.stdout or "").rstrip("\n"))
    out.return_code = proc.returncode
    out.stderr = proc.stderr or ""
    return out


def cd(path: str) -> Any:
    return _ctx().cd(path)


def lcd(path: str) -> Any:
    return _ctx().lcd(path)


@contextmanager
def settings(*contexts: Any, **overrides: Any) -> Iterator[None]:
    """Temporarily override env values (``warn_only=True``, options...)."""
    ctx = _ctx()
    saved = dict(ctx.env)
    ctx.env.update(overrides)
    try:
        if contexts:
            with contexts[0], settings(*contexts[1:]):
                yield
        else:
            yield
    finally:
        ctx.env.clear()
        ctx.env.update(saved)


@contextmanager
def hide(*groups: str) -> Iterator[None]:
    """Hide the output of commands run in this block (Fabric 1's groups are all one here)."""
    with settings(_hide=True):
        yield


@contextmanager
def show(*groups: str) -> Iterator[None]:
    with settings(_hide=False):
        yield


def abort(message: str) -> None:
    raise HostoutError(message, host=_ctx().name)
