"""Users, group and ownership: the seed's model of who may do what on the server.

The buildout user owns the code and runs buildout (logging in with its own key once
bootstrapped); the effective user owns var/ and runs the application; both share the
buildout group, which may read the code. Others get nothing.
"""

from __future__ import annotations

from ..commands.context import Context
from ..config.settings import Accounts, Layout
from ..server import keys
from ..shell import RemoteCommand, q
from .base import run_step


def accounts(c: Context) -> Accounts:
    """The host's accounts; a missing buildout-group is an error before anything connects
    (finding the login user reads ssh_config, it does not connect)."""
    return c.settings.accounts(c.remote.login_user)


#: What the users script prints for each change it makes: ``hostout: created user bo``.
CHANGED = "hostout: "


def users_script(a: Accounts, public_key: str | None) -> str:
    """Root shell text creating the group and users and authorising the buildout user's key
    (unless None: a container needs none); it prints a ``hostout: ...`` line for each change
    it makes, and nothing when none."""
    def say(what: str) -> str:
        return f"echo {q(CHANGED + what)}"

    lines = ["set -e",
             f"getent group {q(a.group)} >/dev/null || {say('created group ' + a.group)}",
             f"getent group {q(a.group)} >/dev/null || groupadd {q(a.group)}"]
    for user, shell in ((a.buildout_user, "/bin/bash"), (a.effective_user, "/bin/sh")):
        lines.append(f"id -u {q(user)} >/dev/null 2>&1 || {say('created user ' + user)}")
        lines.append(f"id -u {q(user)} >/dev/null 2>&1 || "
                     f"useradd -m -s {shell} -G {q(a.group)} {q(user)}")
    for user in sorted({a.buildout_user, a.effective_user, a.login}):
        lines.append(f"usermod -a -G {q(a.group)} {q(user)}")
    if public_key is None:
        return "\n".join(lines)
    ssh = '"$home/.ssh"'
    keys_file = '"$home/.ssh/authorized_keys"'
    lines += [
        f"home=$(getent passwd {q(a.buildout_user)} | cut -d: -f6)",
        f"install -d -m 700 -o {q(a.buildout_user)} {ssh}",
        f"touch {keys_file}",
        f"grep -qxF {q(public_key)} {keys_file} || "
        f"{say('authorised its key for ' + a.buildout_user)}",
        f"grep -qxF {q(public_key)} {keys_file} || printf '%s\\n' {q(public_key)} >> {keys_file}",
        f"chown {q(a.buildout_user)} {keys_file} && chmod 600 {keys_file}",
    ]
    return "\n".join(lines)


def bootstrap_users(c: Context) -> Accounts:
    a = accounts(c)
    key = c.settings.identity_file
    public = None
    if c.remote.key_login:  # over SSH; a container switches to the buildout user itself
        public = keys.ensure_key(key, comment=f"hostout-{c.name}")
        c.out.line(c.name, f"buildout-user {a.buildout_user} logs in with {key}")
    result = run_step(c, "bootstrap_users", RemoteCommand(users_script(a, public), sudo=True))
    changes = [line.removeprefix(CHANGED) for line in result.stdout.splitlines()
               if line.startswith(CHANGED)]
    if changes:
        how = f" (logs in with {key.name})" if public is not None else ""
        c.report(", ".join(dict.fromkeys(changes)) + how)
    return a


def owners_script(a: Accounts, lay: Layout) -> str:
    """Root shell text for the seed's ownership model: code read-only to the app, var/ its."""
    p, var = q(lay.path), q(lay.var)
    return "\n".join([
        "set -e",
        f"chown -R {q(a.buildout_user)}:{q(a.group)} {p}",
        f"chmod -R u+rwX,g+rX,g-w,o-rwx {p}",
        f"find {p} -type d -exec chmod g+s {{}} +",
        f"if [ -d {var} ]; then chown -R {q(a.effective_user)}:{q(a.group)} {var}; "
        f"chmod -R u+rwX,g+rwX,o-rwx {var}; fi",
    ])


def setowners(c: Context) -> Accounts:
    a, lay = accounts(c), c.settings.layout
    script = owners_script(a, lay)
    if not lay.cache.is_relative_to(lay.path):  # a buildout-cache elsewhere: the code's too
        script += f"\nchown -R {q(a.buildout_user)}:{q(a.group)} {q(lay.cache)}"
    run_step(c, "setowners", RemoteCommand(script, sudo=True))
    return a
