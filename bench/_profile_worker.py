"""Where the worker's time goes: py-spy on the worker while it works through pre-filled messages.

The same traffic and worker as `bench/pipeline.py`'s throughput phase (examples/rules, the
local Kafka): the messages are written first, the worker is started, and py-spy samples it
(`--gil`, so only the thread running Python counts) while it routes them. The summary is the
share of samples held by each stage and the top frames by self time, what bench/RESULTS.md
reports for issue 13.

    .venv/bin/python bench/_profile_worker.py [--messages 30000] [--seconds 20] [--top 15]

py-spy is a development dependency (`pip install -e '.[dev]'`); it needs to be allowed to
read the worker's memory (root, or `kernel.yama.ptrace_scope` 0). Not part of `make bench`:
a profile slows the worker, so its rate is not a result.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import pipeline  # noqa: E402

STAGES = {
    "stage A (intake)": "IntakeStage.intake_batch",
    "stage B (threading)": "ThreadingStage.threading_batch",
    "stage C (cases)": "CasesStage.cases_batch",
    "  apply_message": "apply_message (streams/casework.py)",
    "SLA timer": "SlaFiring.fire_due",
    "faust drain": "Consumer._drain_messages",
    "faust passive drainer": "Stream._passive_drainer",
}
"""Inclusive shares to print: a label and the start of the frame's name."""


def summary(raw: Path, top: int) -> str:
    """Stage shares and the top frames by self time, from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    within: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = [re.sub(r":\d+\)", ")", frame) for frame in stack.split(";")]
        own[frames[-1]] += samples
        for frame in set(frames):
            within[frame] += samples
    lines = [f"samples: {total}"]
    for label, start in STAGES.items():
        share = sum(n for frame, n in within.items() if frame.startswith(start))
        lines.append(f"{label:24} {100 * share / max(total, 1):5.1f} %")
    lines += ["", "| self | frame |", "|---:|---|"]
    for frame, samples in own.most_common(top):
        lines.append(f"| {100 * samples / max(total, 1):.1f} % | `{frame}` |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--seconds", type=int, default=20, help="how long py-spy samples")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        sys.exit("py-spy is not installed: pip install -e '.[dev]'")
    workdir = Path(tempfile.mkdtemp(prefix="escalator-profile-"))
    raw = workdir / "py-spy.txt"
    command = [spy, "record", "--gil", "-r", "200", "-d", str(args.seconds), "-f", "raw"]

    @contextlib.contextmanager
    def sampled(pid: int) -> Iterator[None]:
        sampling = subprocess.Popen(
            [*command, "-o", str(raw), "--pid", str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield
        finally:
            sampling.wait()

    batch = pipeline.messages(args.messages, 7)
    rate, cpu = pipeline.throughput("escalator worker", batch, workdir, attached=sampled)
    print(f"worker under the profiler: {rate:.0f} msg/s, {1e6 * cpu:.0f} µs CPU a message")
    print(summary(raw, args.top))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
