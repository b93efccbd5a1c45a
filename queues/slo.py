"""The SLO samples a case event yields: first-response and resolution times, clocks met.

Taken by the projection from events it records for the first time (never from a
duplicate), so a redelivered event is not counted twice. Times are wall-clock seconds from
the case's opening (its first customer message) to the event: what the customer waited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from queues.batch_rows import CaseValues
from schemas import CaseEvent, CaseEventType, ClockName


class SampleKind(StrEnum):
    """Which SLO measurement a sample is."""

    FIRST_RESPONSE = ClockName.FIRST_RESPONSE.value
    """An agent's first reply met the case's first-response clock."""
    RESOLUTION = ClockName.RESOLUTION.value
    """The case was resolved."""
    CLOCK_MET = "clock_met"
    """Any SLA clock was met (the first-response one included): for SLA attainment."""


@dataclass(frozen=True)
class SloSample:
    """One measurement, with bounded labels and the case id for the exemplar only."""

    kind: SampleKind
    case_id: str
    queue: str
    priority: str
    seconds: float | None = None
    policy: str = ""
    clock: str = ""
    in_time: bool = True


def slo_samples(event: CaseEvent, case: CaseValues | None) -> list[SloSample]:
    """The samples a newly recorded event yields (none for most events)."""
    if event.type == CaseEventType.SLA_MET.value:
        return _clock_met(event, case)
    if event.type == CaseEventType.CASE_RESOLVED.value and case is not None:
        seconds = _since_open(case, event.at)
        if seconds is None:
            return []
        return [
            SloSample(
                SampleKind.RESOLUTION,
                event.case_id,
                case.queue or "",
                case.priority or "",
                seconds,
            )
        ]
    return []


def _clock_met(event: CaseEvent, case: CaseValues | None) -> list[SloSample]:
    payload = event.payload
    clock = str(payload.get("clock") or "")
    queue = str(payload.get("queue") or (case.queue if case else "") or "")
    priority = str(payload.get("priority") or (case.priority if case else "") or "")
    due = payload.get("due_at")
    in_time = due is None or event.at <= datetime.fromisoformat(str(due).replace("Z", "+00:00"))
    met = SloSample(
        SampleKind.CLOCK_MET,
        event.case_id,
        queue,
        priority,
        policy=str(payload.get("policy") or ""),
        clock=clock,
        in_time=in_time,
    )
    samples = [met]
    if clock == ClockName.FIRST_RESPONSE and case is not None:
        seconds = _since_open(case, event.at)
        if seconds is not None:
            samples.append(
                SloSample(SampleKind.FIRST_RESPONSE, event.case_id, queue, priority, seconds)
            )
    return samples


def _since_open(case: CaseValues, at: datetime) -> float | None:
    if case.opened_at is None:
        return None
    return max(0.0, (at - case.opened_at).total_seconds())
