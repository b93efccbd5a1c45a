"""The scenarios: one fault each, injected while steady load, agent actions and SLA deadlines run.

Every scenario gets fresh topics (its own prefix), a fresh case store and fresh processes on
the shared three-broker cluster. The runner plays supervisor, as Kubernetes would: a process
that exits by itself is started again and counted in `restarts`.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.agents import Agents
from chaos.cluster import COORDINATOR_TOPICS, Cluster
from chaos.load import Load, Plan
from chaos.observer import Observer, verdict
from chaos.sinks import Deliveries, HttpSink, SmtpSink
from chaos.stack import RULES, ChaosStack
from chaos.store_check import count_events, differences, rebuild
from escalator.demo.processes import ManagedProcess
from schemas import Topics

DRAIN_TIMEOUT_SECONDS = 900.0
QUIET_SECONDS = 5.0
REPLIES_GRACE_SECONDS = 120.0


@dataclass
class Context:
    """What a scenario's fault can act on."""

    cluster: Cluster
    stack: ChaosStack
    load: Load
    plan: Plan
    rng: random.Random
    notes: list[str] = field(default_factory=list)
    exits: list[str] = field(default_factory=list)
    """Processes that exited although nobody stopped them (each was started again)."""

    def at_fraction(self, fraction: float, timeout: float = 1800.0) -> None:
        """Wait until this share of the load was accepted."""
        target = int(self.plan.messages * fraction)
        deadline = time.monotonic() + timeout
        while self.load.sent < target and not self.load.done.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError(f"load stuck at {self.load.sent} of {target}")
            supervise(self)
            time.sleep(0.2)


def supervise(ctx: Context) -> None:
    """Start again any process that exited on its own (a crash), as an orchestrator would."""
    stack = ctx.stack
    for worker in list(stack.workers):
        if not worker.alive:  # the ones killed on purpose were taken off the list first
            stack.workers.remove(worker)
            ctx.exits.append(_exit(worker))
            stack.start_worker(wait=False)
    if stack.ingress is not None and not stack.ingress.alive:
        ctx.exits.append(_exit(stack.ingress))
        stack.start_ingress()
        ctx.load.set_ingress(stack.ingress_url)
    if stack.projection is not None and not stack.projection.alive:
        ctx.exits.append(_exit(stack.projection))
        stack.start_projection()
    if stack.replies is not None and not stack.replies.alive:
        ctx.exits.append(_exit(stack.replies))
        stack.start_replies()


def _exit(process: ManagedProcess) -> str:
    """How a process ended, with the last error line of its log."""
    lines = process.log_path.read_text(errors="replace").splitlines()
    errors = [line for line in lines if "Error" in line or "CRITICAL" in line]
    return f"{process.name} exit {process.process.returncode}: {(errors or [''])[-1][:300]}"


def _kill_worker(ctx: Context) -> None:
    victim = ctx.rng.choice(ctx.stack.alive_workers())
    ctx.stack.kill9(victim)
    ctx.stack.workers.remove(victim)
    ctx.notes.append(f"SIGKILL {victim.name}")
    ctx.stack.start_worker(wait=False)


def kill9_worker(ctx: Context) -> None:
    """SIGKILL a worker mid-stream, twice (each is started again, as an orchestrator would)."""
    ctx.at_fraction(0.3)
    _kill_worker(ctx)
    ctx.at_fraction(0.6)
    _kill_worker(ctx)


def rolling_restart(ctx: Context) -> None:
    """Restart the three workers one by one: three rebalances under load."""
    ctx.at_fraction(0.3)
    for worker in list(ctx.stack.workers):
        worker.stop()
        ctx.stack.workers.remove(worker)
        ctx.stack.start_worker()
        ctx.notes.append(f"restarted {worker.name}")


def scale_out(ctx: Context) -> None:
    """Grow from one worker to three under load."""
    ctx.at_fraction(0.2)
    ctx.stack.start_worker()
    ctx.at_fraction(0.4)
    ctx.stack.start_worker()


def broker_kill(ctx: Context) -> None:
    """SIGKILL the broker leading the most partitions; bring it back later."""
    ctx.at_fraction(0.4)
    topics = Topics(ctx.stack.env["ESCALATOR_TOPIC_PREFIX"])
    counts = ctx.cluster.leader_counts([topics.inbound, topics.case_events, topics.threaded])
    node = max(counts, key=lambda n: counts[n]) if counts else 1
    ctx.cluster.kill(node)
    ctx.notes.append(f"SIGKILL broker {node} (leader of {counts.get(node, 0)} partitions)")
    ctx.at_fraction(0.7)
    ctx.cluster.start_node(node)


def outage_30s(ctx: Context) -> None:
    """Stop every broker for 30 s; everything must recover by itself."""
    ctx.at_fraction(0.4)
    for node in range(1, ctx.cluster.size + 1):
        ctx.cluster.kill(node)
    ctx.notes.append("all brokers down")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        supervise(ctx)
        time.sleep(1)
    ctx.cluster.start()  # every node at once: one alone waits for a quorum that is not there
    ctx.notes.append("all brokers back")


def projection_kill(ctx: Context) -> None:
    """SIGKILL the projection mid-batch, start it again."""
    ctx.at_fraction(0.5)
    assert ctx.stack.projection is not None
    ctx.stack.kill9(ctx.stack.projection)
    ctx.notes.append("SIGKILL projection")
    ctx.stack.start_projection()


def replies_kill(ctx: Context) -> None:
    """SIGKILL the reply service mid-batch, start it again."""
    ctx.at_fraction(0.5)
    assert ctx.stack.replies is not None
    ctx.stack.kill9(ctx.stack.replies)
    ctx.notes.append("SIGKILL replies")
    ctx.stack.start_replies()


def leader_move(ctx: Context) -> None:
    """Move every partition leader and the coordinators at 30 % and 60 % of the load, and
    once more when it is all sent, while agents act and SLA timers fire.

    The scenario's partitions and those of `__consumer_offsets` and `__transaction_state`
    get another preferred leader and a preferred election: the worker group's coordinator
    and the stages' transaction coordinators move with the leaders, as when Kafka's
    periodic preferred-leader rebalance runs after a broker came back (the move that once
    came during projection-kill did so minutes into the scenario, after its load).
    """
    prefix = ctx.stack.env["ESCALATOR_TOPIC_PREFIX"]
    for fraction in (0.3, 0.6, 1.0):
        ctx.at_fraction(fraction)
        moved = ctx.cluster.move_leaders(f"{prefix}worker", [prefix, *COORDINATOR_TOPICS])
        before, after = moved["before"], moved["after"]
        transactions = before["transactions"]
        coordinators_moved = sum(
            1 for tid, node in after["transactions"].items() if transactions.get(tid) != node
        )
        ctx.notes.append(
            f"at {fraction:.0%}: {moved['leaders_moved']} of {moved['partitions']} leaders moved"
            f" ({moved['not_moved']} not), group coordinator {before['group']} -> "
            f"{after['group']}, {coordinators_moved} of {len(transactions)} transaction "
            "coordinators moved"
        )


EXITS_ALLOWED = frozenset({"outage-30s"})
"""Scenarios in which a process may exit (and be restarted): every broker was gone."""

SCENARIOS: dict[str, tuple[Callable[[Context], None], int]] = {
    "kill9-worker": (kill9_worker, 3),
    "rolling-restart": (rolling_restart, 3),
    "scale-out": (scale_out, 1),
    "broker-kill": (broker_kill, 3),
    "outage-30s": (outage_30s, 3),
    "projection-kill": (projection_kill, 3),
    "replies-kill": (replies_kill, 3),
    "leader-move": (leader_move, 3),
}
"""Name → (the fault, how many workers the scenario starts with)."""


def run_scenario(name: str, cluster: Cluster, plan: Plan, workdir: Path) -> dict[str, Any]:
    """Run one scenario and return its line of the report."""
    fault, initial_workers = SCENARIOS[name]
    started = time.monotonic()
    run = f"{name}-{uuid.uuid4().hex[:6]}"
    workdir = workdir / run
    workdir.mkdir(parents=True)
    deliveries = Deliveries()
    smtp, http = SmtpSink(deliveries), HttpSink(deliveries)
    smtp.start()
    http.start()
    prefix = f"chaos-{run}."
    env = _environment(cluster, prefix, workdir, smtp, http)
    stack = ChaosStack(env=env, workdir=workdir)
    topics = Topics(prefix)
    observer: Observer | None = None
    agents: Agents | None = None
    try:
        for _ in range(initial_workers):
            stack.start_worker()
        stack.start_ingress()
        stack.start_projection()
        stack.start_replies()
        observer = Observer(cluster.bootstrap, topics.case_events)
        observer.start()
        agents = Agents(cluster.bootstrap, topics)
        agents.start()
        load = Load(stack.ingress_url, run, plan)
        ctx = Context(cluster, stack, load, plan, random.Random(name))
        load.start()
        fault(ctx)
        ctx.at_fraction(1.0)
        agents.stop_scheduling()
        _drain(ctx, observer, agents)
        agents.stop()
        _settle(ctx, observer, deliveries)
        result = _judge(ctx, observer, deliveries)
        result["unexpected_exits"] = len(ctx.exits)
        if ctx.exits:
            result.setdefault("problems", []).extend(ctx.exits)
            result["ok"] = result["ok"] and name in EXITS_ALLOWED
        result["seconds"] = round(time.monotonic() - started, 1)
        return {"name": name, **result}
    finally:
        if agents is not None:
            agents.stop()
        if observer is not None:
            observer.stop()
        stack.stop()
        smtp.stop()
        http.stop()
        cluster.delete_topics(prefix)


def _environment(
    cluster: Cluster, prefix: str, workdir: Path, smtp: SmtpSink, http: HttpSink
) -> dict[str, str]:
    """Every process's settings: the scenario's topics, store, rules and sinks."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap,
        "ESCALATOR_TOPIC_PREFIX": prefix,
        "ESCALATOR_DATABASE_URL": f"sqlite:///{workdir / 'store.db'}",
        "ESCALATOR_RULES": str(RULES),
        "ESCALATOR_KAFKA_PARTITIONS": "6",
        "ESCALATOR_KAFKA_REPLICATION_FACTOR": "3",
        "ESCALATOR_INGRESS_AUTH": "none",
        "ESCALATOR_LOG_LEVEL": "WARNING",
        "ESCALATOR_REPLY_FROM": "support@chaos.example",
        "ESCALATOR_SMTP_RELAY_HOST": "127.0.0.1",
        "ESCALATOR_SMTP_RELAY_PORT": str(smtp.port),
        "ESCALATOR_REPLY_WEBHOOK_URL": http.url,
        "ESCALATOR_REPLY_WEBHOOK_SECRET": "chaos-webhook-secret",
        "ESCALATOR_REPLIES_FROM_BEGINNING": "true",
        "ESCALATOR_REPLY_BACKOFF_SECONDS": "0.5",
    }


def _judge(ctx: Context, observer: Observer, deliveries: Deliveries) -> dict[str, Any]:
    """Check every invariant once the scenario has drained."""
    stack, load = ctx.stack, ctx.load
    facts = observer.facts
    log = verdict(facts, load.report.accepted)
    crashed = stack.crashed()
    # a reply in doubt after a kill is reported on its case (reply.failed), never sent twice
    reported = len(facts.replies_reported)
    undelivered = len(facts.replies_appended) - len(deliveries.snapshot()) - reported
    assert stack.projection is not None
    stack.projection.stop()
    live_url = stack.env["ESCALATOR_DATABASE_URL"]
    rebuilt_url = f"sqlite:///{stack.workdir / 'rebuilt.db'}"
    rebuild(stack.env, rebuilt_url, stack.logs)
    store_diff = differences(live_url, rebuilt_url)
    sent_twice = sum(1 for count in deliveries.snapshot().values() if count > 1)
    no_retry_after = load.report.unavailable - load.report.unavailable_with_retry_after
    result: dict[str, Any] = {
        "sent": load.sent,
        "lost": log.lost,
        "duplicated": log.duplicated,
        "cases_without_one_opening": log.cases_without_one_opening,
        "event_id_conflicts": log.event_id_conflicts,
        "sla_events_duplicated": log.sla_events_duplicated,
        "sla_fired_after_met": log.sla_fired_after_met,
        "replies_sent_twice": sent_twice,
        "replies_delivered": deliveries.total,
        "replies_undelivered": max(0, undelivered),
        "replies_reported": reported,
        "agent_replies": len(facts.replies_appended),
        "store_matches_log": not store_diff,
        "refused": len(load.report.refused),
        "ingress_503": load.report.unavailable,
        "ingress_503_without_retry_after": no_retry_after,
        "events": len(facts.content),
        "cases": len(facts.opened),
        "faults": ctx.notes,
        "ok": log.ok
        and not store_diff
        and sent_twice == 0
        and undelivered <= 0
        and not load.report.refused
        and no_retry_after == 0,
    }
    problems = [
        *(f"event id with two contents: {example}" for example in log.conflict_examples),
        *store_diff,
        *load.report.refused[:3],
        *(f"crashed: {c}" for c in crashed),
    ]
    if problems:
        result["problems"] = problems
    return result


def _drain(ctx: Context, observer: Observer, agents: Agents) -> None:
    """Wait until every accepted message is in the log and the agents have acted."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    accepted = ctx.load.report.accepted
    while time.monotonic() < deadline:
        supervise(ctx)
        if observer.appended_count(accepted) == len(accepted) and agents.pending == 0:
            return
        time.sleep(1.0)
    ctx.notes.append("drain timed out: the invariants below say what is missing")
    held = ctx.cluster.open_transactions(ctx.stack.env["ESCALATOR_TOPIC_PREFIX"])
    if held:
        ctx.notes.append(f"transactions still open (stable offset < high watermark): {held}")


def _settle(ctx: Context, observer: Observer, deliveries: Deliveries) -> None:
    """Stop the writers of `cases.events`, then wait until the log, store and sinks are still.

    SLA timers keep writing for as long as cases are open, so the workers stop first; the
    projection and the reply service then catch up with a log that no longer grows.
    """
    for worker in ctx.stack.workers:
        worker.stop()
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    last, quiet_since = -1, time.monotonic()
    url = ctx.stack.env["ESCALATOR_DATABASE_URL"]
    while time.monotonic() < deadline:
        events = observer.distinct_events
        if events != last:
            last, quiet_since = events, time.monotonic()
        replies = len(observer.facts.replies_appended)
        delivered = len(deliveries.snapshot()) + len(observer.facts.replies_reported) >= replies
        if (
            time.monotonic() - quiet_since > QUIET_SECONDS
            and count_events(url) >= events
            and (delivered or time.monotonic() - quiet_since > REPLIES_GRACE_SECONDS)
        ):
            return
        time.sleep(1.0)
    ctx.notes.append("settling timed out")
