"""The request budget: how fast one identity may send requests to a Compute service.

The hosted service allows each client **20 requests per 10 s**, every call counted alike
(submits, result polls, registrations, status), and answers 429 with ``Retry-After`` beyond
that. Our Executor polls for results, so results cost requests as well as submits, and several
Clients and Executors of one process often share one identity. So the budget is:

* **One per identity, process-wide.** :func:`shared_budget` keeps one :class:`RequestBudget`
  per ``(service URL, identity)``, the identity derived from the credentials
  (:func:`identity_key`: a hash of a static token, the client id of client credentials, the
  client id and token namespace of a GlobusApp). Every Client of that identity spends from it.
* **A token bucket with a queue.** ``rate.per_second`` tokens a second, at most
  ``rate.burst`` stored; a request takes one token or waits, first come first served, so no
  caller starves another. The default for a remote service, :data:`DEFAULT_REMOTE_RATE`, is
  19 per 10 s: a little under the documented limit, so clock skew and network jitter do not
  turn into 429s. The embedded service (a loopback URL) has no limit, and gets no budget.
* **A 429 drains it.** If one gets through anyway (another process of the same identity),
  :meth:`RequestBudget.drain` empties the bucket and holds every request of the identity
  until ``Retry-After`` has passed; the request is then resent (``Client._request``).
* **Turns.** ``with request_turn(budget, kind):`` waits for a token *before* the caller
  decides what to send, and the first request made inside spends it: the Executor's submitter
  fills its batch with every task that arrived while it waited, its poller picks the ids
  after its turn came. The kind (:class:`RequestKind`) also tells the poller what the budget
  is busy with (:meth:`RequestBudget.poll_wait`): while full submit batches wait, polls get a
  tenth of the rate; while partial submits keep it tight, polls alternate with them (half);
  otherwise (spare, or nobody but pollers wants it) the bucket alone paces
  them.
* **Cancellation.** Waits are cut short by the event of ``with cancelled_by(event):`` in the
  waiting thread (an Executor stopping at interpreter exit), raising ``RequestCancelled``.
  Nothing else bounds them: a request waits as long as its turn takes.

Configuration: ``Client(request_budget=...)`` takes a :class:`RequestRate`, a string such as
``"100/10"`` (requests per seconds) or ``"none"``; its default, ``"auto"``, reads
``$GLOBUS_COMPUTE_REQUEST_BUDGET`` (same forms), else picks by URL as above.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import enum
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from globus_compute.client import environments
from globus_compute.errors import RequestCancelled

log = logging.getLogger(__name__)

__all__ = [
    "AUTO",
    "DEFAULT_REMOTE_RATE",
    "HOSTED_LIMIT",
    "RequestBudget",
    "RequestKind",
    "RequestRate",
    "cancelled_by",
    "configured_rate",
    "identity_key",
    "is_rate_limited",
    "pause",
    "request_turn",
    "retry_after_s",
    "shared_budget",
    "spend_turn",
]

#: ``Client(request_budget=AUTO)``: from the environment variable, else from the URL.
AUTO = "auto"
BUDGET_VARIABLE = "GLOBUS_COMPUTE_REQUEST_BUDGET"
_NO_BUDGET = ("none", "off", "unlimited")

#: Waits re-check their cancel event this often (a shutdown is seen within this long).
CANCEL_CHECK_S = 0.2
#: ``Retry-After`` when a 429 carries none we can read, and the most we believe.
DEFAULT_RETRY_AFTER_S = 1.0
MAX_RETRY_AFTER_S = 60.0
#: A 429 is logged as a warning at most this often per budget (the rest at debug level).
WARNING_INTERVAL_S = 60.0

#: Below this share of its burst a budget is "tight": polls are held to TIGHT_POLL_SHARE.
SPARE_FRACTION = 0.5
TIGHT_POLL_SHARE = 0.5
#: Share of the rate left to polls while full submit batches are waiting for turns: each
#: poll then carries the results of about ten submits, yet results keep arriving.
BULK_POLL_SHARE = 0.1


class RequestKind(enum.Enum):
    """What a turn is for; only the poll pacing reads it."""

    BULK = "bulk"  # a full submit batch: the efficient use of a request
    SUBMIT = "submit"  # a partial submit batch
    POLL = "poll"
    OTHER = "other"


@dataclass(frozen=True)
class RequestRate:
    """``requests`` per ``period_s`` seconds, with a burst of ``requests``.

    Raises:
        ValueError: A count or period that is not positive.
    """

    requests: float
    period_s: float

    def __post_init__(self) -> None:
        if not (self.requests > 0 and self.period_s > 0):
            raise ValueError(f"a request rate needs positive numbers, got {self}")

    @property
    def per_second(self) -> float:
        return self.requests / self.period_s

    @property
    def burst(self) -> float:
        return max(1.0, float(self.requests))

    def __str__(self) -> str:
        return f"{self.requests:g}/{self.period_s:g}s"

    @classmethod
    def parse(cls, text: str) -> RequestRate | None:
        """``"20/10"`` (or ``"20/10s"``) -> 20 requests per 10 s; ``"none"`` -> None.

        Raises:
            ValueError: Anything else.
        """
        cleaned = text.strip().lower()
        if cleaned in _NO_BUDGET:
            return None
        count, sep, period = cleaned.partition("/")
        try:
            if not sep:
                raise ValueError(cleaned)
            return cls(float(count), float(period.removesuffix("s")))
        except ValueError:
            raise ValueError(
                f"not a request budget: {text!r}; use '<requests>/<seconds>' (e.g. '20/10') "
                "or 'none'"
            ) from None


#: The hosted service's documented limit, per client.
HOSTED_LIMIT = RequestRate(20, 10.0)
#: What a Client spends against a remote service unless told otherwise: 5% under the limit.
DEFAULT_REMOTE_RATE = RequestRate(19, 10.0)


def configured_rate(value: RequestRate | str | None, service_url: str) -> RequestRate | None:
    """The rate a Client should spend, from its ``request_budget`` argument.

    Raises:
        ValueError: A string that is not a budget.
        TypeError: Neither a ``RequestRate``, a string nor None.
    """
    if value == AUTO:
        from_env = os.environ.get(BUDGET_VARIABLE, "").strip()
        if from_env:
            return RequestRate.parse(from_env)
        return None if environments.is_loopback_url(service_url) else DEFAULT_REMOTE_RATE
    if value is None or isinstance(value, RequestRate):
        return value
    if isinstance(value, str):
        return RequestRate.parse(value)
    raise TypeError(f"request_budget must be a RequestRate, a string or None, not {value!r}")


def identity_key(app: Any, authorizer: Any) -> str:
    """A stable name for whoever the credentials prove, to share one budget between Clients.

    Never the token itself: a static token is hashed. Credentials whose token changes
    (refresh tokens) are named by their authorizer object, so Clients sharing it share a budget.
    """
    if app is not None:
        storage = getattr(getattr(app, "token_storage", None), "token_storage", None)
        return f"app:{app.client_id}:{getattr(storage, 'namespace', '')}"
    if authorizer is None:
        return "anonymous"
    confidential = getattr(authorizer, "confidential_client", None)
    if confidential is not None and getattr(confidential, "client_id", None):
        return f"client:{confidential.client_id}"
    token = getattr(authorizer, "access_token", None)
    if isinstance(token, str) and not hasattr(authorizer, "refresh_token"):
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    if type(authorizer).__name__ == "NullAuthorizer":
        return "anonymous"
    return f"authorizer:{id(authorizer):x}"


def is_rate_limited(exc: BaseException) -> bool:
    """Whether ``exc`` is an HTTP 429 answer (globus-sdk's, or anything with ``http_status``)."""
    return getattr(exc, "http_status", None) == 429


def retry_after_s(exc: BaseException) -> float:
    """The wait a 429 asks for: its ``Retry-After`` in seconds, within [0, 60]."""
    headers = getattr(exc, "headers", None) or {}
    try:
        value = float(headers.get("Retry-After", ""))
    except (TypeError, ValueError):  # absent, or an HTTP date
        return DEFAULT_RETRY_AFTER_S
    return value if 0 <= value <= MAX_RETRY_AFTER_S else min(MAX_RETRY_AFTER_S, max(0.0, value))


def _condition_wait(cv: threading.Condition, timeout: float) -> None:
    cv.wait(timeout)


class RequestBudget:
    """A token bucket shared by every request of one identity; thread-safe.

    Args:
        rate: Tokens per second and burst.
        clock: Monotonic clock (injectable for tests).
        wait: ``wait(condition, seconds)`` with the condition's lock held; injectable so
            single-threaded tests can advance a fake clock instead of sleeping.

    Attributes:
        granted: Turns granted so far, by kind.
        rate_limited: 429 answers reported through :meth:`drain`.
    """

    def __init__(
        self,
        rate: RequestRate,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[threading.Condition, float], None] = _condition_wait,
    ) -> None:
        self._rate = rate
        self._clock = clock
        self._wait = wait
        self._cv = threading.Condition(threading.Lock())
        self._tokens = rate.burst
        self._stamp = clock()  # tokens are counted up to here; in the future after a drain
        self._queue: collections.deque[object] = collections.deque()  # waiting turns, FIFO
        self._waiting: collections.Counter[RequestKind] = collections.Counter()
        self._last_grant: dict[RequestKind, float] = {}
        self._last_warning = -math.inf
        self.granted: collections.Counter[RequestKind] = collections.Counter()
        self.rate_limited = 0

    def __repr__(self) -> str:
        return f"RequestBudget({self._rate}, level={self.level():.1f})"

    @property
    def rate(self) -> RequestRate:
        return self._rate

    def set_rate(self, rate: RequestRate) -> None:
        """Spend at ``rate`` from now on (tokens already stored beyond its burst are dropped)."""
        with self._cv:
            self._refill(self._clock())
            self._rate = rate
            self._tokens = min(self._tokens, rate.burst)
            self._cv.notify_all()

    @property
    def waiting(self) -> int:
        """Turns waiting now."""
        with self._cv:
            return len(self._queue)

    def level(self) -> float:
        """Tokens available now (0 while a 429's ``Retry-After`` runs)."""
        with self._cv:
            self._refill(self._clock())
            return self._tokens

    def take(
        self, kind: RequestKind = RequestKind.OTHER, cancel: threading.Event | None = None
    ) -> None:
        """Wait for this caller's turn and spend one token.

        Raises:
            RequestCancelled: ``cancel`` was set while waiting.
        """
        ticket = object()
        with self._cv:
            self._queue.append(ticket)
            self._waiting[kind] += 1
            try:
                while True:
                    if cancel is not None and cancel.is_set():
                        raise RequestCancelled("the wait for a request turn was cancelled")
                    now = self._clock()
                    self._refill(now)
                    if self._queue[0] is ticket:
                        if self._tokens >= 1.0 and self._stamp <= now:
                            self._grant(kind, now)
                            return
                        delay = max(0.0, self._stamp - now) + max(
                            0.0, (1.0 - self._tokens) / self._rate.per_second
                        )
                    else:
                        delay = CANCEL_CHECK_S  # the head's grant notifies us sooner
                    if cancel is not None:
                        delay = min(delay, CANCEL_CHECK_S)
                    self._wait(self._cv, max(delay, 1e-4))
            finally:
                self._waiting[kind] -= 1
                if ticket in self._queue:
                    self._queue.remove(ticket)
                self._cv.notify_all()

    def give_back(self) -> None:
        """Return the token of a turn that sent nothing."""
        with self._cv:
            self._tokens = min(self._rate.burst, self._tokens + 1.0)
            self._cv.notify_all()

    def drain(self, retry_after: float) -> bool:
        """A 429 came back: hold every request for ``retry_after`` seconds, then refill from empty.

        Returns:
            True if this is worth a warning (the first 429 in ``WARNING_INTERVAL_S``).
        """
        with self._cv:
            now = self._clock()
            self._refill(now)
            self._tokens = 0.0
            self._stamp = max(self._stamp, now + retry_after)
            self.rate_limited += 1
            self._cv.notify_all()
            warn = now - self._last_warning >= WARNING_INTERVAL_S
            if warn:
                self._last_warning = now
            return warn

    def poll_wait(self) -> float:
        """Seconds until a result poll fits this budget's share for polls (0: now).

        Measured from the last poll turn of *any* caller, so the pollers of several Executors
        of one identity share one cadence instead of each taking a full share.
        """
        with self._cv:
            now = self._clock()
            self._refill(now)
            per_second = self._rate.per_second
            memory = max(1.0, 2.0 / per_second)  # about the gap between two turns of a flood
            if self._demand(RequestKind.BULK, now, memory):
                spacing = 1.0 / (per_second * BULK_POLL_SHARE)
            elif self._demand(RequestKind.SUBMIT, now, memory) and (
                self._queue or self._tokens < self._rate.burst * SPARE_FRACTION
            ):
                # Alternate with the submits: a poll may queue behind a waiting submit, or
                # after one that was granted since the last poll (its tasks' results).
                last_submit = self._last_grant.get(RequestKind.SUBMIT, -math.inf)
                last_poll = self._last_grant.get(RequestKind.POLL, -math.inf)
                if self._waiting[RequestKind.SUBMIT] or last_submit > last_poll:
                    return 0.0
                spacing = 1.0 / (per_second * TIGHT_POLL_SHARE)
            else:
                return 0.0  # spare, or only polls want it: the bucket alone paces them
            last_poll = self._last_grant.get(RequestKind.POLL, -math.inf)
            return max(0.0, last_poll + spacing - now)

    def _demand(self, kind: RequestKind, now: float, memory: float) -> bool:
        """Whether turns of ``kind`` are waiting, or one was granted within ``memory`` s."""
        last = self._last_grant.get(kind, -math.inf)
        return bool(self._waiting[kind]) or now - last < memory

    def _grant(self, kind: RequestKind, now: float) -> None:
        self._tokens -= 1.0
        self._queue.popleft()
        self._last_grant[kind] = now
        self.granted[kind] += 1

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            burst = self._rate.burst
            self._tokens = min(burst, self._tokens + (now - self._stamp) * self._rate.per_second)
            self._stamp = now


_budgets: dict[tuple[str, str], RequestBudget] = {}
_budgets_lock = threading.Lock()


def shared_budget(service_url: str, identity: str, rate: RequestRate) -> RequestBudget:
    """The process's budget for ``identity`` at ``service_url``, made on first use.

    A Client asking for another rate than the budget has re-rates it for everyone (the last
    Client made wins), so there is never more than one budget per identity.
    """
    key = (service_url, identity)
    with _budgets_lock:
        budget = _budgets.get(key)
        if budget is None:
            budget = _budgets[key] = RequestBudget(rate)
            return budget
    if budget.rate != rate:
        log.info("Request budget of %s changed from %s to %s", service_url, budget.rate, rate)
        budget.set_rate(rate)
    return budget


class _Turn:
    """A token taken by ``request_turn``, until the first request inside spends it."""

    __slots__ = ("budget", "unspent")

    def __init__(self, budget: RequestBudget) -> None:
        self.budget = budget
        self.unspent = True


_current_turn: contextvars.ContextVar[_Turn | None] = contextvars.ContextVar(
    "globus_compute_request_turn", default=None
)
_current_cancel: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "globus_compute_request_cancel", default=None
)


@contextlib.contextmanager
def cancelled_by(event: threading.Event) -> Iterator[None]:
    """Within the block, budget waits and 429 pauses of this thread end when ``event`` is set."""
    reset = _current_cancel.set(event)
    try:
        yield
    finally:
        _current_cancel.reset(reset)


@contextlib.contextmanager
def request_turn(budget: RequestBudget | None, kind: RequestKind) -> Iterator[None]:
    """Wait for a turn now; the first request of this thread inside the block spends it.

    With no budget this does nothing. An unspent turn is given back at the end.

    Raises:
        RequestCancelled: The ``cancelled_by`` event was set while waiting.
    """
    if budget is None:
        yield
        return
    budget.take(kind, _current_cancel.get())
    turn = _Turn(budget)
    reset = _current_turn.set(turn)
    try:
        yield
    finally:
        _current_turn.reset(reset)
        if turn.unspent:
            budget.give_back()


def spend_turn(budget: RequestBudget | None) -> None:
    """Before each request (``Client._request``): use this thread's turn, or wait for one.

    Raises:
        RequestCancelled: The ``cancelled_by`` event was set while waiting.
    """
    if budget is None:
        return
    turn = _current_turn.get()
    if turn is not None and turn.unspent and turn.budget is budget:
        turn.unspent = False
        return
    budget.take(RequestKind.OTHER, _current_cancel.get())


def pause(seconds: float) -> None:
    """Sleep ``seconds`` (a 429 without a budget to drain), cut short by ``cancelled_by``.

    Raises:
        RequestCancelled: The ``cancelled_by`` event was set.
    """
    event = _current_cancel.get()
    if event is None:
        time.sleep(seconds)
    elif event.wait(seconds):
        raise RequestCancelled("the wait out a 429's Retry-After was cancelled")
