"""The webhooks' replay window is bounded by count and by age, and forgets what Kafka refused."""

from __future__ import annotations

from prometheus_client import REGISTRY

from connectors.channels._replay import ReplayCache


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def evictions() -> float:
    return REGISTRY.get_sample_value("escalator_webhook_replay_cache_evictions_total") or 0.0


def test_a_delivery_is_new_once_per_channel() -> None:
    cache = ReplayCache(max_entries=10, max_age_seconds=60, clock=Clock())
    assert cache.claim("x", "sha256=abc")
    assert not cache.claim("x", "sha256=abc")
    assert cache.claim("meta", "sha256=abc")  # the same id on another channel is another delivery


def test_the_cache_holds_at_most_its_size_and_forgets_the_oldest_first() -> None:
    cache = ReplayCache(max_entries=3, max_age_seconds=60, clock=Clock())
    before = evictions()
    for index in range(5):
        assert cache.claim("x", f"d{index}")
    assert len(cache) == 3
    assert evictions() == before + 2
    assert cache.claim("x", "d0")  # pushed out: no longer recognised
    assert not cache.claim("x", "d4")


def test_entries_older_than_the_window_are_forgotten() -> None:
    clock = Clock()
    cache = ReplayCache(max_entries=100, max_age_seconds=60, clock=clock)
    cache.claim("twilio", "old")
    clock.now += 30
    cache.claim("twilio", "newer")
    clock.now += 31  # "old" is 61 s old, "newer" 31 s
    assert not cache.claim("twilio", "newer")
    assert cache.claim("twilio", "old")
    assert len(cache) == 2


def test_a_released_delivery_is_new_again() -> None:
    cache = ReplayCache(clock=Clock())
    assert cache.claim("discourse", "sig")
    cache.release("discourse", "sig")
    assert cache.claim("discourse", "sig")


def test_long_ids_cost_no_more_than_short_ones() -> None:
    cache = ReplayCache(max_entries=2, clock=Clock())
    cache.claim("webhook", "s" * 100_000)
    assert not cache.claim("webhook", "s" * 100_000)
    assert all(len(key) == 16 for key in cache._seen)
