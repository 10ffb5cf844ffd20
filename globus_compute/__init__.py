"""globus_compute: run Python functions on remote computers from a concurrent.futures Executor.

Importing this package starts no thread and opens no socket.
"""

from __future__ import annotations

import logging

from globus_compute import errors
from globus_compute.version import __version__

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__", "errors"]
