"""``fabric.contrib.files`` over the running host: every argument quoted, every command run
through :func:`collective.hostout.api.run` (or ``sudo`` with ``use_sudo=True``), so ``cd``
and ``asbuildoutuser`` apply."""

from __future__ import annotations

import io
import re
import stat
from collections.abc import Iterable
from typing import Any

from ..errors import ConfigError
from ..legacy import operations as ops
from ..legacy.current import ctx
from ..shell import q

__all__ = ["append", "comment", "contains", "exists", "first", "is_link", "sed", "uncomment",
           "upload_template"]


def _run(script: str, use_sudo: bool, **kwargs: Any) -> ops.OutputString:
    return (ops.sudo if use_sudo else ops.run)(script, **kwargs)


def _test(flag: str, path: str, use_sudo: bool) -> bool:
    return _run(f"test {flag} {ops.quote_path(str(path))}", use_sudo, quiet=True).succeeded


def exists(path: str, use_sudo: bool = False, verbose: bool = False) -> bool:
    """Whether ``path`` exists on the host."""
    return _test("-e", path, use_sudo)


def is_link(path: str, use_sudo: bool = False, verbose: bool = False) -> bool:
    return _test("-L", path, use_sudo)


def first(*paths: str, use_sudo: bool = False, verbose: bool = False) -> str | None:
    """The first of ``paths`` that exists, or None."""
    return next((p for p in paths if exists(p, use_sudo=use_sudo)), None)


_ERE_SPECIAL = re.compile(r"([.^$*+?()\[\]{}|\\])")


def _ere(text: str) -> str:
    return _ERE_SPECIAL.sub(r"\\\1", text)


def contains(filename: str, text: str, exact: bool = False, use_sudo: bool = False,
             escape: bool = True, shell: bool = False, case_sensitive: bool = True) -> bool:
    """Whether the file has ``text`` (a regular expression unless ``escape``) on a line
    (the whole line if ``exact``)."""
    flags = ["-q", "-F" if escape else "-E"]
    if exact:
        flags.append("-x")
    if not case_sensitive:
        flags.append("-i")
    script = f"grep {' '.join(flags)} -e {q(text)} {ops.quote_path(filename)}"
    return _run(script, use_sudo, quiet=True).succeeded


def append(filename: str, text: str | Iterable[str], use_sudo: bool = False,
           partial: bool = False, escape: bool = True, shell: bool = False) -> None:
    """Append each line of ``text`` unless the file has it already (as a whole line, or as
    the start of a line when ``partial``)."""
    lines = [text] if isinstance(text, str) else list(text)
    there = exists(filename, use_sudo=use_sudo)
    for line in lines:
        if there and line:
            pattern = "^" + _ere(line) + ("" if partial else "$")
            if contains(filename, pattern, use_sudo=use_sudo, escape=False):
                continue
        _run(f"printf '%s\\n' {q(line)} >> {ops.quote_path(filename)}", use_sudo)
        there = True


def sed(filename: str, before: str, after: str, limit: str = "", use_sudo: bool = False,
        backup: str = ".bak", flags: str = "", shell: bool = False) -> ops.OutputString:
    """``sed -i -r`` replacing ``before`` (an extended regular expression) by ``after`` on
    every line (matching ``limit``, if given), keeping a copy with the ``backup`` suffix."""
    before, after, limit = (part.replace("/", r"\/") for part in (before, after, limit))
    where = f"/{limit}/ " if limit else ""
    expression = f"{where}s/{before}/{after}/{flags}g"
    return _run(f"sed -i{q(backup) if backup else ''} -r -e {q(expression)} "
                f"{ops.quote_path(filename)}", use_sudo)


def uncomment(filename: str, regex: str, use_sudo: bool = False, char: str = "#",
              backup: str = ".bak", shell: bool = False) -> ops.OutputString:
    """Remove the comment ``char`` before lines matching ``regex``."""
    return sed(filename, before=rf"^([[:space:]]*){re.escape(char)}[[:space:]]?",
               after=r"\1", limit=regex, use_sudo=use_sudo, backup=backup)


def comment(filename: str, regex: str, use_sudo: bool = False, char: str = "#",
            backup: str = ".bak", shell: bool = False) -> ops.OutputString:
    """Comment out (prefix with ``char``) the lines matching ``regex``."""
    start = "^" if regex.startswith("^") else ""
    end = "$" if regex.endswith("$") and not regex.endswith(r"\$") else ""
    body = regex[len(start):len(regex) - len(end)]
    return sed(filename, before=f"{start}({body}){end}", after=char + r"\1",
               use_sudo=use_sudo, backup=backup)


def upload_template(filename: str, destination: str, context: dict[str, Any] | None = None,
                    use_jinja: bool = False, template_dir: str | None = None,
                    use_sudo: bool = False, backup: bool = True,
                    mirror_local_mode: bool = False, mode: int | None = None,
                    pty: bool | None = None, keep_trailing_newline: bool = False,
                    temp_dir: str = "") -> ops.Transferred:
    """Render the local template ``filename`` (``%(name)s`` from ``context``, or Jinja2
    with ``use_jinja``) and upload it to ``destination``, keeping the old file as
    ``destination.bak`` when ``backup``."""
    source = ops.resolve_local(f"{template_dir}/{filename}" if template_dir else filename)
    if not source.is_file():
        raise ConfigError(f"upload_template: no template {source}", host=ctx().name)
    text = source.read_text()
    if use_jinja:
        try:
            import jinja2
        except ImportError:
            raise ConfigError("upload_template(use_jinja=True) needs jinja2: add it to the "
                              "plugin's dependencies", host=ctx().name) from None
        environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(source.parent)),
                                          keep_trailing_newline=keep_trailing_newline)
        text = environment.get_template(source.name).render(**(context or {}))
    elif context:
        text = text % context
    target = ops.resolve_remote(destination)
    if _test("-d", target, use_sudo):
        target = f"{target.rstrip('/')}/{source.name}"
    if backup and exists(target, use_sudo=use_sudo):
        _run(f"cp -p {ops.quote_path(target)} {ops.quote_path(target + '.bak')}", use_sudo)
    if mode is None and mirror_local_mode:
        mode = stat.S_IMODE(source.stat().st_mode)
    return ops.put(io.BytesIO(text.encode()), target, use_sudo=use_sudo, mode=mode)
