"""Fabric 1's ``fabric.contrib`` for ported hostout 1 plugins:
``from collective.hostout import api, contrib`` then ``contrib.files.exists(...)``.

- :mod:`.files`: ``exists``, ``is_link``, ``first``, ``contains``, ``append``, ``sed``,
  ``comment``, ``uncomment``, ``upload_template``;
- :mod:`.project`: ``upload_project`` (``rsync_project`` fails with what to use instead);
- :mod:`.console`: ``confirm``.

All of them run through :mod:`collective.hostout.api`, so ``cd``, ``asbuildoutuser`` and
``settings(warn_only=True)`` apply to them as to ``api.run``.
"""

from . import console, files, project

__all__ = ["console", "files", "project"]
