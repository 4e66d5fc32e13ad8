"""Everything hostout prints: host-prefixed lines, the live view, the summary, --json."""

from .console import LOG_ONLY, NORMAL, QUIET, VERBOSE, HostStream, Output

__all__ = ["LOG_ONLY", "NORMAL", "QUIET", "VERBOSE", "HostStream", "Output"]
