"""How an image made by ``hostout docker`` starts: its entry point script and its config.

The seed: "The image created will use post-commands to start your process. Before startup it
will also rerun your buildout in offline mode. This allows your buildout to rewrite itself
using environment variables." So:

* the entry point (:data:`START_SCRIPT`) starts as root: gives ``var/`` (a volume) to the
  effective user, reruns ``bin/buildout -c hostout.cfg`` as the buildout user with no index
  (``install-from-cache``, ``PIP_NO_INDEX``: no network needed), then runs the command as the
  effective user; ``HOSTOUT_BUILDOUT=0`` skips the rerun;
* the command (``CMD``) is the part's ``post-commands``, its last line ``exec``'d when it is
  a simple command, so the application gets the container's signals.

Pure text in, text out: unit-tested without a container.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import PurePosixPath

from ..config.images import Port
from ..config.settings import Accounts, HostSettings, Layout
from ..shell import q

START_SCRIPT = PurePosixPath("/usr/local/bin/hostout-start")


def in_image(settings: HostSettings) -> HostSettings:
    """A part's settings as its image has them: the one place they differ from a
    server's. Post-commands are the image's command, so they are not run by the build."""
    return replace(settings, post_commands=())

#: Run the rest of the arguments as the user named first: its uid, gid and groups, its HOME
#: (Python, which every image made by hostout has: no setpriv, su-exec or gosu needed).
DROP = """\
import os, pwd, sys
u = pwd.getpwnam(sys.argv[1])
os.initgroups(u.pw_name, u.pw_gid)
os.setgid(u.pw_gid)
os.setuid(u.pw_uid)
os.environ.update(HOME=u.pw_dir, USER=u.pw_name, LOGNAME=u.pw_name)
os.execvp(sys.argv[2], sys.argv[2:])"""


def start_script(part: str, a: Accounts, lay: Layout) -> str:
    """The entry point's shell text."""
    owners = f"{q(a.effective_user)}:{q(a.group)}"
    return "\n".join([
        "#!/bin/sh",
        f"# hostout-start: the entry point collective.hostout made for the part {part}.",
        "# Reruns buildout offline as the buildout user, so that environment variables",
        "# reconfigure the build (${env:...} options of gocept.recipe.env); gives var/ (a",
        "# volume) to the effective user; then runs the command (the part's post-commands)",
        "# as the effective user. HOSTOUT_BUILDOUT=0 skips the rerun.",
        "set -e",
        f"cd {q(lay.path)}",
        f"PYTHON={q(lay.python)}",
        f"DROP={q(DROP)}",
        'if [ "$(id -u)" != 0 ]; then',
        "    exec \"$@\"  # started as another user (run --user): no rerun, no switch",
        "fi",
        "own_var() {",
        f"    mkdir -p var && chown -R {owners} var && chmod -R u+rwX,g+rwX,o-rwx var",
        "}",
        "own_var",
        'if [ "${HOSTOUT_BUILDOUT:-1}" != 0 ]; then',
        f'    PIP_NO_INDEX=1 "$PYTHON" -c "$DROP" {q(a.buildout_user)} /bin/sh -c '
        f"{q(f'umask 027 && exec {q(lay.buildout_script)} -c hostout.cfg')}",
        "    own_var",
        "fi",
        f'exec "$PYTHON" -c "$DROP" {q(a.effective_user)} "$@"',
        "",
    ])


_KEYWORDS = {"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done",
             "case", "esac", "function", "select", "{", "}", "(", "!", "exec"}


def command_script(post_commands: Sequence[str]) -> str:
    """The post-commands as one shell script; a last line that is a simple command is
    ``exec``'d, so the application, not a shell, gets the container's signals."""
    lines = list(post_commands)
    last = lines[-1].strip()
    words = last.split()
    simple = (words and words[0] not in _KEYWORDS and not re.search(r"[;&|<>()`$]", last)
              and "=" not in words[0])
    if simple:
        lines[-1] = f"exec {last}"
    return "\n".join(lines)


def _label(key: str, value: str) -> str:
    return f"LABEL {key}={json.dumps(value)}"


def layer_changes(labels: Mapping[str, str]) -> list[str]:
    """A layer's commit: its labels only."""
    return [_label(k, v) for k, v in labels.items()]


def image_changes(post_commands: Sequence[str], lay: Layout, ports: Sequence[Port],
                  labels: Mapping[str, str]) -> list[str]:
    """The finished image's config (Dockerfile instructions, as a commit takes them)."""
    changes = [
        f"ENTRYPOINT {json.dumps([str(START_SCRIPT)])}",
        f"CMD {json.dumps(['/bin/sh', '-c', command_script(post_commands)])}",
        f"WORKDIR {lay.path}",
        f"VOLUME {json.dumps([str(lay.var)])}",
        "USER root",  # the entry point switches to the buildout and the effective user
    ]
    for port in dict.fromkeys((p.port, p.protocol) for p in ports):
        changes.append(f"EXPOSE {port[0]}/{port[1]}")
    return changes + layer_changes(labels)
