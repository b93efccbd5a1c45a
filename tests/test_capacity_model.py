"""The capacity model (bench/capacity.py) does the arithmetic docs/operations.md relies on.

One hand-computed case with round inputs, the floors of a small deployment, the partition
ladder and the command line. bench/ is not a package, so the module is loaded by path.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

PATH = Path(__file__).resolve().parents[1] / "bench" / "capacity.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_capacity", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


capacity = load()

ROUND = capacity.Inputs(
    worker_msg_per_s=1_000,
    utilisation=0.5,
    ingress_req_per_s=500,
    ingress_batched_msg_per_s=2_000,
    batched_share=0.5,
    projection_events_per_s=1_000,
    events_per_message=3,
    write_records_per_message=10,
    read_records_per_message=8,
    bytes_per_record=2_000,
    broker_write_records_per_s=300_000,
    broker_read_records_per_s=100_000,
    broker_write_mb_per_s=200,
    broker_budget=0.5,
    replication_factor=3,
    min_workers=2,
    min_ingress=2,
)


def test_a_hand_computed_plan() -> None:
    plan = capacity.plan(10_000, ROUND)

    # 10,000 / (1,000 x 0.5)
    assert plan.worker_processes == 20
    assert plan.worker_cores == 20.0
    # (5,000 / 500 single + 5,000 / 2,000 batched) / 0.5 = 12.5 / 0.5
    assert plan.ingress_processes == 25
    # 10,000 x 3 events / (1,000 x 0.5)
    assert plan.cases_events_per_s == 30_000
    assert plan.projection_replicas == 60
    # the projection's 60 replicas are the largest group: 2 x 60 = 120 -> 12, 24, 48, 96, 192
    assert plan.partitions == 192
    # events + a message row and a case upsert per message
    assert plan.database_rows_per_s == 30_000 + 2 * 10_000
    # 100,000 records x 3 replicas x 2,000 B = 600 MB/s; per broker 200 x 0.5 = 100 MB/s
    assert plan.kafka_write_records_per_s == 100_000
    assert plan.kafka_replicated_mb_per_s == 600.0
    assert plan.kafka_disk_gb_per_day == 600 * 86_400 / 1_000
    # 30,000 events x 2,000 B x 3 replicas a second, for a day, in GB
    assert plan.audit_log_gb_per_day == 30_000 * 2_000 * 3 * 86_400 / 1e9
    # records in: 300,000 / 150,000 = 2; records out: 80,000 / 50,000 = 1.6; MB in: 6
    assert plan.brokers == 6
    assert plan.brokers_bound_by == "MB in"


def test_a_small_deployment_keeps_its_floors() -> None:
    plan = capacity.plan(100, ROUND)

    assert plan.worker_processes == 2  # 0.2 cores of work, two for availability
    assert plan.worker_cores == 0.2
    assert plan.ingress_processes == 2
    assert plan.projection_replicas == 1
    assert plan.partitions == 12
    assert (plan.brokers, plan.brokers_bound_by) == (3, "replication")


@pytest.mark.parametrize(
    ("consumers", "partitions"),
    [(0, 12), (6, 12), (7, 24), (12, 24), (48, 96), (97, 384)],
)
def test_partitions_leave_room_to_double(consumers: int, partitions: int) -> None:
    assert capacity.partition_count(consumers) == partitions


def test_exact_quotients_are_not_rounded_up_by_float_noise() -> None:
    # 4,900 / (700 x 0.7) is 10.000000000000002 in floating point: 10 workers, not 11
    given = replace(ROUND, worker_msg_per_s=700, utilisation=0.7)
    assert capacity.plan(4_900, given).worker_processes == 10


def test_a_share_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="shares"):
        capacity.plan(1_000, replace(ROUND, utilisation=1.5))


def test_the_command_line_overrides_an_input(capsys: pytest.CaptureFixture[str]) -> None:
    capacity.main(["--rates", "1000", "--worker-msg-per-s", "250", "--json"])
    printed = json.loads(capsys.readouterr().out)

    assert printed["inputs"]["worker_msg_per_s"] == 250
    # 1,000 / (250 x the default 0.6 utilisation) = 6.67
    assert printed["plans"][0]["worker_processes"] == 7
