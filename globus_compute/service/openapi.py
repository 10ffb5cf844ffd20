"""OpenAPI documentation of the request bodies that routes parse by hand (``bodies.py``)."""

from __future__ import annotations

from typing import Any

#: A UUID string, as the schemas of ids say it.
UUID_SCHEMA = {"type": "string", "format": "uuid"}


def object_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """``openapi_extra`` documenting a hand-parsed JSON request body."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": properties, "required": required}
                }
            },
        }
    }
