"""Everything hostout prints: host-prefixed lines, the live view, the summary, --json."""

from .console import NORMAL, QUIET, VERBOSE, HostStream, Output

__all__ = ["NORMAL", "QUIET", "VERBOSE", "HostStream", "Output"]
