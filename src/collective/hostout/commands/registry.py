"""Commands, how a fabfile marks them, and the registry of override chains.

Which functions of a fabfile become commands:

1. those decorated with :func:`command`, if the fabfile uses the decorator at all;
2. otherwise the names in the fabfile's ``__all__``, if it has one;
3. otherwise every public function *defined in* the fabfile by ``def`` under its own name
   (never one it imports, an alias or a lambda), which
   keeps hostout 1 fabfiles working unchanged. Name helpers with a leading ``_``.

A command whose first parameter is named ``c`` (or annotated as a ``Context``) is *native*
and receives the context; any other is *seed style* and reaches its host through
``collective.hostout.api``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar, overload

from ..errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__hostout_command__"
_QUIET = "__hostout_quiet__"
NATIVE_PARAMETER_NAMES = ("c", "ctx", "context")


@overload
def command(func: F) -> F: ...
@overload
def command(*, name: str | None = None, quiet: bool = False) -> Callable[[F], F]: ...
def command(func: Any = None, *, name: str | None = None, quiet: bool = False) -> Any:
    """Mark a fabfile function as a hostout command (optionally under another name).

    A ``quiet`` command speaks through ``c.report()`` only: the commands it runs and their
    output (and those of the commands it calls) show with ``-v``, and in the kept log.
    """

    def mark(f: F) -> F:
        setattr(f, _MARK, name or f.__name__)
        if quiet:
            setattr(f, _QUIET, True)
        return f

    return mark(func) if func is not None else mark


def is_native(func: Callable[..., Any]) -> bool:
    params = list(inspect.signature(func).parameters.values())
    if not params or params[0].kind not in (params[0].POSITIONAL_ONLY,
                                            params[0].POSITIONAL_OR_KEYWORD):
        return False
    first = params[0]
    annotation = first.annotation
    if isinstance(annotation, str):
        annotated = annotation.rsplit(".", 1)[-1] == "Context"
    else:
        annotated = getattr(annotation, "__name__", "") == "Context"
    return annotated or first.name in NATIVE_PARAMETER_NAMES


@dataclass(frozen=True)
class Command:
    name: str
    func: Callable[..., Any]
    origin: str
    native: bool

    @property
    def quiet(self) -> bool:
        return bool(getattr(self.func, _QUIET, False))

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.func) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def parameters(self) -> list[inspect.Parameter]:
        params = list(inspect.signature(self.func).parameters.values())
        return params[1:] if self.native else params

    def check_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any],
                        host: str | None = None) -> None:
        """A UsageError naming the expected parameters when ``args`` cannot bind."""
        sig = inspect.Signature(self.parameters)
        try:
            sig.bind(*args, **kwargs)
        except TypeError as err:
            expected = " ".join(
                f"[{p.name}...]" if p.kind is p.VAR_POSITIONAL else
                (f"[{p.name}]" if p.default is not p.empty else p.name)
                for p in self.parameters if p.kind is not p.VAR_KEYWORD
            )
            raise UsageError(
                f"command {self.name} takes: {self.name} {expected}".rstrip()
                + f" ({err})",
                host=host,
            ) from None


def commands_of(module: ModuleType, origin: str) -> list[Command]:
    """The commands a fabfile module marks or exports (see the module docstring)."""
    members = [(n, f) for n, f in vars(module).items() if inspect.isfunction(f)]
    marked = [(getattr(f, _MARK), f) for _, f in members if hasattr(f, _MARK)]
    if marked:
        chosen = marked
    elif hasattr(module, "__all__"):
        chosen = [(n, getattr(module, n)) for n in module.__all__
                  if callable(getattr(module, n, None))]
    else:
        chosen = [(n, f) for n, f in members  # defined here under its own name: no imports,
                  if not n.startswith("_") and f.__module__ == module.__name__  # aliases,
                  and f.__name__ == n]  # or lambdas
    return [Command(n, f, origin, is_native(f)) for n, f in chosen]


class Registry:
    """Every command name with its chain of definitions, earliest first.

    A later definition overrides an earlier one; the overridden one stays reachable with
    ``c.super()`` (``api.env.superfun()`` in seed-style fabfiles).
    """

    def __init__(self, commands: Iterable[Command] = ()) -> None:
        self._chains: dict[str, list[Command]] = {}
        for cmd in commands:
            self.add(cmd)

    def add(self, cmd: Command) -> None:
        chain = self._chains.setdefault(cmd.name, [])
        if cmd.func not in (c.func for c in chain):
            chain.append(cmd)

    def __contains__(self, name: object) -> bool:
        return name in self._chains

    def names(self) -> list[str]:
        return sorted(self._chains)

    def chain(self, name: str, host: str | None = None) -> tuple[Command, ...]:
        try:
            return tuple(self._chains[name])
        except KeyError:
            raise UsageError(
                f"unknown command {name!r}; valid commands are: {', '.join(self.names())}",
                host=host,
            ) from None

    def get(self, name: str, host: str | None = None) -> Command:
        return self.chain(name, host)[-1]

    def summaries(self) -> list[tuple[str, str]]:
        return [(name, self._chains[name][-1].summary) for name in self.names()]
