"""What the worker's `/readyz` answers: ready only once it holds the state of what it owns.

faust resumes the streams of an assignment before the worker's own handler has restored
the stage states of the new partitions (`streams.rebalance`), and a rebalance is over for
faust before that restore is. A worker is ready when it has partitions, is not
rebalancing, holds the restored state of every assigned partition of its stateful stages,
and no stage is stalled. A rolling update that waits for readiness therefore does not
restart the next worker while this one still restores a million cases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class HeldState(Protocol):
    """A stage's state store, as far as readiness goes."""

    source_topic: str

    @property
    def partitions(self) -> frozenset[int]:
        """The input partitions whose state is held."""
        ...


@dataclass(frozen=True)
class Readiness:
    """The answer of `/readyz`: its JSON body and status code."""

    code: int
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """ready, starting, restoring or stalled (the body's `status`)."""
        return str(self.body["status"])


def readiness(
    assigned: Iterable[Any],
    rebalancing: bool,
    stores: Iterable[HeldState],
    stalled: Mapping[str, float],
) -> Readiness:
    """Ready (200), or starting, restoring or stalled (503), with the reason."""
    assigned = list(assigned)
    restoring = sorted(
        f"{store.source_topic}-{tp.partition}"
        for store in stores
        for tp in assigned
        if tp.topic == store.source_topic and tp.partition not in store.partitions
    )
    body: dict[str, Any] = {"status": "ready", "partitions": len(assigned)}
    if stalled:
        body["status"] = "stalled"
        body["reason"] = "; ".join(
            f"stage {stage} made no progress for {seconds:.0f}s with input waiting"
            for stage, seconds in sorted(stalled.items())
        )
    elif not assigned or rebalancing:
        body["status"] = "starting"
    elif restoring:
        body["status"] = "restoring"
        body["reason"] = f"restoring the state of {', '.join(restoring)}"
    return Readiness(200 if body["status"] == "ready" else 503, body)
