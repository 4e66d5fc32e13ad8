"""Images and compose files from host parts (the seed's ``hostout docker``).

- :mod:`.build`: ``bin/hostout PART docker``, the deploy's steps run in a container and
  committed layer by layer (the service through :mod:`collective.hostout.remote.container`);
- :mod:`.layers`: which layers, keyed by what decides them;
- :mod:`.startup`: the image's entry point (buildout rerun offline, then the post-commands
  as the effective user) and config;
- :mod:`.compose`: ``bin/hostout app db compose``, the docker-compose.yml that runs them.

The commands are in :mod:`collective.hostout.builtin.fabfile`.
"""
