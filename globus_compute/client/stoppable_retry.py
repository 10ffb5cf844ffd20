"""globus-sdk retries whose waits end at once when the process is leaving.

globus-sdk retries a failed request (connection refused, 502/503/504) up to five times and
sleeps up to ten seconds between tries, so with the service gone one call lasts 8-23 s. At
interpreter exit an Executor stops its result poller and joins it; a poller inside such a call
would hold the exit for that long. A :class:`~globus_sdk.transport.RetryConfig` built by
:func:`stoppable_retry_config` waits on an event instead of sleeping, and retries no more once
the event is set: setting it ends every call in flight after at most one more (failing) try,
i.e. within about one request timeout.

Until then nothing changes: the schedule is globus-sdk's own (the delay a check asks for, such
as a 503's ``Retry-After``, else exponential backoff with jitter, capped at ``max_sleep``), and
so are the checks and the number of tries. ``rest.retry_config`` builds every one of our
globus-sdk clients' configs on :data:`EXITING`; the Executor's interpreter-exit hook
(``executor.process_hooks``) sets :data:`EXITING` once the submitters have had their chance to
send what was queued, before it stops and joins the pollers.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from globus_sdk.transport import RetryCheckResult, RetryConfig, RetryContext

__all__ = ["EXITING", "stoppable_retry_config"]

#: Set once the interpreter is exiting: every config built with it stops retrying.
EXITING = threading.Event()


def stoppable_retry_config(stop: threading.Event | None = None, **settings: Any) -> RetryConfig:
    """A ``RetryConfig`` (``settings`` as its fields) whose waits and retries end on ``stop``.

    The wait between tries is globus-sdk's schedule, spent in ``stop.wait`` so that the sleep
    globus-sdk then does is zero. A first check refuses any retry once ``stop`` is set; it runs
    before the checks the client registers.

    Args:
        stop: The event that ends waits and retries; None: :data:`EXITING` as it is now (read
            at each call, so that tests can put a recording event in its place).
        **settings: ``RetryConfig`` fields (``max_retries``, ``max_sleep``, status codes).
    """
    config = RetryConfig(**settings)
    event = EXITING if stop is None else stop

    def backoff(ctx: RetryContext) -> float:
        delay = (
            ctx.backoff
            if ctx.backoff is not None
            else (0.25 + 0.5 * random.random()) * (2**ctx.attempt)
        )
        event.wait(min(delay, config.max_sleep))
        return 0.0

    def refuse_when_stopping(ctx: RetryContext) -> RetryCheckResult:
        return RetryCheckResult.do_not_retry if event.is_set() else RetryCheckResult.no_decision

    config.backoff = backoff
    config.checks.register_check(refuse_when_stopping)
    return config
