"""How many task ids the Executor's next result poll asks about.

Against a rate-limited service every poll costs a request, however many ids it carries, so the
poller asks about as many pending tasks at once as the service takes: the reference
``Client.get_batch_result`` sends its whole list in one request too. Ids cost 39 bytes each in
the request, so the request is never the limit; the *answer* is: a finished task's document
carries its result, and 128 results of 100 KB already make a 17 MB answer. So the chunk:

* starts at ``first`` ids and doubles after each answer that carried every id asked for while
  more were pending, up to ``max_ids``;
* steps down towards what an answer carried when it carried fewer (a service that caps its
  answers; omitted ids may also just be unknown ones, so it halves at most per answer);
* is halved after a refusal of a large poll (413, or 400/422 for too many ids), and the halved
  size stays its ceiling, so such a service costs one refused request, not one per round;
* never exceeds what ``max_answer_bytes`` holds at the bytes per finished task seen so far
  (learned from ``TaskOutcomes.answer_bytes``; a pending task's document is small).

Not thread-safe: only the poller thread uses it.
"""

from __future__ import annotations

import logging

__all__ = ["MAX_ANSWER_BYTES", "REFUSAL_STATUSES", "ChunkSizer"]

log = logging.getLogger(__name__)

#: Largest answer a poll should draw, in bytes: under the 10 MB that hosted requests and
#: answers may carry, with room for the estimate to be off.
MAX_ANSWER_BYTES = 6_000_000
#: Statuses meaning "this poll is too large" when it asked about more than one id.
REFUSAL_STATUSES = frozenset({400, 413, 422})
#: First guesses, in bytes, of a pending and of a finished task's document in an answer.
_PENDING_DOC_BYTES = 150.0
_FINISHED_DOC_BYTES = 400.0


class ChunkSizer:
    """The size of the next poll, learned from the answers and refusals of the last ones.

    Args:
        first: Ids asked for at first (at least 1).
        max_ids: Most ids ever asked for at once (at least ``first``).
        max_answer_bytes: Answer size the chunk is kept under, by estimate.
    """

    def __init__(self, first: int, max_ids: int, max_answer_bytes: int = MAX_ANSWER_BYTES) -> None:
        self._size = max(1, first)
        self._ceiling = max(self._size, max_ids)
        self.max_answer_bytes = max_answer_bytes
        self._pending_bytes = _PENDING_DOC_BYTES
        self._finished_bytes = _FINISHED_DOC_BYTES
        self._sized_by_bytes = False  # no byte figures seen yet: no byte bound

    @property
    def bytes_per_finished_task(self) -> float:
        """The current estimate of a finished task's share of an answer."""
        return self._finished_bytes

    def size(self) -> int:
        """Ids to ask for in the next poll."""
        if not self._sized_by_bytes:
            return self._size
        by_bytes = int(self.max_answer_bytes // max(1.0, self._finished_bytes))
        return max(1, min(self._size, by_bytes))

    def answered(
        self, asked: int, carried: int, finished: int, answer_bytes: int, more: bool
    ) -> None:
        """Learn from an answer.

        Args:
            asked: Ids the poll asked about.
            carried: Documents the answer held for them.
            finished: How many of those were finished.
            answer_bytes: The answer's size; 0 when unknown.
            more: Whether more ids were pending than the poll asked about.
        """
        if answer_bytes > 0 and carried > 0:
            self._learn_bytes(carried, finished, answer_bytes)
        if carried < asked:
            # Omitted ids may be unknown ones, not a cap: step down, do not jump.
            self._size = max(1, min(self._size, max(carried, self._size // 2)))
        elif more and asked >= self._size:
            self._size = min(self._ceiling, self._size * 2)

    def refused(self, asked: int, status: int | None) -> bool:
        """A poll of ``asked`` ids was refused with ``status``: shrink if that can help.

        Returns:
            True if the chunk shrank (retry with fewer ids), False if the refusal has
            nothing to do with the size (a real error).
        """
        if status not in REFUSAL_STATUSES or asked <= 1:
            return False
        self._size = self._ceiling = max(1, asked // 2)
        log.warning(
            "The Compute service refused a result poll of %d ids (HTTP %s); asking about at "
            "most %d from now on",
            asked,
            status,
            self._size,
        )
        return True

    def _learn_bytes(self, carried: int, finished: int, answer_bytes: int) -> None:
        pending = carried - finished
        if finished == 0:
            self._pending_bytes = 0.5 * self._pending_bytes + 0.5 * answer_bytes / pending
            return
        sample = max(0.0, answer_bytes - pending * self._pending_bytes) / finished
        # Up at once, down slowly: one large result should shrink the next poll right away.
        self._finished_bytes = max(sample, 0.7 * self._finished_bytes + 0.3 * sample)
        self._sized_by_bytes = True
