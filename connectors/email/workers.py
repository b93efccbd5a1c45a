"""A bounded pool of threads for the blocking work on a mail: parsing and DNS questions.

The SMTP server, the IMAP poller and the inbound-parse webhook run this work here, never on
their event loop, so one heavy mail cannot stall other sessions. The pool is bounded in
threads and in mails waiting, and each mail in time: past the bound the caller gets an error
to answer with (a temporary SMTP failure), while the thread finishes on its own; its slot is
freed only then, so abandoned work can never pile up.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class MailBusyError(Exception):
    """As many mails as allowed are being processed; try again later."""


class MailTimeoutError(Exception):
    """Processing the mail took longer than the time bound."""


class MailWorkers:
    """Runs blocking functions on at most `threads` threads, `max_in_flight` at a time."""

    def __init__(
        self, threads: int = 2, max_in_flight: int = 32, timeout_seconds: float = 60.0
    ) -> None:
        if threads < 1 or max_in_flight < threads:
            raise ValueError("need at least one thread and max_in_flight >= threads")
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mail")
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self.timeout_seconds = timeout_seconds

    async def run(self, work: Callable[[], T]) -> T:
        """Run `work` on the pool; MailBusyError when full, MailTimeoutError past the bound."""
        if not self._slots.acquire(blocking=False):
            raise MailBusyError("too many mails in progress")
        try:
            future = self._executor.submit(self._guarded, work)
        except BaseException:
            self._slots.release()
            raise
        # a mail cancelled before its thread took it never runs `_guarded`: free its slot here
        future.add_done_callback(lambda done: self._slots.release() if done.cancelled() else None)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_seconds)
        except TimeoutError as exc:
            raise MailTimeoutError(
                f"processing took longer than {self.timeout_seconds:g} s"
            ) from exc

    def _guarded(self, work: Callable[[], T]) -> T:
        try:
            return work()
        finally:
            self._slots.release()

    def close(self) -> None:
        """Stop taking work; threads still running finish in the background."""
        self._executor.shutdown(wait=False, cancel_futures=True)
