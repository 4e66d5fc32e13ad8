"""A hostout plugin as the seed describes: a recipe that sets defaults, and a fabfile."""


class Recipe:
    def __init__(self, buildout, name, options):
        options.setdefault("plugin-greeting", "hello from hostout.myplugin")

    def install(self):
        return []

    update = install
