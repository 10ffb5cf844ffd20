"""Version numbers: ours, and the reference SDK whose wire format we speak."""

from __future__ import annotations

__version__ = "0.1.0"

#: The ``globus-compute-sdk`` release whose REST calls and serialization we reproduce. The hosted
#: service compares its ``min_sdk_version`` with this, not with our own version.
REFERENCE_SDK_VERSION = "4.19.0"
