"""hostout 1 (Fabric 1) plugins on hostout 2: a thin layer over the running Context.

Its faces are the module names hostout 1 plugins import, with ``fabric`` replaced by
``collective.hostout``: :mod:`collective.hostout.api` (``env``, ``run``, ``sudo``, ``cd``...),
:mod:`collective.hostout.contrib` (``files``, ``project``, ``console``) and
:mod:`collective.hostout.hostout` (``buildoutuser``, ``asbuildoutuser``). There is no global
state: everything reads the context of the command running in this thread
(``commands.context.current``) and keeps what it must per host, in that context.
"""
