"""Packaging: the buildout's versions (``versions``) and releases of its develop packages.

``hashing`` fingerprints a develop package's files, ``release`` builds an sdist of it whose
version carries that fingerprint. Import the submodules directly; this package imports
nothing so that ``versions`` stays cheap to load inside bin/buildout.
"""
