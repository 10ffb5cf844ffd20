"""globus-sdk retries whose waits end at once when the process is leaving.

globus-sdk retries a failed request (connection refused, 5xx) up to five times and sleeps up to
ten seconds between tries, so with the service gone one call lasts 8-23 s. At interpreter exit
an Executor stops its result poller and joins it; a poller inside such a call holds the exit for
that long. A :class:`~globus_sdk.transport.RetryConfig` built by :func:`stoppable_retry_config`
waits on an event instead of sleeping and retries no more once the event is set: setting it
ends every call in flight within one more (failing) try.

Self-contained so that the SDK can adopt it where its clients are built: ``_rest.retry_config``
passes ``stop=EXITING`` and the Executor's interpreter-exit hook sets :data:`EXITING` before it
joins its threads.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from globus_sdk.transport import RetryCheckResult, RetryConfig, RetryContext

__all__ = ["EXITING", "stoppable_retry_config"]

#: Set once the interpreter is exiting: every config built with it stops retrying.
EXITING = threading.Event()


def stoppable_retry_config(stop: threading.Event = EXITING, **settings: Any) -> RetryConfig:
    """A ``RetryConfig`` (``settings`` as its fields) whose waits and retries end on ``stop``.

    The wait between tries is globus-sdk's own schedule (the delay a check asked for, else an
    exponential backoff with jitter, capped at ``max_sleep``), spent in ``stop.wait`` so that
    the sleep globus-sdk then does is zero. A first check refuses any retry once ``stop`` is
    set; it runs before the checks the client registers.
    """
    config = RetryConfig(**settings)

    def backoff(ctx: RetryContext) -> float:
        delay = (
            ctx.backoff
            if ctx.backoff is not None
            else (0.25 + 0.5 * random.random()) * (2**ctx.attempt)
        )
        stop.wait(min(delay, config.max_sleep))
        return 0.0

    def refuse_when_stopping(ctx: RetryContext) -> RetryCheckResult:
        return RetryCheckResult.do_not_retry if stop.is_set() else RetryCheckResult.no_decision

    config.backoff = backoff
    config.checks.register_check(refuse_when_stopping)
    return config
