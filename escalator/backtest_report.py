"""Compare two replays of the same history (baseline, candidate): per case and in total.

Per case that differs: its queue, priority, tags, SLA policy and due time per clock as it
ended the replay, and every warning, breach, met clock and escalation step gained, lost or
moved in time. In total: cases that change queue (and between which queues), breaches
before and after per queue (the queue a case was in when it breached), warnings and
escalations, and the first-response attainment (clocks met on time among those met or
breached) before and after.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from schemas import ClockName
from streams.backtest import CaseOutcome, Replayed

ROUTING_FIELDS = ("queue", "priority", "tags", "sla_policy")


def compare(before: Replayed, after: Replayed) -> dict[str, Any]:
    """The backtest report as one JSON-ready object (see docs/rules.md for its fields)."""
    changed: list[dict[str, Any]] = []
    queue_moves: Counter[tuple[str, str]] = Counter()
    cases_changed = 0
    empty = CaseOutcome("")
    for case_id in sorted(before.outcomes.keys() | after.outcomes.keys()):
        old = before.outcomes.get(case_id, empty)
        new = after.outcomes.get(case_id, empty)
        differences = case_differences(old, new)
        if differences:
            cases_changed += 1
            changed.extend({"case_id": case_id, **difference} for difference in differences)
        if old.queue != new.queue:
            queue_moves[str(old.queue), str(new.queue)] += 1
    return {
        "rules": {"baseline": before.rules_version, "candidate": after.rules_version},
        "cases": len(before.outcomes.keys() | after.outcomes.keys()),
        "cases_changed": cases_changed,
        "queue_changes": {
            "cases": sum(queue_moves.values()),
            "moves": [
                {"from": old, "to": new, "cases": count}
                for (old, new), count in sorted(queue_moves.items(), key=lambda kv: -kv[1])
            ],
        },
        "breaches": _breaches(before, after),
        "warnings": _totals(before, after, "sla.warning"),
        "escalations": _totals(before, after, "case.escalated"),
        ClockName.FIRST_RESPONSE.value: {
            "before": attainment(before),
            "after": attainment(after),
        },
        "changed": changed,
        "skipped": {
            "duplicates": after.counts.duplicates,
            "not_threaded": after.counts.not_threaded,
            "actions_for_unknown_cases": after.counts.unknown_case_actions,
        },
    }


def case_differences(old: CaseOutcome, new: CaseOutcome) -> list[dict[str, Any]]:
    """Every field of a case that the candidate changes, as {field, before, after}."""
    differences: list[dict[str, Any]] = []
    for name in ROUTING_FIELDS:
        was, now = getattr(old, name), getattr(new, name)
        if name == "tags":
            was, now = sorted(was), sorted(now)
        if was != now:
            differences.append({"field": name, "before": was, "after": now})
    for clock in sorted(old.due.keys() | new.due.keys()):
        was_due, now_due = old.due.get(clock), new.due.get(clock)
        if was_due != now_due:
            differences.append({"field": f"due.{clock}", "before": was_due, "after": now_due})
    for event in sorted(old.clock_events.keys() | new.clock_events.keys()):
        was_at, now_at = old.clock_events.get(event), new.clock_events.get(event)
        if was_at != now_at:
            differences.append({"field": event, "before": was_at, "after": now_at})
    return differences


def attainment(replayed: Replayed) -> dict[str, Any]:
    """First responses met on time and breached; the share met (None when neither)."""
    counts = Counter(o.first_response for o in replayed.outcomes.values() if o.first_response)
    met, breached = counts["met"], counts["breached"]
    decided = met + breached
    return {
        "met": met,
        "breached": breached,
        "attainment": round(met / decided, 4) if decided else None,
    }


def _breaches(before: Replayed, after: Replayed) -> dict[str, Any]:
    old = Counter(q for o in before.outcomes.values() for q in o.breach_queues)
    new = Counter(q for o in after.outcomes.values() for q in o.breach_queues)
    return {
        "before": sum(old.values()),
        "after": sum(new.values()),
        "by_queue": {
            queue: {"before": old[queue], "after": new[queue]} for queue in sorted(old | new)
        },
    }


def _totals(before: Replayed, after: Replayed, kind: str) -> dict[str, int]:
    def count(replayed: Replayed) -> int:
        return sum(
            1
            for outcome in replayed.outcomes.values()
            for name in outcome.clock_events
            if name.split(" ", 1)[0] == kind
        )

    return {"before": count(before), "after": count(after)}
