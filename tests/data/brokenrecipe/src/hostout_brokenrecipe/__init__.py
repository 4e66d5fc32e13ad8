"""A plugin whose recipe module needs a package that is not installed: its ImportError
must fail bin/buildout, not be taken for "this egg has no recipe"."""

import hostout_dependency_nobody_installed  # noqa: F401


class Recipe:
    def __init__(self, buildout, name, options):
        options.setdefault("broken-default", "never set")

    def install(self):
        return []

    update = install
