"""Capacity model: what a deployment needs for a target inbound rate, from measured figures.

Not a benchmark: it runs nothing against Kafka. It turns the figures recorded in
bench/RESULTS.md (each input below names its section) into worker processes and cores,
partitions, Kafka brokers, projection replicas, database rows per second and ingress
processes for each target rate, with stated headroom. The figures come from a 2-core
development machine with one local broker: feed your own (`make bench` on your cluster,
`kafka-producer-perf-test` on your brokers) with the options, e.g.

    .venv/bin/python bench/capacity.py --worker-msg-per-s 1200 --broker-write-records-per-s 400000
    .venv/bin/python bench/capacity.py --rates 2500 25000 --json
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


def _input(value: float, source: str) -> Any:
    """A model input with the measurement (or the choice) it comes from."""
    return field(default=value, metadata={"source": source})


@dataclass(frozen=True)
class Inputs:
    """Every figure the model uses; defaults are this repository's measurements and choices."""

    worker_msg_per_s: float = _input(
        2_060,
        "messages/s per worker core. RESULTS.md, Pipeline, 'After the clock fast paths and the "
        "zstd states' (4540095, examples/rules, 10,000 customers, 20,000 messages, two runs): "
        "484 and 486 µs of worker process CPU per message; their mean, 485 µs, is 2,060/s per "
        "core. The process itself reached 1,988-2,044 msg/s (37cd8ac: 647 µs, 1,540/s per "
        "core). One core per worker process is planned.",
    )
    ingress_req_per_s: float = _input(
        6_768,
        "single-message requests/s per ingress process. RESULTS.md, Inbound ingress, 'Quiet "
        "run' (09bb88c): wrk -c64 against 2 processes (uvicorn, httptools, uvloop, the lean "
        "route), 13,537 requests/s, every one answered 202 after acks=all, on the 2 cores the "
        "broker shared.",
    )
    ingress_batched_msg_per_s: float = _input(
        26_425,
        "messages/s per ingress process when posted 100 per request. RESULTS.md, Inbound "
        "ingress, 'Quiet run': 52,850 msgs/s on 2 processes.",
    )
    batched_share: float = _input(
        0.0, "share of inbound messages posted in batches (0: every message its own request)"
    )
    projection_events_per_s: float = _input(
        12_213,
        "cases.events records/s one projection replica writes to PostgreSQL when every batch "
        "touches cases already stored, as on a live topic: the batch writer alone, with the "
        "case_events rows and the cases/assignments upserts through COPY (RESULTS.md, Desk: "
        "case store projection, 'COPY on PostgreSQL'; 12,213-12,448 in two runs, main "
        "10,428-11,117 in the same session; 8,858 at f676be0). A first pass into a fresh "
        "store does 24,345-24,709 writer alone, 15,370-16,360 through Kafka in "
        "bench/projection.py (SQLite 17,002-20,384, one writer only); before the bulk-write "
        "rewrite, 1,680.",
    )
    events_per_message: float = _input(
        2.95,
        "cases.events records per inbound message, agents' work included. RESULTS.md, Fault "
        "injection, full profile: about 295,000 events for 100,000 messages and ~5,000 replies.",
    )
    write_records_per_message: float = _input(
        9.1,
        "Kafka records written per inbound message: messages.inbound, .resolved, .threaded, "
        "the customers and cases changelogs (1 each), cases.events (2.95), one queue record, "
        "agent.actions (~0.15, estimated). Derived from the worker's stages (streams/pipeline.py).",
    )
    read_records_per_message: float = _input(
        9.05,
        "Kafka records consumed per inbound message: the worker reads inbound, resolved, "
        "threaded and agent.actions (3.15); the projection and reply delivery each read "
        "cases.events (2 x 2.95). Replica fetches are counted as writes.",
    )
    bytes_per_record: float = _input(
        1_000,
        "average record size, uncompressed. RESULTS.md, SLA timers: event and queue records "
        "672-1,432 B, a case state 2,119 B; an inbound message is 332-480 B of JSON.",
    )
    broker_write_records_per_s: float = _input(
        185_000,
        "records/s one broker took in the bare confluent-kafka consume->produce loop (project "
        "brief, issue 13; RESULTS.md's quiet bare produce loop: 99,319). ONE DEVELOPMENT BROKER "
        "sharing 2 cores with its clients, replication factor 1: re-measure on your cluster.",
    )
    broker_read_records_per_s: float = _input(
        126_000,
        "records/s one broker served to a bare confluent-kafka consumer (project brief, issue "
        "13). Development broker, as above.",
    )
    broker_write_mb_per_s: float = _input(
        74,
        "MB/s one broker took: the consume->produce figure x ~400 B per record (the bench's "
        "inbound messages). Derived, client-bound: a floor, not the broker's ceiling.",
    )
    utilisation: float = _input(
        0.6, "plan each worker, ingress and projection process at this share of its measured rate"
    )
    broker_budget: float = _input(
        0.33, "plan each broker at this share of the measured single-broker figures"
    )
    replication_factor: float = _input(3, "ESCALATOR_KAFKA_REPLICATION_FACTOR on production")
    min_workers: float = _input(2, "fewest worker replicas: one can restart while one works")
    min_ingress: float = _input(2, "fewest ingress processes: two replicas for availability")


@dataclass(frozen=True)
class Plan:
    """What one target rate needs."""

    inbound_msg_per_s: float
    worker_processes: int
    worker_cores: float
    ingress_processes: int
    projection_replicas: int
    partitions: int
    kafka_write_records_per_s: float
    kafka_replicated_mb_per_s: float
    kafka_disk_gb_per_day: float
    audit_log_gb_per_day: float
    brokers: int
    brokers_bound_by: str
    database_rows_per_s: float
    cases_events_per_s: float


def _ceil(value: float) -> int:
    """Round up, ignoring float noise below 1e-9 (so 2.0000000001 stays 2)."""
    return math.ceil(round(value, 9))


def partition_count(consumers: int, smallest: int = 12) -> int:
    """The smallest of 12, 24, 48, 96, ... that holds twice `consumers` (room to double).

    12 x 2^n divides evenly among 1, 2, 3, 4, 6 or 12 consumers and among every power of two
    up to it, so a scale-out step leaves no member with one partition more than the others.
    """
    partitions = smallest
    while partitions < 2 * consumers:
        partitions *= 2
    return partitions


def plan(rate: float, given: Inputs) -> Plan:
    """Size a deployment for `rate` inbound messages per second."""
    if not (0 < given.utilisation <= 1 and 0 < given.broker_budget <= 1):
        raise ValueError("utilisation and broker_budget are shares in (0, 1]")
    worker_cores = rate / (given.worker_msg_per_s * given.utilisation)
    workers = max(int(given.min_workers), _ceil(worker_cores))
    single = rate * (1 - given.batched_share) / given.ingress_req_per_s
    batched = rate * given.batched_share / given.ingress_batched_msg_per_s
    ingress = max(int(given.min_ingress), _ceil((single + batched) / given.utilisation))
    events = rate * given.events_per_message
    projection = max(1, _ceil(events / (given.projection_events_per_s * given.utilisation)))
    writes = rate * given.write_records_per_message
    replicated_mb = writes * given.replication_factor * given.bytes_per_record / 1e6
    broker_limits = {
        "replication": given.replication_factor,
        "records in": writes
        * given.replication_factor
        / (given.broker_write_records_per_s * given.broker_budget),
        "records out": rate
        * given.read_records_per_message
        / (given.broker_read_records_per_s * given.broker_budget),
        "MB in": replicated_mb / (given.broker_write_mb_per_s * given.broker_budget),
    }
    bound_by = max(broker_limits, key=lambda name: _ceil(broker_limits[name]))
    return Plan(
        inbound_msg_per_s=rate,
        worker_processes=workers,
        worker_cores=round(worker_cores, 1),
        ingress_processes=ingress,
        projection_replicas=projection,
        partitions=partition_count(max(workers, projection)),
        kafka_write_records_per_s=round(writes),
        kafka_replicated_mb_per_s=round(replicated_mb, 1),
        kafka_disk_gb_per_day=round(replicated_mb * 86_400 / 1_000),
        # cases.events is created with retention.ms=-1 (escalator/topic_admin.py): it only grows
        audit_log_gb_per_day=round(
            events * given.bytes_per_record * given.replication_factor * 86_400 / 1e9
        ),
        brokers=_ceil(broker_limits[bound_by]),
        brokers_bound_by=bound_by,
        # A case_events row per event, a messages row per message, a cases upsert per message.
        database_rows_per_s=round(events + 2 * rate),
        cases_events_per_s=round(events),
    )


ROWS = (
    ("worker processes (1 core each)", "worker_processes"),
    ("worker cores at the planned utilisation", "worker_cores"),
    ("partitions per topic (2x the largest group)", "partitions"),
    ("projection replicas (PostgreSQL)", "projection_replicas"),
    ("cases.events records/s (projection input)", "cases_events_per_s"),
    ("database rows written/s", "database_rows_per_s"),
    ("ingress processes (1 core each)", "ingress_processes"),
    ("Kafka records written/s (before replication)", "kafka_write_records_per_s"),
    ("Kafka MB/s written, replicated", "kafka_replicated_mb_per_s"),
    ("Kafka GB written/day, replicated, before lz4", "kafka_disk_gb_per_day"),
    ("  of which cases.events, kept forever", "audit_log_gb_per_day"),
    ("Kafka brokers", "brokers"),
    ("  the limit that sets the broker count", "brokers_bound_by"),
)


def _cell(value: object) -> str:
    return f"{value:>12,}" if isinstance(value, int | float) else f"{value!s:>12}"


def table(plans: list[Plan]) -> str:
    """The plans side by side, one row per figure."""
    width = max(len(label) for label, _ in ROWS)
    head = f"{'inbound messages/s':<{width}}" + "".join(
        f"{p.inbound_msg_per_s:>12,.0f}" for p in plans
    )
    lines = [head, "-" * len(head)]
    for label, name in ROWS:
        cells = "".join(_cell(getattr(p, name)) for p in plans)
        lines.append(f"{label:<{width}}{cells}")
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> tuple[list[float], Inputs, bool]:
    """Target rates, the inputs with any overrides, and whether to print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    for item in fields(Inputs):
        parser.add_argument(
            "--" + item.name.replace("_", "-"),
            type=float,
            default=item.default,
            help=f"{item.metadata['source']} (default {item.default:,})",
        )
    args = parser.parse_args(argv)
    given = replace(Inputs(), **{item.name: getattr(args, item.name) for item in fields(Inputs)})
    return args.rates, given, args.json


def main(argv: list[str] | None = None) -> None:
    """Print the plan for each target rate, as a table or one JSON object."""
    rates, given, as_json = parse(argv)
    plans = [plan(rate, given) for rate in rates]
    if as_json:
        print(json.dumps({"inputs": asdict(given), "plans": [asdict(p) for p in plans]}))
        return
    print(table(plans))
    print(
        f"\nworkers, ingress and projection at {given.utilisation:.0%} of measured rates; "
        f"brokers at {given.broker_budget:.0%} of one development broker's figures, "
        f"replication factor {given.replication_factor:g}. `--help` lists every input "
        "and where it comes from."
    )


if __name__ == "__main__":
    main()
