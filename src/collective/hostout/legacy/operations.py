"""Fabric 1's operations and context managers, over the running host.

``run`` and ``put``/``get`` log in as the login user, or as the buildout user inside
``asbuildoutuser()`` (or after ``env.user = <buildout-user>``); ``sudo`` always goes through
the login user's sudo. Relative remote paths are taken in the directory of ``cd`` (or
``env.cwd``), else in the account's home, as Fabric 1 did; relative local paths in ``lcd``'s
directory, else the buildout directory. Keywords of Fabric 1 that change only how output
looks (``pty``, ``shell``, ``combine_stderr``...) are accepted; those whose meaning hostout 2
cannot give (``timeout``, ``stdout``...) fail with one line saying what to do instead.
"""

from __future__ import annotations

import io
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from ..commands.registry import command as _command
from ..errors import CommandFailed, ConfigError, HostoutError, RemoteError
from ..shell import Account, RemoteCommand, q
from .current import ctx, state
from .env import read as _read
from .env import write as _write

F = TypeVar("F", bound=Callable[..., Any])

#: Fabric 1 keywords that only change how output is shown or how the shell is started:
#: what runs, and what it returns, is the same without them.
COSMETIC = {"shell", "pty", "combine_stderr", "shell_escape", "capture_buffer_size"}
#: Fabric 1 keywords hostout 2 cannot honour, and what to do instead.
REFUSED = {
    "timeout": "put `timeout SECONDS` in front of the command",
    "stdout": "output goes to hostout's output and log; read the returned value instead",
    "stderr": "output goes to hostout's output and log; read .stderr of the returned "
              "value instead",
    "group": "sudo as a group is not supported; use sudo(..., user=...) or `sg GROUP -c ...`",
    "temp_dir": None,  # accepted below where Fabric 1 had it (put, get)
}


def _check(operation: str, kwargs: dict[str, Any], allowed: tuple[str, ...] = ()) -> None:
    for key in kwargs:
        if key in COSMETIC or key in allowed:
            continue
        hint = REFUSED.get(key)
        if hint:
            raise HostoutError(f"api.{operation}({key}=...) is not supported by hostout 2: "
                               f"{hint}", host=ctx().name)
        raise TypeError(f"{operation}() got an unexpected keyword argument {key!r}")


class OutputString(str):
    """A command's stdout, with Fabric 1's result attributes (``return_code``,
    ``stderr``, ``succeeded``, ``failed``, ``command``)."""

    return_code: int
    stderr: str
    command: str
    real_command: str

    @property
    def succeeded(self) -> bool:
        return self.return_code == 0

    @property
    def failed(self) -> bool:
        return not self.succeeded


class Transferred(list[str]):
    """What ``put``/``get`` return: the paths transferred, and Fabric 1's ``failed``
    (always empty: a failed transfer raises) and ``succeeded``."""

    @property
    def failed(self) -> list[str]:
        return []

    @property
    def succeeded(self) -> bool:
        return True


#: Fabric 1's output groups, and what each hides here: the command's output, its echo.
OUTPUT_GROUPS = {"stdout", "stderr", "output", "everything"}
ECHO_GROUPS = {"running", "everything"}


def _hidden(c: Any) -> frozenset[str]:
    return frozenset(c.env.get("_hidden", ()))


def _execute(command: str, *, sudo: bool, user: str | None, warn_only: bool,
             quiet: bool) -> OutputString:
    c = ctx()
    st = state(c)
    hidden = frozenset({"everything"}) if quiet else _hidden(c)
    warn = bool(warn_only or quiet or c.env.get("warn_only", False))
    script = " && ".join([*st.prefixes, command]) if st.prefixes else command
    user = user or c.env.get("sudo_user")  # Fabric 1's default sudo user
    exports = tuple((str(k), str(v)) for k, v in (c.env.get("shell_env") or {}).items())
    try:
        cmd = RemoteCommand(script, cwd=c.cwd, sudo=sudo, sudo_user=user if sudo else None,
                            account=Account.LOGIN if sudo else st.account, env=exports)
    except ValueError as err:  # a shell_env name that is no variable name
        raise ConfigError(f"api.env.shell_env: {err}", host=c.name) from None
    res = c.remote.execute(cmd, warn=warn, hide=bool(hidden & OUTPUT_GROUPS),
                           echo=not hidden & ECHO_GROUPS)
    out = OutputString(res.stdout.replace("\r\n", "\n").rstrip("\n"))
    out.return_code = res.exited
    out.stderr = res.stderr.rstrip("\n")
    out.command = command
    out.real_command = res.command.display()
    return out


def run(command: str, shell: bool = True, pty: bool = True, combine_stderr: bool | None = None,
        quiet: bool = False, warn_only: bool = False, **kwargs: Any) -> OutputString:
    """Run ``command`` on the host as the login user (the buildout user inside
    ``asbuildoutuser``), in the directory of ``cd``. A failure raises CommandFailed unless
    ``warn_only`` (or ``quiet``, which also hides the output)."""
    _check("run", kwargs)
    return _execute(command, sudo=False, user=None, warn_only=warn_only, quiet=quiet)


def sudo(command: str, shell: bool = True, pty: bool = True, combine_stderr: bool | None = None,
         user: str | None = None, quiet: bool = False, warn_only: bool = False,
         **kwargs: Any) -> OutputString:
    """Run ``command`` as root (or ``user``) through the login user's sudo."""
    _check("sudo", kwargs)
    return _execute(command, sudo=True, user=user, warn_only=warn_only, quiet=quiet)


# -- files ------------------------------------------------------------------------------------
def resolve_remote(path: str | PurePosixPath | None) -> str:
    """A remote path as Fabric 1 took it: relative ones in ``cd``'s directory (if any)."""
    c = ctx()
    text = str(path or "")
    if text.startswith(("/", "~")):
        return text
    if c.cwd:
        return str(PurePosixPath(c.cwd) / text) if text else c.cwd
    return text or "."


def resolve_local(path: str | os.PathLike[str]) -> Path:
    """A local path as Fabric 1 took it: relative ones in ``lcd``'s directory, else the
    buildout directory (where bin/hostout runs)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(ctx().lcwd) / p


def quote_path(path: str) -> str:
    """``path`` quoted for the shell, a leading ``~`` or ``~user`` left to expand."""
    m = re.match(r"^(~[a-z_][a-z0-9_-]*|~)(/.*)?$", path)
    if m:
        return m[1] + (q(m[2]) if m[2] else "")
    return q(path)


_GLOB = re.compile(r"(\*|\?|\[[^\]/]+\])")


def _glob_word(pattern: str) -> str:
    """``pattern`` for the shell: its glob characters active, everything else quoted."""
    words = []
    for i, part in enumerate(_GLOB.split(pattern)):
        if _GLOB.fullmatch(part):
            words.append(part)
        elif part:
            words.append(quote_path(part) if i == 0 else q(part))
    return "".join(words)


def _remote_files(pattern: str, *, sudo: bool) -> list[tuple[str, str]]:
    """(file, the path it was found under) for a remote file, directory or glob."""
    c = ctx()
    word = _glob_word(pattern) if _GLOB.search(pattern) else quote_path(pattern)
    line = "printf '%s\\t%s\\n'"
    script = (f'for p in {word}; do if [ -d "$p" ]; then find "$p" -type f | '
              f'while IFS= read -r f; do {line} "$p" "$f"; done; '
              f'elif [ -e "$p" ]; then {line} "$p" "$p"; fi; done')
    probe = RemoteCommand(script, cwd=c.cwd, sudo=sudo,
                          account=Account.LOGIN if sudo else state(c).account)
    res = c.remote.execute(probe, hide=True, echo=False)
    found = []
    for line in res.stdout.splitlines():
        root, _, file = line.partition("\t")
        if file:
            found.append((file, root))
    if not found:
        raise RemoteError(f"get: no remote file {pattern}", host=c.name)
    return found


def get(remote_path: str, local_path: Any = None, use_sudo: bool = False,
        temp_dir: str = "", **kwargs: Any) -> Transferred:
    """Download a remote file, directory (recursively) or glob. ``local_path`` may use
    Fabric 1's ``%(host)s``, ``%(path)s``, ``%(basename)s`` and ``%(dirname)s``
    (default ``%(host)s/%(path)s``), be a directory, or a file-like object."""
    _check("get", kwargs)
    c = ctx()
    account = state(c).account
    pattern = resolve_remote(remote_path)
    files = _remote_files(pattern, sudo=use_sudo)
    if hasattr(local_path, "write"):
        if len(files) != 1:
            raise HostoutError(f"get: {remote_path} is {len(files)} files; a file-like "
                               "local_path takes one", host=c.name)
        with tempfile.TemporaryDirectory() as tmp:
            got = _get_files(c, [(files[0][0], Path(tmp) / "file")], account, use_sudo)
            data = Path(got[0]).read_bytes()
        local_path.write(data if not isinstance(local_path, io.TextIOBase) else data.decode())
        return Transferred([files[0][0]])
    template = str(local_path) if local_path is not None else "%(host)s/%(path)s"
    pairs = []
    for file, root in files:
        if "%(" in template:
            name = template % {"host": c.settings.hostname, "path": file.lstrip("/"),
                               "basename": PurePosixPath(file).name,
                               "dirname": str(PurePosixPath(file).parent).lstrip("/")}
            target = resolve_local(name)
        else:
            base = resolve_local(template)
            into = base.is_dir() or template.endswith("/") or len(files) > 1 or file != root
            if into:
                rel = (PurePosixPath(file).relative_to(PurePosixPath(root).parent)
                       if file != root else PurePosixPath(file).name)
                target = base / str(rel)
            else:
                target = base
        pairs.append((file, target))
    return Transferred(_get_files(c, pairs, account, use_sudo))


def _get_files(c: Any, pairs: list[tuple[str, Path]], account: Account,
               use_sudo: bool) -> list[str]:
    staging = None
    if use_sudo:  # root copies into a private directory of the login user, then it is read
        staging = c.run("mktemp -d", hide=True).stdout.strip()
    got = []
    try:
        for i, (file, target) in enumerate(pairs):
            target.parent.mkdir(parents=True, exist_ok=True)
            source = file
            if staging is not None:
                source = f"{staging}/{i}"
                user = c.remote.login_user
                c.sudo(f"cp {quote_path(file)} {q(source)} && chown {q(user)} {q(source)}",
                       hide=True)
            c.out.line(c.name, f"get: {file} -> {target}")
            try:
                c.remote.get(source, target,
                             account=Account.LOGIN if staging is not None else account)
            except OSError as err:
                raise RemoteError(f"get {file}: {err.strerror or err}", host=c.name,
                                  cause=err) from err
            got.append(str(target))
    finally:
        if staging is not None:
            c.run(f"rm -rf {q(staging)}", hide=True, warn=True)
    return got


def put(local_path: Any = None, remote_path: str | None = None, use_sudo: bool = False,
        mirror_local_mode: bool = False, mode: int | None = None, use_glob: bool = True,
        temp_dir: str = "", **kwargs: Any) -> Transferred:
    """Upload a local file, directory (recursively), glob or file-like object. Into
    ``remote_path`` when it is a directory; ``use_sudo`` places it as root."""
    _check("put", kwargs)
    c = ctx()
    account = state(c).account
    with tempfile.TemporaryDirectory() as tmp:
        sources = _local_files(local_path, use_glob, Path(tmp))
        target = resolve_remote(remote_path)
        probe = RemoteCommand(f"test -d {quote_path(target)}", sudo=use_sudo,
                              account=Account.LOGIN if use_sudo else account)
        into = (len(sources) > 1 or target.endswith("/")
                or any(rel is not None for _, rel in sources)
                or c.remote.execute(probe, warn=True, hide=True, echo=False).ok)
        pairs = []
        for file, rel in sources:
            name = str(rel) if rel is not None else file.name
            dest = str(PurePosixPath(target) / name) if into else target
            file_mode = mode if mode is not None else (
                stat.S_IMODE(file.stat().st_mode) if mirror_local_mode else None)
            pairs.append((file, dest, file_mode))
        return Transferred(_put_files(c, pairs, account, use_sudo))


def _local_files(local_path: Any, use_glob: bool, tmp: Path) -> list[tuple[Path, Any]]:
    """(file, its path under an uploaded directory or None) for what put was given."""
    if hasattr(local_path, "read"):
        data = local_path.read()
        file = tmp / "upload"
        file.write_bytes(data.encode() if isinstance(data, str) else data)
        return [(file, None)]
    if local_path is None:
        raise TypeError("put() needs a local_path")
    path = resolve_local(local_path)
    if use_glob and _GLOB.search(str(local_path)):
        matches = sorted(path.parent.glob(path.name))
    else:
        matches = [path] if path.exists() else []
    if not matches:
        raise ConfigError(f"put: no local file {local_path}", host=ctx().name)
    found: list[tuple[Path, Any]] = []
    for match in matches:
        if match.is_dir():
            found += [(f, PurePosixPath(match.name) / f.relative_to(match).as_posix())
                      for f in sorted(match.rglob("*")) if f.is_file()]
        else:
            found.append((match, None))
    return found


def _put_files(c: Any, pairs: list[tuple[Path, str, int | None]], account: Account,
               use_sudo: bool) -> list[str]:
    dirs = sorted({str(PurePosixPath(dest).parent) for _, dest, _ in pairs} - {".", "/"})
    if not use_sudo:
        if len(pairs) > 1 and dirs:
            c.run("mkdir -p " + " ".join(quote_path(d) for d in dirs), hide=True,
                  account=account)
        for file, dest, file_mode in pairs:
            c.out.line(c.name, f"put: {file} -> {dest}")
            c.remote.put(file, dest, account=account, mode=file_mode)
        return [dest for _, dest, _ in pairs]
    # as root: upload into a private directory (mktemp -d, 0700), then move in place
    staging = c.run("mktemp -d", hide=True).stdout.strip()
    moves = [f"mkdir -p {' '.join(quote_path(d) for d in dirs)}"] if dirs else []
    for i, (file, dest, file_mode) in enumerate(pairs):
        c.out.line(c.name, f"put: {file} -> {dest} (as root)")
        c.remote.put(file, f"{staging}/{i}", account=Account.LOGIN)
        moves.append(f"mv -f {q(f'{staging}/{i}')} {quote_path(dest)}")
        if file_mode is not None:
            moves.append(f"chmod {file_mode:o} {quote_path(dest)}")
    moves.append(f"rmdir {q(staging)}")
    c.sudo(" && ".join(moves))
    return [dest for _, dest, _ in pairs]


def local(command: str, capture: bool = False, shell: str | None = None) -> OutputString:
    """Run ``command`` on this machine, in ``lcd``'s directory (else the buildout's)."""
    c = ctx()
    proc = c.local(command, warn=bool(c.env.get("warn_only", False)), capture=capture)
    out = OutputString((proc.stdout or "").rstrip("\n") if capture else "")
    out.return_code = proc.returncode
    out.stderr = (proc.stderr or "").rstrip("\n")
    out.command = out.real_command = command
    return out


# -- context managers --------------------------------------------------------------------------
def cd(path: str) -> Any:
    """Remote commands in this block run in ``path`` (relative: to an outer cd)."""
    return ctx().cd(path)


def lcd(path: str) -> Any:
    return ctx().lcd(path)


_UNSET = object()


@contextmanager
def settings(*contexts: Any, **overrides: Any) -> Iterator[None]:
    """Set env keys for the block (``warn_only=True``, ``user=...``...), as ``env.X = ...``
    would, then put back what was there; other context managers given are entered too."""
    c = ctx()
    st = state(c)
    # as Fabric 1: only the keys given are put back; other env changes in the block stay
    saved_env = {name: c.env.get(name, _UNSET) for name in overrides}
    saved_base, saved_settings = st.base, c.settings
    saved_dirs = {key: (c.cwd if key == "cwd" else c.lcwd) for key in ("cwd", "lcwd")
                  if key in overrides}
    try:
        for name, value in overrides.items():
            _write(name, value)
        if contexts:
            with contexts[0], settings(*contexts[1:]):
                yield
        else:
            yield
    finally:
        for name, value in saved_env.items():
            if value is _UNSET:
                c.env.pop(name, None)
            else:
                c.env[name] = value
        for key, value in saved_dirs.items():
            c.set_cwd(value, local=key == "lcwd")
        st.base = saved_base
        if c.settings != saved_settings:
            s = saved_settings
            c.retarget(hostname=s.hostname, port=s.port, user=s.user, password=s.password,
                       identity_file=s.identity_file)


@contextmanager
def hide(*groups: str) -> Iterator[None]:
    """Commands run in this block are not shown: their output (``stdout``, ``stderr``,
    ``output``) and the command itself (``running``); ``everything`` or no group, both.
    Everything is still in the kept log."""
    hidden = _hidden(ctx()) | set(groups or ("everything",))
    with settings(_hidden=hidden):
        yield


@contextmanager
def show(*groups: str) -> Iterator[None]:
    """Show again what an outer ``hide`` hid (all of it when no group is given)."""
    hidden = _hidden(ctx()) - set(groups) if groups else frozenset()
    if groups and ("output" in groups or "everything" in groups):
        hidden -= {"stdout", "stderr", "output", "everything"}
    with settings(_hidden=hidden):
        yield


@contextmanager
def quiet() -> Iterator[None]:
    """Hide everything and do not fail on errors (Fabric 1.5's ``quiet``)."""
    with settings(_hidden=frozenset({"everything"}), warn_only=True):
        yield


@contextmanager
def warn_only() -> Iterator[None]:
    with settings(warn_only=True):
        yield


@contextmanager
def shell_env(**variables: str) -> Iterator[None]:
    """Export ``variables`` for run/sudo in this block (Fabric 1.8's ``shell_env``)."""
    merged = {**(ctx().env.get("shell_env") or {}), **variables}
    with settings(shell_env=merged):
        yield


@contextmanager
def prefix(command: str) -> Iterator[None]:
    """Run ``command &&`` before every run/sudo in this block."""
    st = state()
    st.prefixes.append(command)
    try:
        yield
    finally:
        st.prefixes.pop()


# -- utils ---------------------------------------------------------------------------------------
def abort(message: str) -> None:
    """Stop the command with ``message`` (one line, ``Error: host: message``)."""
    raise HostoutError(message, host=ctx().name)


def warn(message: str) -> None:
    """A warning: printed now and listed again in the summary."""
    ctx().warn(message)


def puts(text: Any, show_prefix: bool = True, end: str = "\n", flush: bool = False) -> None:
    c = ctx()
    c.out.line(c.name, str(text))


fastprint = puts


def require(*keys: str, used_for: str | None = None, provided_by: Any = None) -> None:
    """Stop with one line unless every env key (an option of the part, most often) is set
    and not empty."""
    c = ctx()
    missing = []
    for key in keys:
        try:
            value = _read(key)
        except AttributeError:
            missing.append(key)
            continue
        if value is None or (isinstance(value, (str, list, tuple, dict, set)) and not value):
            missing.append(key)
    if not missing:
        return
    names = ", ".join(k.replace("_", "-") for k in missing)
    why = f" (used for {used_for})" if used_for else ""
    providers = ([getattr(p, "__name__", str(p)) for p in provided_by]
                 if isinstance(provided_by, (list, tuple)) else
                 [getattr(provided_by, "__name__", str(provided_by))] if provided_by else [])
    by = f", or run {' or '.join(providers)} first" if providers else ""
    raise CommandFailed(f"this command needs option {names}{why}: set it in the part "
                        f"[{c.name}] of the buildout{by}", host=c.name)


# -- decorators ----------------------------------------------------------------------------------
def task(*args: Any, **kwargs: Any) -> Any:
    """Fabric 1's ``@task`` (``@task(name=...)``): the function is a command."""
    if args and callable(args[0]) and len(args) == 1 and not kwargs:
        return _command(args[0])
    unsupported = set(kwargs) - {"name"}
    if unsupported:
        raise TypeError(f"@task({', '.join(sorted(unsupported))}=...) is not supported by "
                        "hostout 2: commands have one name")
    return _command(name=kwargs.get("name"))


def runs_once(func: F) -> F:
    """Run ``func`` once for all the hosts of an invocation; every host gets its result."""
    import functools

    @functools.wraps(func)
    def once(*args: Any, **kw: Any) -> Any:
        key = ("runs_once", func.__module__, func.__qualname__)
        return ctx().shared.once(key, lambda: func(*args, **kw))

    return once  # type: ignore[return-value]
