"""Process memory settings for CPU generation."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

__all__ = ["keep_freed_memory"]

logger = logging.getLogger(__name__)

# mallopt(3) parameters of glibc
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's ceiling on 64-bit systems


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of handing it back to the system.

    A CPU generation allocates and frees megabytes of activations per forward; by default glibc
    serves such blocks with fresh pages and returns them when freed, so every forward pays the
    page faults again. Keeping them makes a CPU batch ~7-10 % faster (measured on 2 AMD EPYC
    cores, bf16, batch 8), at the cost of a process that does not shrink. It changes the whole
    process: the ``mogents`` commands call it, a library caller decides for itself.

    Returns:
        True if applied (glibc on Linux), False elsewhere (nothing changed).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1 and ok
    if not ok:
        logger.debug("mallopt refused the settings; memory is handled as before")
    return ok
