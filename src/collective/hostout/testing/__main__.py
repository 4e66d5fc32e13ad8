"""``python -m collective.hostout.testing``: the same as ``hostout-testhost``."""

from .cli import main

main()
