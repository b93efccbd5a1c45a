"""A real Prometheus (Debian's package, via deploy/prometheus/run-local.sh) scraping the stack.

Every dashboard query returns data, every alert expression evaluates, and the alert rules load.
This is the demo check of issue 7, run as a test.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from escalator.demo.processes import free_port
from schemas import Topics
from tests.deploy.conftest import STACK_RULES, VALID_MESSAGE, ScrapedStack, answered_and_breached
from tests.deploy.promql import REPO, alert_rules, dashboard_expressions, load_yaml
from tests.kafka_support import produce
from tests.streams.test_rules_reload_kafka import rules_cli

pytestmark = pytest.mark.kafka

RUN_LOCAL = REPO / "deploy" / "prometheus" / "run-local.sh"
JOBS = ("escalator-worker", "escalator-ingress", "escalator-projection")


def hostport(url: str) -> str:
    """`http://127.0.0.1:1234` -> `127.0.0.1:1234`."""
    return url.removeprefix("http://")


def query(base: str, expr: str) -> dict[str, Any]:
    """An instant query's `data`, failing the test on a PromQL error."""
    answer = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", f"{expr}: {answer}"
    data: dict[str, Any] = answer["data"]
    return data


def wait_for(base: str, expr: str, timeout_seconds: float = 60) -> None:
    """Wait until an expression returns at least one series."""
    deadline = time.monotonic() + timeout_seconds
    while not query(base, expr)["result"]:
        if time.monotonic() > deadline:
            pytest.fail(f"Prometheus never had data for {expr}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def prometheus(
    scraped_stack: ScrapedStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Prometheus scraping the stack every second; yields its base URL."""
    port = free_port()
    directory: Path = tmp_path_factory.mktemp("prometheus")
    env = {
        **os.environ,
        "ESCALATOR_WORKER_TARGETS": hostport(scraped_stack.urls["worker"]),
        "ESCALATOR_INGRESS_TARGETS": hostport(scraped_stack.urls["ingress"]),
        "ESCALATOR_PROJECTION_TARGETS": hostport(scraped_stack.urls["projection"]),
        "PROMETHEUS_PORT": str(port),
        "PROMETHEUS_DIR": str(directory),
        "SCRAPE_INTERVAL": "1s",
    }
    log_path = directory / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["bash", str(RUN_LOCAL)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"Prometheus exited:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Prometheus not ready:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def publish_disagreeing_shadow(stack_env: dict[str, str], workdir: Path) -> None:
    """A shadow rule set that puts every case in another queue, at another priority, than
    the active one, so the dashboard's shadow row has disagreements to show."""
    rules = STACK_RULES.read_text()
    for active, shadow in (
        ("queues:\n  general: {}\n", "queues:\n  general: {}\n  other: {}\n"),
        (
            "routes:\n  queue: general\n  priority: normal",
            "routes:\n  queue: other\n  priority: high",
        ),
    ):
        assert active in rules
        rules = rules.replace(active, shadow, 1)
    candidate = workdir / "shadow-candidate.yaml"
    candidate.write_text(rules)
    published = rules_cli(stack_env, "publish", "--shadow", str(candidate))
    assert published.returncode == 0, published.stderr


def keep_posting_until(
    prometheus: str, ingress: str, expr: str, timeout_seconds: float = 90
) -> None:
    """Post a new customer message every second until Prometheus has data for `expr` (a
    labelled counter's series starts at its first increase, and rate() needs a second)."""
    deadline = time.monotonic() + timeout_seconds
    while not query(prometheus, expr)["result"]:
        if time.monotonic() > deadline:
            pytest.fail(f"Prometheus never had data for {expr}")
        unique = uuid.uuid4().hex[:8]
        message = {**VALID_MESSAGE, "external_id": f"tick-{unique}", "sender": f"tick-{unique}"}
        assert httpx.post(f"{ingress}/v1/messages", json=message, timeout=30).status_code == 202
        time.sleep(1)


@pytest.fixture(scope="module")
def live_prometheus(
    prometheus: str, scraped_stack: ScrapedStack, kafka_bootstrap: str, tmp_path_factory: Any
) -> str:
    """Prometheus after fresh traffic of every kind went through the stack while it scraped."""
    for job in JOBS:
        wait_for(prometheus, f'up{{job="{job}"}} == 1')
    ingress = scraped_stack.urls["ingress"]
    prefix = scraped_stack.stack.env["ESCALATOR_TOPIC_PREFIX"]
    publish_disagreeing_shadow(scraped_stack.stack.env, tmp_path_factory.mktemp("shadow"))
    wait_for(prometheus, "max(escalator_rules_shadow_info) == 1")
    for _ in range(3):
        unique = uuid.uuid4().hex[:8]
        message = {**VALID_MESSAGE, "external_id": f"live-{unique}", "sender": f"live-{unique}"}
        assert httpx.post(f"{ingress}/v1/messages", json=message, timeout=30).status_code == 202
    # the same message again: the worker drops it as a duplicate
    assert httpx.post(f"{ingress}/v1/messages", json=message, timeout=30).status_code == 202
    assert httpx.post(f"{ingress}/v1/messages", content=b"{", timeout=30).status_code >= 400
    produce(kafka_bootstrap, f"{prefix}messages.inbound", [(b"broken", b"not a message")])
    produce(kafka_bootstrap, f"{prefix}cases.events", [(b"broken", b"not an event")])
    # an answered and resolved case, and one that breaches its 2 s first-response target
    answered_and_breached(scraped_stack.stack, kafka_bootstrap, Topics(prefix), "live")
    for expr in (
        'sum(rate(escalator_projection_events_total{type="case.routed"}[1m])) > 0',
        # a counter's first sample is no increase to rate(); two samples make it data
        "count_over_time(escalator_messages_duplicate_total[1m]) >= 2",
        "sum(rate(escalator_messages_dead_lettered_total[1m])) > 0",
        "sum(rate(escalator_projection_errors_total[1m])) > 0",
        "sum(rate(escalator_sla_clocks_met_total[1m])) > 0",
        "sum(rate(escalator_first_response_seconds_count[1m])) > 0",
        "sum(rate(escalator_resolution_seconds_count[1m])) > 0",
        "sum(rate(escalator_sla_breaches_total[1m])) > 0",
        "sum(rate(escalator_escalations_total[1m])) > 0",
        "sum(rate(escalator_sla_timer_lag_seconds_count[1m])) > 0",
    ):
        wait_for(prometheus, expr)
    keep_posting_until(
        prometheus,
        ingress,
        'sum(rate(escalator_rules_shadow_disagreements_total{field="queue"}[1m])) > 0',
    )
    settle_effort(prometheus, ingress)
    return prometheus


def settle_effort(prometheus: str, ingress: str, timeout_seconds: float = 90) -> None:
    """More customer messages, until event time passes the 3 s repeat window of the resolved
    case and Prometheus sees the resolution judged (the effort counters grow)."""
    expr = "sum(increase(escalator_cases_resolved_total[5m])) > 0"
    keep_posting_until(prometheus, ingress, expr, timeout_seconds)


def test_alert_rules_load_and_are_healthy(live_prometheus: str) -> None:
    answer = httpx.get(f"{live_prometheus}/api/v1/rules", timeout=10).json()
    groups = answer["data"]["groups"]
    loaded = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
    expected = load_yaml(REPO / "deploy" / "prometheus" / "alerts.yml")["groups"]
    assert [group["name"] for group in groups] == [group["name"] for group in expected]
    assert loaded == {str(rule["alert"]): "ok" for rule in alert_rules()}


def test_every_alert_expression_evaluates(live_prometheus: str) -> None:
    for rule in alert_rules():
        query(live_prometheus, str(rule["expr"]))


def test_exemplars_link_latency_to_cases(live_prometheus: str) -> None:
    answer = httpx.get(
        f"{live_prometheus}/api/v1/query_exemplars",
        params={
            "query": "escalator_first_response_seconds_bucket",
            "start": time.time() - 600,
            "end": time.time() + 60,
        },
        timeout=10,
    ).json()
    assert answer["status"] == "success", answer
    labels = [e["labels"] for series in answer["data"] for e in series["exemplars"]]
    assert labels and all(set(label) == {"case_id"} for label in labels), answer


def test_every_dashboard_query_returns_data(live_prometheus: str) -> None:
    empty = []
    checked = []
    for panel, exprs in dashboard_expressions().items():
        for expr in exprs:
            result = query(live_prometheus, expr.replace("$__rate_interval", "1m"))["result"]
            values = [float(series["value"][1]) for series in result]
            if not values or all(math.isnan(value) for value in values):
                empty.append(f"{panel}: {expr}")
            else:
                checked.append(panel)
    print("panels with data from the live Prometheus:", *sorted(set(checked)), sep="\n  ")
    assert empty == [], "dashboard queries without data"
