"""The sliding window behind the desk's sign-in limits, on a controlled clock."""

from __future__ import annotations

from queues.desk.ratelimit import SlidingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_limited_once_it_used_its_hits_until_the_oldest_leaves_the_window() -> None:
    clock = Clock()
    window = SlidingWindow(3, 60, clock=clock)
    for _ in range(3):
        assert window.retry_after("a") is None
        window.hit("a")
        clock.now += 10
    # hits at 1000, 1010, 1020; now 1030: the first leaves the window at 1060
    assert window.retry_after("a") == 30
    assert window.retry_after("b") is None  # other keys are not affected
    clock.now = 1059.5
    assert window.retry_after("a") == 1
    clock.now = 1060
    assert window.retry_after("a") is None
    window.hit("a")
    assert window.retry_after("a") == 10  # 1010 leaves at 1070


def test_the_window_forgets_the_oldest_keys_past_its_bound() -> None:
    clock = Clock()
    window = SlidingWindow(1, 60, max_keys=2, clock=clock)
    for key in ("a", "b", "c"):
        window.hit(key)
    assert window.retry_after("a") is None  # forgotten: the bound holds memory, not history
    assert window.retry_after("b") == 60 and window.retry_after("c") == 60
