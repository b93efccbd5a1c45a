"""The demo run: broker, worker, ingress and projection, fed with sample traffic.

It sends traffic through the real HTTP ingress until the duration ends (or Ctrl-C), while
simulated agents answer and resolve cases under short SLA targets (`escalator.demo.agents`),
then waits until every accepted message has been routed, stops everything it started,
and prints a tally. The tally's `messages_unrouted` must be 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from connectors import ingress_keys
from escalator.demo import processes
from escalator.demo.agents import DEMO_QUEUES, DEMO_RULES, DemoAgents
from escalator.demo.case_log import read_paging_log
from escalator.demo.desk_logins import create_demo_logins
from escalator.demo.outbox import DemoOutbox
from escalator.demo.traffic import TrafficGenerator
from escalator.embedded_broker import EmbeddedBroker
from kafkaio import Record
from kafkaio.blocking import BlockingProducer
from queues import CaseStore, StoreNotInitialisedError
from schemas import Topics

DRAIN_TIMEOUT_SECONDS = 120.0
IN_FLIGHT_REQUESTS = 32
RAW_INVALID_EVERY = 100
"""Every Nth request is instead a broken record written straight to Kafka (a user's own
connector gone wrong), which the worker must dead-letter with its reason."""


@dataclass
class Tally:
    """What the demo did; printed at the end (as JSON with `--json`)."""

    duration_seconds: float = 0.0
    requests_sent: int = 0
    messages_ingested: int = 0
    messages_rejected: int = 0
    duplicates_sent: int = 0
    messages_routed: int = 0
    messages_unrouted: int = 0
    cases_opened: int = 0
    cases_routed: int = 0
    cases_in_store: int = 0
    dead_lettered: int = 0
    raw_invalid_sent: int = 0
    agent_replies: int = 0
    cases_resolved: int = 0
    acknowledgements_sent: int = 0
    """Acknowledgements (with their promise) the reply service delivered to the outbox."""
    customer_escalations: int = 0
    """Demo customers who used their acknowledgement's "still not solved?" link."""
    replies_delivered: int = 0
    """Agents' replies the reply service delivered to the outbox (mail or webhook)."""
    agent_escalations: int = 0
    pages_sent: int = 0
    pages_acknowledged: int = 0
    pages_delivered: int = 0
    resolutions_with_effort: int = 0
    cases_resolved_settled: int = 0
    first_contact_resolved: int = 0
    repeat_contacts: int = 0
    ingest_to_routed_p50_seconds: float | None = None
    endpoints: dict[str, str] = field(default_factory=dict)


@dataclass
class Endpoints:
    """Where the demo's processes listen."""

    ingress: str
    worker_metrics: str
    projection_metrics: str
    kafka: str
    inbound_topic: str


class RawInbound:
    """Writes records straight to the inbound topic, as a user's own connector would."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._producer = BlockingProducer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self._topic = topic

    def send_broken(self, number: int) -> None:
        """A record that is not a valid inbound message (the worker must dead-letter it)."""
        broken = b"{truncated json" if number % 2 else json.dumps({"channel": "sms"}).encode()
        self._producer.enqueue([Record(self._topic, b"broken-connector", broken)])

    def close(self) -> None:
        """Deliver what is queued."""
        self._producer.close(10)


class Demo:
    """Owns the demo's processes and counters."""

    def __init__(self, duration: float | None, rate: float, console: Console) -> None:
        self.duration = duration
        self.rate = rate
        self.console = console
        self.tally = Tally()
        self.accepted_keys: set[str] = set()
        self.database_url: str | None = None
        self.ingress_key = ""
        self.started = time.monotonic()
        self._stopping = asyncio.Event()
        self.terminating = False
        self.outbox: DemoOutbox | None = None
        self.paging_cases: set[str] = set()
        """Cases a page waits on, as of the last refresh (the demo agents acknowledge them)."""

    def count_outbox(self) -> None:
        """Copy the outbox's counts into the tally."""
        if self.outbox is not None:
            self.tally.acknowledgements_sent = self.outbox.acknowledgements
            self.tally.customer_escalations = self.outbox.customer_escalations
            self.tally.replies_delivered = self.outbox.replies
            self.tally.pages_delivered = self.outbox.pages

    def stop(self) -> None:
        """Ask the traffic loop to finish (Ctrl-C)."""
        self._stopping.set()

    def terminate(self) -> None:
        """SIGTERM: stop sending and stop everything now, without waiting for the drain."""
        self.terminating = True
        self._stopping.set()

    async def send_traffic(self, ingress: str, raw_inbound: RawInbound) -> None:
        """Send requests at the configured rate until the duration ends or stop() is called."""
        generator = TrafficGenerator()
        started = time.monotonic()
        interval = 1.0 / self.rate
        slots = asyncio.Semaphore(IN_FLIGHT_REQUESTS)
        pending: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(base_url=ingress, timeout=30.0) as client:
            while not self._stopping.is_set():
                if self.duration is not None and time.monotonic() - started >= self.duration:
                    break
                if self.tally.requests_sent and self.tally.requests_sent % RAW_INVALID_EVERY == 0:
                    raw_inbound.send_broken(self.tally.requests_sent)
                    self.tally.raw_invalid_sent += 1
                request = generator.next_request()
                self.tally.requests_sent += 1
                await slots.acquire()
                task = asyncio.create_task(
                    self._send(client, request.body, request.message_key, request.duplicate_of)
                )
                task.add_done_callback(lambda _task: slots.release())
                pending.add(task)
                task.add_done_callback(pending.discard)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=interval)
            await asyncio.gather(*pending)

    async def _send(
        self, client: httpx.AsyncClient, body: object, key: str | None, duplicate_of: str | None
    ) -> None:
        content = body if isinstance(body, str) else json.dumps(body)
        headers = {
            "content-type": "application/json",
            "authorization": f"Bearer {self.ingress_key}",
        }
        for _attempt in range(10):
            response = await client.post("/v1/messages", content=content, headers=headers)
            if response.status_code != 503:
                break
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
        if response.status_code == 202 and key is not None:
            if duplicate_of is not None:
                self.tally.duplicates_sent += 1
            self.accepted_keys.add(key)
        elif 400 <= response.status_code < 500:
            self.tally.messages_rejected += 1
        else:
            raise RuntimeError(f"ingress answered {response.status_code}: {response.text}")

    def refresh(self, endpoints: Endpoints) -> None:
        """Read the worker's and the projection's metrics into the tally."""
        self.tally.duration_seconds = round(time.monotonic() - self.started, 1)
        self.count_outbox()
        worker = processes.scrape(endpoints.worker_metrics)
        self.tally.messages_ingested = len(self.accepted_keys)
        self.tally.messages_routed = int(worker.get("escalator_ingest_to_routed_seconds_count", 0))
        self.tally.messages_unrouted = max(
            0, self.tally.messages_ingested - self.tally.messages_routed
        )
        self.tally.cases_opened = int(worker.get("escalator_cases_opened_total", 0))
        self.tally.cases_routed = int(worker.get("escalator_cases_routed_total", 0))
        self.tally.dead_lettered = int(worker.get("escalator_messages_dead_lettered_total", 0))
        p50 = processes.histogram_quantile(
            endpoints.worker_metrics, "escalator_ingest_to_routed_seconds", 0.5
        )
        self.tally.ingest_to_routed_p50_seconds = None if p50 is None else round(p50, 3)
        self.tally.cases_in_store = self._count_stored_cases()
        effort = processes.scrape(endpoints.projection_metrics)
        self.tally.resolutions_with_effort = int(effort.get("escalator_case_contacts_count", 0))
        self.tally.cases_resolved_settled = int(effort.get("escalator_cases_resolved_total", 0))
        self.tally.first_contact_resolved = int(
            effort.get("escalator_first_contact_resolved_total", 0)
        )
        self.tally.repeat_contacts = int(effort.get("escalator_repeat_contacts_total", 0))
        if self.database_url is not None:
            paging = read_paging_log(self.database_url)
            self.paging_cases = paging.paging_cases
            self.tally.agent_escalations = paging.agent_escalations
            self.tally.pages_sent = paging.pages_sent
            self.tally.pages_acknowledged = paging.pages_acknowledged

    def _count_stored_cases(self) -> int:
        if self.database_url is None:
            return 0
        try:
            with contextlib.closing(CaseStore.open(self.database_url)) as store:
                return store.count_cases()
        except (StoreNotInitialisedError, SQLAlchemyError):
            return 0  # the projection has not created the schema yet

    def view(self) -> Table:
        """The live summary table."""
        table = Table(title="Escalator demo", show_header=False, min_width=50)
        for name, value in asdict(self.tally).items():
            if name != "endpoints" and value is not None:
                table.add_row(
                    name.replace("_", " "),
                    f"{value:.3f}" if isinstance(value, float) else str(value),
                )
        return table


async def run(duration: float | None, rate: float, as_json: bool, console: Console) -> Tally:
    """Run the whole demo and return its tally."""
    demo = Demo(duration, rate, console)
    # a SIGTERM (a service manager, `kill`) stops the demo and everything it started
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, demo.terminate)
    workdir = Path(tempfile.mkdtemp(prefix="escalator-demo-"))
    rules = workdir / "rules.yaml"
    rules.write_text(DEMO_RULES)
    keys_file = workdir / "ingress-keys.json"
    demo.ingress_key = demo_ingress_key(keys_file)
    with EmbeddedBroker() as broker:
        names = ("ingress", "worker", "projection", "desk", "replies")
        ports = {name: processes.free_port() for name in names}
        outbox = DemoOutbox(workdir / "outbox")
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "ESCALATOR_DATA_DIR": str(workdir),
            "ESCALATOR_DATABASE_URL": f"sqlite:///{workdir / 'escalator.db'}",
            "ESCALATOR_PROJECTION_METRICS_PORT": str(ports["projection"]),
            "ESCALATOR_EMBEDDED_BROKER": "tansu",
            "ESCALATOR_LOG_LEVEL": "WARNING",
            "ESCALATOR_RULES": str(rules),
            "ESCALATOR_INGRESS_KEYS_FILE": str(keys_file),
            # the console on http://127.0.0.1: its cookie without Secure (a laptop, no TLS)
            "ESCALATOR_DESK_PLAIN_HTTP": "true",
            # customer effort: judge resolutions (first contact or not) within a demo run
            "ESCALATOR_REPEAT_CONTACT_WINDOW": "30",
            "ESCALATOR_EFFORT_SETTLE_GRACE": "5",
            # acknowledgements carry a "still not solved?" link to the demo's ingress
            "ESCALATOR_ESCALATE_LINK_SECRET": secrets.token_urlsafe(24),
            "ESCALATOR_ESCALATE_LINK_URL": f"http://127.0.0.1:{ports['ingress']}",
        }
        endpoints = Endpoints(
            ingress=f"http://127.0.0.1:{ports['ingress']}",
            worker_metrics=f"http://127.0.0.1:{ports['worker']}/metrics",
            projection_metrics=f"http://127.0.0.1:{ports['projection']}/metrics",
            kafka=broker.bootstrap_servers,
            inbound_topic=Topics().inbound,
        )
        demo.tally.endpoints = {
            "kafka": broker.bootstrap_servers,
            "ingress": f"{endpoints.ingress}/v1/messages",
            "ingress_metrics": f"{endpoints.ingress}/metrics",
            "worker_metrics": endpoints.worker_metrics,
            "projection_metrics": endpoints.projection_metrics,
            "console": f"http://127.0.0.1:{ports['desk']}/console/login",
            "replies_metrics": f"http://127.0.0.1:{ports['replies']}/metrics",
            "outbox": str(outbox.directory),
        }
        demo.database_url = env["ESCALATOR_DATABASE_URL"]
        logs = workdir / "logs"
        started = [
            processes.start("worker", ["worker", "--web-port", str(ports["worker"])], env, logs),
            processes.start(
                "ingress", ["connect", "http", "--port", str(ports["ingress"])], env, logs
            ),
            processes.start("projection", ["projection"], env, logs),
            processes.start("desk", ["desk", "--port", str(ports["desk"])], env, logs),
        ]
        outbox.start()
        replies_env = {
            **env,
            **outbox.reply_service_env(),
            "ESCALATOR_REPLIES_METRICS_PORT": str(ports["replies"]),
            # the rules' `oncall` pager is a Slack incoming webhook: the outbox's
            "ESCALATOR_PAGER_KEYS": json.dumps({"oncall": outbox.pager_url("oncall")}),
        }
        started.append(processes.start("replies", ["connect", "replies"], replies_env, logs))
        demo.outbox = outbox
        try:
            worker, ingress, _projection, desk, _replies = started
            processes.wait_until_ready(f"{endpoints.ingress}/readyz", ingress)
            processes.wait_until_ready(
                endpoints.worker_metrics.replace("/metrics", "/readyz"), worker
            )
            processes.wait_until_ready(f"http://127.0.0.1:{ports['desk']}/readyz", desk)
            logins = create_demo_logins(env["ESCALATOR_DATABASE_URL"], DEMO_QUEUES)
            if not as_json:
                for name, url in demo.tally.endpoints.items():
                    console.print(f"[bold]{name}[/]: {url}")
                console.print(f"logs: {logs}")
                for login in logins:
                    console.print(
                        f"[bold]console login[/] {login.name} ({login.role.value}): {login.token}",
                        soft_wrap=True,
                        highlight=False,
                    )
                console.print(
                    f"[bold]ingress key[/] (keys file {keys_file}): {demo.ingress_key}\n"
                    f"try: {example_curl(endpoints.ingress, demo.ingress_key)}",
                    soft_wrap=True,
                    markup=True,
                    highlight=False,
                )
            await _drive(demo, endpoints, as_json, console)
        finally:
            for process in reversed(started):
                process.stop()
            outbox.stop()
            demo.count_outbox()  # what arrived while the reply service stopped counts too
    return demo.tally


def demo_ingress_key(keys_file: Path) -> str:
    """A key for every channel, made as `escalator ingress keys add demo --channels '*'` does."""
    keys = ingress_keys.load(keys_file)
    token = ingress_keys.add(keys, "demo", [ingress_keys.ALL_CHANNELS])
    ingress_keys.save(keys_file, keys)
    return token


def example_curl(ingress: str, key: str) -> str:
    """A curl command posting one message to the demo's ingress with its key."""
    message = {
        "channel": "chat",
        "external_id": "try-1",
        "sender": "visitor-1",
        "text": "Hello, is anyone there?",
        "sent_at": "2026-11-20T09:30:00Z",
    }
    return (
        f"curl -sS {ingress}/v1/messages -H 'Authorization: Bearer {key}' "
        f"-H 'content-type: application/json' -d '{json.dumps(message)}'"
    )


async def _drive(demo: Demo, endpoints: Endpoints, as_json: bool, console: Console) -> None:
    demo.started = time.monotonic()
    raw_inbound = RawInbound(endpoints.kafka, endpoints.inbound_topic)
    traffic = asyncio.create_task(demo.send_traffic(endpoints.ingress, raw_inbound))
    agents = DemoAgents(endpoints.kafka, Topics(), demo.database_url or "")
    live = None if as_json else Live(demo.view(), console=console, refresh_per_second=2)
    with live or contextlib.nullcontext():
        try:
            while not traffic.done():
                await asyncio.sleep(0.5)
                await asyncio.to_thread(agents.step)
                await asyncio.to_thread(agents.acknowledge_pages, demo.paging_cases)
                demo.tally.agent_replies = agents.replies
                demo.tally.cases_resolved = agents.resolutions
                demo.refresh(endpoints)
                if live:
                    live.update(demo.view())
        except asyncio.CancelledError:
            demo.stop()
        await traffic
        raw_inbound.close()
        agents.close()
        deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
        while time.monotonic() < deadline and not demo.terminating:
            demo.refresh(endpoints)
            if live:
                live.update(demo.view())
            if (
                demo.tally.messages_unrouted == 0
                and demo.tally.cases_in_store >= demo.tally.cases_opened
            ):
                break
            await asyncio.sleep(0.5)
    demo.tally.duration_seconds = round(time.monotonic() - demo.started, 1)
