"""``GET /v2/version``: what the reference clients check before they talk to a service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from globus_compute.service.bodies import json_response
from globus_compute.version import __version__

router = APIRouter(tags=["service"])

#: Oldest reference SDK / endpoint this service talks to (the reference client compares these
#: with its own version, 4.19.0, and refuses to run when it is older).
MIN_SDK_VERSION = "2.0.0"
MIN_ENDPOINT_VERSION = "2.0.0"
API_VERSION = "1.0.0"


@router.get("/v2/version", summary="Service versions")
async def version(service: Annotated[str | None, Query()] = None) -> Response:
    if service is None:
        return json_response(API_VERSION)
    return json_response(
        {
            "api": API_VERSION,
            "min_sdk_version": MIN_SDK_VERSION,
            "min_ep_version": MIN_ENDPOINT_VERSION,
            "min_endpoint_version": MIN_ENDPOINT_VERSION,
            "git_sha": f"globus-compute-{__version__}",
        }
    )
