"""Commands of hostout.myplugin: one new, one overriding a built-in."""

from collective.hostout import api


def mycommand(cmdline_param1="x"):
    """example of command from hostout.myplugin"""
    api.run("echo %s %s" % (api.env.plugin_greeting, cmdline_param1))
    return api.env.param1


def sudo(*cmd):
    """sudo, announced by the plugin first"""
    api.run("echo plugin-sudo-hook")
    return api.env.superfun(*cmd)
