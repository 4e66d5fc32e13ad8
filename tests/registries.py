"""Where packages come from, read from this machine's configuration at run time.

No file of the project names a registry's or mirror's address: tests that check a host
reached (or did not reach) one ask here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from urllib.parse import urlsplit

from collective.hostout.testing import mirror_host


def reach_mirror_probe(timeout: int = 5) -> str:
    """A shell line that succeeds only where this machine's Debian mirror answers on port 80."""
    return f"timeout {timeout} bash -c '</dev/tcp/{mirror_host()}/80'"


def default_index_host() -> str:
    """The host of pip's default index: what a server with no pip configuration reads."""
    code = "from pip._internal.models.index import PyPI; print(PyPI.netloc)"
    return subprocess.run([sys.executable, "-c", code], text=True, capture_output=True,
                          check=True, stdin=subprocess.DEVNULL).stdout.strip()


def index_hosts() -> set[str]:
    """Host names of the package indexes a build could read: pip's default (PyPI, and where
    it keeps its files; what a server with no pip configuration reads, and buildout's own
    default), and every index-url and extra-index-url of this machine's pip configuration."""
    # pip's one statement of its default index. In a process of its own: importing
    # pip._internal here would break a later `import setuptools` (its distutils shim).
    default = ("from pip._internal.models.index import PyPI; "
               "print(PyPI.netloc, PyPI.file_storage_domain)")
    hosts = set(subprocess.run([sys.executable, "-c", default], text=True, capture_output=True,
                               check=True, stdin=subprocess.DEVNULL).stdout.split())
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], text=True,
                             capture_output=True, check=True, stdin=subprocess.DEVNULL).stdout
    for value in re.findall(r"^[^.\s]*\.(?:extra-)?index-url='(.*)'$", listing, re.M):
        for url in value.split():
            host = urlsplit(url).hostname
            if host:
                hosts.add(host)
    return hosts
