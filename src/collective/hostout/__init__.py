"""collective.hostout 2: standardised deployment of zc.buildout based applications with Fabric."""

from .errors import HostoutError

__all__ = ["HostoutError"]
