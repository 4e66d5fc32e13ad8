"""A hostout 1 plugin as its authors wrote them, ported to Python 3 and to hostout 2 by
replacing ``fabric`` with ``collective.hostout`` on the import lines, nothing else: a recipe
that sets option defaults, and a fabfile (tests/test_legacy_remote.py runs it on a real
host)."""


class Recipe:
    """hostout.legacyplugin: defaults for the plugin's own options."""

    def __init__(self, buildout, name, options):
        self.name, self.options, self.buildout = name, options, buildout
        options.setdefault("legacy-greeting", "hello from hostout 1")
        options.setdefault("legacy-standard-python", "no")

    def install(self):
        return []

    def update(self):
        return []
