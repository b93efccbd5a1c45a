"""bench/stage_c.py runs stage C's real per-record path: every message is applied and written.

A small run, to keep the bench from rotting; its timings are not checked (tests check
behaviour, the bench measures). bench/ is not a package, so the module is loaded by path.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

PATH = Path(__file__).resolve().parents[1] / "bench" / "stage_c.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_stage_c", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_message_opens_or_joins_its_customers_case_and_writes_records() -> None:
    bench = load()
    records = bench.threaded_records(200, customers=50)
    assert len({key for key, _ in records}) < len(records)  # follow-ups of held cases too
    written = bench.stage_c(records)()
    # each message: at least its appended event, its queue record and its state
    assert written >= 3 * len(records)


def test_the_command_line_ends_with_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(PATH), "--messages", "100", "--repeats", "1", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["messages"] == 100
    assert figures["stage_c_us_per_msg"] > 0 and figures["baseline_us_per_msg"] > 0
