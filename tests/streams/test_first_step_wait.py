"""The worker consumer's hand-over to its streams: direct when it need not wait, faust's
`wait_first` (from where it stopped) when it must, so a suspended flow still wins."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mode import Service

from streams.faust_transport import FirstStepWait, ResumedCoroutine


class CountingService(Service):
    """Counts the calls that reach mode's own `wait_first` (below the mixin)."""

    general_calls = 0

    async def wait_first(self, *coros: Any, timeout: Any = None) -> Any:
        self.general_calls += 1
        return await super().wait_first(*coros, timeout=timeout)


class Counted(FirstStepWait, CountingService):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()


async def test_a_hand_over_that_never_waits_is_done_without_mode_and_without_a_task() -> None:
    service = Counted()
    delivered: list[int] = []

    async def hand_over(n: int) -> int:
        delivered.append(n)
        return n * 2

    tasks_before = len(asyncio.all_tasks())
    result = await service.wait_first(hand_over(21), service.suspend_flow.wait())
    assert (result.results, result.stopped) == ([42], False)
    assert delivered == [21]
    assert service.general_calls == 0
    assert len(asyncio.all_tasks()) == tasks_before


async def test_a_hand_over_that_waits_goes_on_under_mode_from_where_it_stopped() -> None:
    service = Counted()
    room = asyncio.Event()
    steps: list[str] = []

    async def hand_over() -> str:
        steps.append("before")
        await room.wait()
        steps.append("after")
        return "put"

    waiting = asyncio.ensure_future(service.wait_first(hand_over(), service.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    assert steps == ["before"] and not waiting.done()
    room.set()
    result = await asyncio.wait_for(waiting, 5)
    assert steps == ["before", "after"]  # the first step ran once, not twice
    assert result.results == ["put"] and not result.stopped
    assert service.general_calls == 1


async def test_a_flow_suspended_while_the_hand_over_waits_abandons_it() -> None:
    service = Counted()
    cancelled = asyncio.Event()

    async def hand_over() -> None:
        try:
            await asyncio.Event().wait()  # a full buffer that never drains
        except asyncio.CancelledError:
            cancelled.set()
            raise

    waiting = asyncio.ensure_future(service.wait_first(hand_over(), service.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    service.suspend_flow.set()  # a rebalance
    result = await asyncio.wait_for(waiting, 5)
    assert result.stopped is False and result.results == [True]  # the flow event won
    await asyncio.wait_for(cancelled.wait(), 5)


async def test_with_the_flow_already_suspended_the_hand_over_is_left_to_mode() -> None:
    service = Counted()
    service.suspend_flow.set()
    ran: list[bool] = []

    async def hand_over() -> None:
        ran.append(True)
        await asyncio.Event().wait()

    result = await asyncio.wait_for(service.wait_first(hand_over(), service.suspend_flow.wait()), 5)
    assert service.general_calls == 1
    assert result.results == [True]  # the suspended flow, not the hand-over


async def test_an_error_in_the_first_step_reaches_the_caller() -> None:
    service = Counted()

    async def hand_over() -> None:
        raise LookupError("no callback for this partition")

    with pytest.raises(LookupError):
        await service.wait_first(hand_over(), service.suspend_flow.wait())


async def test_a_resumed_coroutine_gets_what_it_waited_for_and_errors_thrown_in() -> None:
    async def two_waits(first: asyncio.Future[int], second: asyncio.Future[int]) -> int:
        return await first + await second

    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    coro = two_waits(first, second)
    resumed = asyncio.ensure_future(ResumedCoroutine(coro, coro.send(None)))
    first.set_result(1)
    await asyncio.sleep(0)
    second.set_result(2)
    assert await asyncio.wait_for(resumed, 5) == 3

    failing = loop.create_future()
    coro = two_waits(failing, second)
    resumed = asyncio.ensure_future(ResumedCoroutine(coro, coro.send(None)))
    failing.set_exception(KeyError("gone"))
    with pytest.raises(KeyError):
        await asyncio.wait_for(resumed, 5)
