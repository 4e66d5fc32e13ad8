"""``hostout.options`` as hostout 1 plugins read and write it.

hostout 1 wrote its defaults into the part's options, so plugins read
``hostout.options['buildout-user']`` and got a user even when the part named none. hostout 2
keeps defaults in typed settings; this view shows them where the part is silent. Writes go
to :meth:`Context.set_option`: a plugin's own options are seen by every later read in the
invocation (this view, ``api.env``, native ``c.options``); hostout's own are refused with a
one-line error, since hostout's steps read the validated settings, not these strings.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from ..commands.context import Context
from ..errors import ConfigError
from .current import buildout_user, login_user


def defaults(c: Context) -> dict[str, str]:
    """What hostout 1 wrote into the options when the part was silent, as hostout 2 has it."""
    s = c.settings
    found = {
        "path": str(s.path),
        "user": login_user(c),
        "buildout-user": buildout_user(c),
        "effective-user": s.effective_user or buildout_user(c),
        "python-version": s.python_version,
        "buildout-cache": str(s.layout.cache),
        "identity-file": str(s.identity_file),
        "versionsfile": str(s.versionsfile),
        "buildout": s.buildout_cfg,
    }
    if s.hostos:
        found["hostos"] = s.hostos
    return found


def _spellings(key: str) -> tuple[str, ...]:
    return (key, key.replace("_", "-"), key.replace("-", "_"))


def lookup(c: Context, key: str) -> Any:
    """An option as hostout 1 saw it: set by a command, else the part's, else the default.
    KeyError when none."""
    options = c.options
    empty: Any = _MISSING
    for name in _spellings(key):
        if name in options:
            value = options[name]
            if value is not None and str(value).strip():
                return value
            empty = value
    found = defaults(c)  # an empty option of hostout's own means its default, as in settings
    for name in _spellings(key):
        if name in found:
            return found[name]
    if empty is not _MISSING:
        return empty
    raise KeyError(key)


_MISSING = object()


class LegacyOptions(MutableMapping[str, Any]):
    """``env.hostout.options``: the part's options with hostout's defaults, writable."""

    def __init__(self, c: Context) -> None:
        self._c = c

    def __getitem__(self, key: str) -> Any:
        return lookup(self._c, key)

    def __setitem__(self, key: str, value: Any) -> None:
        try:
            same = lookup(self._c, key) == value
        except KeyError:
            same = False
        if not same:
            self._c.set_option(key, value)

    def __delitem__(self, key: str) -> None:
        raise ConfigError(f"option {key} cannot be removed while a command runs; set it "
                          "to '' instead", host=self._c.name)

    def __iter__(self) -> Iterator[str]:
        seen = set()
        for key in [*self._c.options, *defaults(self._c)]:
            if key not in seen:
                seen.add(key)
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"<options of {self._c.name}>"
