"""The steps of ``deploy``, by topic. Each takes a Context and talks to the host only through
``c.remote``, so the same steps run over SSH, in a container, and against the recording fake.

- :mod:`.base`: the typed deploy state steps share, running a step's command;
- :mod:`.accounts`: users, group, the buildout user's key, ownership (bootstrap_users, setowners);
- :mod:`.bootstrap`: Python (bootstrap_python) and the buildout venv (bootstrap_buildout);
- :mod:`.shipping`: develop releases, distributions, pins, cfg files (uploadeggs,
  uploadbuildout);
- :mod:`.build`: pre-commands, the remote bin/buildout, sudo-parts, post-commands (buildout).

The commands that call them are in :mod:`collective.hostout.builtin.fabfile`.
"""
