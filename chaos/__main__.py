"""`python -m chaos [--profile full|ci] [--scenario NAME ...]`: run the fault-injection scenarios.

Prints one line per scenario as it ends, then the report as one JSON object on the last
line, and exits 1 when any invariant failed in any scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from chaos.cluster import Cluster
from chaos.load import Plan
from chaos.scenarios import SCENARIOS, run_scenario

PROFILES = {
    "full": Plan(messages=100_000, customers=10_000, rate=400.0),
    "ci": Plan(messages=3_000, customers=600, rate=100.0),
}


def main() -> int:
    """Run the scenarios against a fresh three-broker cluster and report."""
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--messages", type=int, help="Override the profile's message count.")
    parser.add_argument("--rate", type=float, help="Override the profile's messages per second.")
    parser.add_argument("--workdir", type=Path, help="Keep logs and stores here.")
    parser.add_argument(
        "--cluster-port",
        type=int,
        default=19092,
        help="First broker port (controllers: +100); keep all six below the ephemeral range",
    )
    args = parser.parse_args()
    clash = _ephemeral_clash(args.cluster_port)
    if clash:
        parser.error(clash)
    plan = PROFILES[args.profile]
    if args.messages or args.rate:
        plan = Plan(
            messages=args.messages or plan.messages,
            customers=min(plan.customers, args.messages or plan.customers),
            rate=args.rate or plan.rate,
        )
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="escalator-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(workdir / "kafka", port=args.cluster_port)
    names = args.scenario or list(SCENARIOS)
    results = []
    print(f"chaos: {len(names)} scenarios, {plan}, logs in {workdir}", file=sys.stderr)
    cluster.start()
    try:
        for name in names:
            try:
                result = run_scenario(name, cluster, plan, workdir)
            except Exception as error:  # the harness failed: report it, go on with the next
                result = {"name": name, "ok": False, "problems": [f"harness: {error!r}"[:2000]]}
            results.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
    finally:
        if not os.environ.get("CHAOS_KEEP_CLUSTER"):
            cluster.stop()
    print(json.dumps({"profile": args.profile, "scenarios": results}))
    return 0 if all(result["ok"] for result in results) else 1


def _ephemeral_clash(first_port: int) -> str | None:
    """Why these cluster ports would break a broker restart, if they would.

    A killed broker's port is free until it comes back; in the ephemeral range, any client's
    outgoing connection may take it meanwhile, and the restarted broker fails with `Address
    already in use` (a full run on 39092 lost two scenarios that way).
    """
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return None
    ports = [first_port + n for n in (0, 1, 2, 100, 101, 102)]
    inside = [port for port in ports if low <= port <= high]
    if not inside:
        return None
    return (
        f"ports {inside} are in the ephemeral range {low}-{high}: a client may take a killed "
        f"broker's port before it restarts; pick --cluster-port below {low - 102}"
    )


if __name__ == "__main__":
    sys.exit(main())
