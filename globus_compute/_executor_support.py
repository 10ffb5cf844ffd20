"""Helpers for ``executor.py``: argument validation and the interpreter-exit hook."""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from collections.abc import Callable
from typing import Any

from globus_compute._submitter import canonical_json
from globus_compute.serialize import reference_import_path

log = logging.getLogger(__name__)

_live_executors: weakref.WeakSet[Any] = weakref.WeakSet()
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False


def watch_for_exit(executor: Any) -> None:
    """Make sure an executor still open at interpreter exit is stopped before threads are joined.

    ``threading._register_atexit`` hooks run before the interpreter joins non-daemon threads
    (the stdlib executors use it for the same reason); plain ``atexit`` would run too late.
    """
    global _exit_hook_registered
    _live_executors.add(executor)
    if _exit_hook_registered:
        return
    with _exit_hook_lock:
        if not _exit_hook_registered:
            threading._register_atexit(_stop_live_executors)  # type: ignore[attr-defined]
            _exit_hook_registered = True


def _stop_live_executors() -> None:
    for executor in list(_live_executors):
        try:
            executor._stop_for_exit()
        except Exception:
            log.exception("Stopping %r at interpreter exit failed", executor)


def optional_uuid(value: uuid.UUID | str | None, name: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise ValueError(f"{name} must be a UUID, got {value!r}") from None


def canonical(value: uuid.UUID | str, name: str) -> str:
    return str(optional_uuid(value, name))


def json_dict(value: dict[str, Any] | None, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be of type dict, not {type(value).__name__}")
    try:
        canonical_json(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serializable") from exc
    return value


def wire_strategy(strategy_like: Any) -> str:
    if isinstance(strategy_like, str) and strategy_like.startswith("globus_compute_sdk."):
        return strategy_like
    return reference_import_path(strategy_like)


def registry_key(fn: Callable[..., Any]) -> Any:
    """The cache key for a function: the object itself; None (no caching) if unhashable."""
    try:
        hash(fn)
    except TypeError:
        return None
    return fn
