"""Commands of hostout.legacyplugin, written as hostout 1 plugins were: ``api.env``,
``api.env.hostout``, ``contrib.files``, ``buildoutuser``/``asbuildoutuser``, bare excepts."""

import os

from collective.hostout import api, contrib
from collective.hostout.hostout import asbuildoutuser, buildoutuser


def initcommand(cmd):
    """Called before every command, as hostout 1 called it"""
    seen = api.env.get("legacy_seen") or []
    api.env.legacy_seen = [*seen, cmd]


def showseen():
    """Print the commands initcommand saw"""
    api.puts("seen %s" % " ".join(api.env.legacy_seen))


def showoptions():
    """Print the options a hostout 1 plugin reads"""
    hostout = api.env.hostout
    for key in ("buildout-user", "effective-user", "python-version", "buildout-cache",
                "identity-file", "versionsfile", "legacy-greeting"):
        api.puts("option %s=%s" % (key, hostout.options[key]))
    api.puts("env %s %s" % (api.env["effective-user"], api.env.legacy_greeting))
    api.puts("paths %s %s %s" % (hostout.getRemoteBuildoutPath(), hostout.getDownloadCache(),
                                 hostout.getEggCache()))


def setgreeting():
    """Set the plugin's own option for later commands"""
    api.env.hostout.options["legacy-greeting"] = "set by a command"


def setpath():
    """Try to move the buildout: hostout's own option"""
    api.env.hostout.options["path"] = "/elsewhere"


@buildoutuser
def whoami_bo():
    """Run id -un as the buildout user"""
    return api.run("id -un")


def users():
    """Who runs what"""
    with asbuildoutuser():
        api.run("echo as-bo $(id -un)")
        api.sudo("echo as-root $(id -un)")
    api.run("echo as-login $(id -un)")
    api.env.user = api.env.hostout.options["buildout-user"]
    api.run("echo env-user $(id -un)")
    api.env.user = api.env.hostout.options["user"]
    api.run("echo env-user-back $(id -un)")


def asother():
    """Log in as another user on another name of the host (as hostout.cloud did)"""
    api.env.hosts = ["localhost:%s" % api.env.port]
    api.env.user = "other"
    api.env.password = api.env.hostout.options["other-password"]
    api.run("echo other $(id -un)")


def fabric1():
    """Fabric 1 habits"""
    api.env.cwd = "/tmp"
    api.run("echo cwd $(pwd)")
    result = api.run("false", warn_only=True)
    api.run("echo failed %s %s" % (result.failed, result.return_code))
    quiet = api.sudo("ls /nonexistent", quiet=True)
    api.run("echo quiet %s" % quiet.failed)
    api.env.cwd = ""
    with api.cd("/etc"):
        api.get("hostname", "fetched/hostname")
    api.put("fetched/hostname", "/tmp/hostname-copy")
    try:
        api.run("exit 3")
    except Exception:  # hostout 1 plugins caught failures this way
        api.run("echo caught")
    api.require("legacy-greeting", "hosttype", used_for="choosing a cloud")


def files():
    """contrib.files on a real file"""
    path = "/tmp/legacy.conf"
    contrib.files.append(path, ["port=80", "debug=on"])
    contrib.files.append(path, "port=80")
    contrib.files.sed(path, "port=80", "port=8080")
    contrib.files.comment(path, "^debug")
    api.run("echo exists %s %s" % (contrib.files.exists(path),
                                   contrib.files.exists("/nonexistent")))
    api.run("cat %s" % path)


def peer(name):
    """Read another host part and run one of its commands"""
    target = api.env.hostout.hostouts[name]
    api.puts("peer %s %s" % (target.options["path"], target.options["buildout-user"]))
    target.sudo("echo", "from-peer", os.path.basename(target.getRemoteBuildoutPath()))


def bootstrap_python_debian():
    """hostout 1 style: install Python the plugin's way on Debian"""
    api.sudo("touch /tmp/bootstrap_python_debian-ran")
    if api.env.hostout.options.get("legacy-standard-python") == "yes":
        api.env.hostout.bootstrap_python()
