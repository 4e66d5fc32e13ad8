"""A plugin with a fabfile and no recipe: extends = hostout.fabonly must work."""
