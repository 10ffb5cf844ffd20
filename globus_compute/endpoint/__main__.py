"""``python -m globus_compute.endpoint``: see :mod:`globus_compute.endpoint.main`."""

from __future__ import annotations

import sys

from globus_compute.endpoint.main import main

if __name__ == "__main__":
    sys.exit(main())
