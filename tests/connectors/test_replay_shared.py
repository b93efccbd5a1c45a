"""The replay window shared by an ingress's worker processes: one claim wins across processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from prometheus_client import REGISTRY

from connectors.channels import SharedReplayCache

DELIVERIES = 300


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def evictions() -> float:
    return REGISTRY.get_sample_value("escalator_webhook_replay_cache_evictions_total") or 0.0


def test_a_delivery_is_new_once_per_channel_and_once_per_file(tmp_path: Path) -> None:
    path = tmp_path / "replays.db"
    one = SharedReplayCache(path, max_entries=10, max_age_seconds=60, clock=Clock())
    other = SharedReplayCache(path, max_entries=10, max_age_seconds=60, clock=Clock())
    assert not other.seen("x", "sha256=abc")
    assert one.claim("x", "sha256=abc")
    assert other.seen("x", "sha256=abc")
    assert not other.claim("x", "sha256=abc")  # another process of the same ingress
    assert other.claim("meta", "sha256=abc")


def test_bounded_by_count_and_age_and_a_release_makes_it_new(tmp_path: Path) -> None:
    clock = Clock()
    cache = SharedReplayCache(tmp_path / "r.db", max_entries=3, max_age_seconds=60, clock=clock)
    before = evictions()
    for index in range(5):
        assert cache.claim("x", f"d{index}")
    assert len(cache) == 3
    assert evictions() == before + 2
    assert cache.claim("x", "d0")  # pushed out: no longer recognised
    assert not cache.claim("x", "d4")
    clock.now += 61
    assert cache.claim("x", "d4")  # older than the window
    cache.release("x", "d4")
    assert cache.claim("x", "d4")


def claim_all(path: str, start: multiprocessing.synchronize.Event, won: list[int]) -> None:
    """A worker process: claim every delivery, report how many it got."""
    cache = SharedReplayCache(Path(path))
    start.wait(30)
    won.append(sum(cache.claim("webhook", f"sig-{n}") for n in range(DELIVERIES)))
    cache.close()


def test_processes_racing_for_the_same_deliveries_take_each_exactly_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        won = manager.list()
        start = manager.Event()
        path = str(tmp_path / "replays.db")
        SharedReplayCache(Path(path)).close()  # the file exists before the race
        workers = [context.Process(target=claim_all, args=(path, start, won)) for _ in range(3)]
        for worker in workers:
            worker.start()
        start.set()
        for worker in workers:
            worker.join(120)
            assert worker.exitcode == 0
        assert sum(won) == DELIVERIES, list(won)
