"""Plugins shipped with hostout, under their hostout 1 names (``extends = hostout.supervisor``,
``extends = hostout.cloud``): see ``BUILTIN_PLUGINS`` in
:mod:`collective.hostout.commands.discovery`. Each is a package with a ``fabfile`` module
(its commands) and, optionally, a ``Recipe`` that checks and defaults its options when
bin/buildout runs, as a plugin egg's recipe would.
"""
