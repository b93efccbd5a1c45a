"""The customer-effort metric families, read at scrape time from the totals the projection
keeps in the case store (`effort_counters`), so they are exact across restarts:

- `escalator_case_contacts{queue}`: histogram of the customer's messages per resolution;
- `escalator_case_channel_switches{queue}`: histogram of channel switches per resolution;
- `escalator_repeat_contacts_total{queue}`: new cases of a customer within the repeat window
  after one of their resolutions (by the resolved case's queue);
- `escalator_cases_resolved_total{queue}` and `escalator_first_contact_resolved_total{queue}`:
  resolutions judged once their window passed, and those resolved with one agent reply, no
  reopen and no repeat contact within the window.

A scrape that cannot reach the database yields the families without samples.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from queues.effort import CONTACT_BUCKETS, INF, SWITCH_BUCKETS, Family
from queues.models import EffortCounterRow

log = logging.getLogger(__name__)

_HISTOGRAMS = {
    Family.CONTACTS: (
        "escalator_case_contacts",
        "The customer's messages per resolved case (observed at each resolution), by queue.",
        CONTACT_BUCKETS,
    ),
    Family.CHANNEL_SWITCHES: (
        "escalator_case_channel_switches",
        "Times the customer changed channel per resolved case (observed at each resolution), "
        "by queue.",
        SWITCH_BUCKETS,
    ),
}
_COUNTERS = {
    Family.REPEAT_CONTACTS: (
        "escalator_repeat_contacts",
        "New cases of a customer within the repeat window after one of their resolutions, by "
        "the resolved case's queue.",
    ),
    Family.CASES_RESOLVED: (
        "escalator_cases_resolved",
        "Resolutions judged once their repeat window passed (not reopened within it), by queue.",
    ),
    Family.FIRST_CONTACT_RESOLVED: (
        "escalator_first_contact_resolved",
        "Judged resolutions with one agent reply, no reopen and no repeat contact within the "
        "window, by queue.",
    ),
}

Totals = dict[str, dict[str, dict[str, int]]]
"""family → queue → le (or `sum`, `count`, empty) → value."""


def read_totals(session: Session) -> Totals:
    """Every running total of the effort metrics."""
    totals: Totals = defaultdict(lambda: defaultdict(dict))
    rows = session.execute(
        select(
            EffortCounterRow.family,
            EffortCounterRow.queue,
            EffortCounterRow.le,
            EffortCounterRow.value,
        )
    )
    for family, queue, le, value in rows:
        totals[family][queue][le] = int(value)
    return totals


class EffortCollector(Collector):
    """Yields the effort families from the case store at each scrape."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def collect(self) -> Iterable[Metric]:
        """Read the totals now and yield two histograms and three counters."""
        histograms = {
            family: HistogramMetricFamily(name, text, labels=["queue"])
            for family, (name, text, _buckets) in _HISTOGRAMS.items()
        }
        counters = {
            family: CounterMetricFamily(name, text, labels=["queue"])
            for family, (name, text) in _COUNTERS.items()
        }
        try:
            with self._session_factory() as session:
                totals = read_totals(session)
        except SQLAlchemyError as error:
            log.warning("effort metrics unavailable: %s", error)
            totals = {}
        for family, metric in histograms.items():
            bounds = _HISTOGRAMS[family][2]
            for queue, values in sorted(totals.get(family.value, {}).items()):
                metric.add_metric(
                    [queue], cumulative_buckets(values, bounds), sum_value=values.get("sum", 0)
                )
        # Every queue with effort data gets every counter, 0 included: a rate shows 0, not
        # no data, and a ratio's denominator exists from the first resolution on.
        queues = sorted(
            {
                queue
                for family in Family
                if family is not Family.EVENT_CLOCK
                for queue in totals.get(family.value, {})
            }
        )
        for family, counter in counters.items():
            found = totals.get(family.value, {})
            for queue in queues:
                counter.add_metric([queue], found.get(queue, {}).get("", 0))
        yield from histograms.values()
        yield from counters.values()


def cumulative_buckets(values: dict[str, int], bounds: Sequence[int]) -> list[tuple[str, float]]:
    """Prometheus buckets (`le`, cumulative count) from per-bucket counts, `+Inf` last."""
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound in bounds:
        running += values.get(str(bound), 0)
        buckets.append((str(bound), float(running)))
    running += values.get(INF, 0)
    buckets.append((INF, float(running)))
    return buckets
