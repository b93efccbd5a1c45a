"""The alert rules: valid, unit-tested firing and not firing, linked to the runbook."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.deploy.conftest import ScrapedStack
from tests.deploy.promql import (
    ALERT_TESTS,
    ALERTS,
    REPO,
    RUNBOOK,
    SCRAPE_SERIES,
    alert_rules,
    dashboard_expressions,
    exposed_names,
    landing_names,
    load_yaml,
    metric_names_in,
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool (Debian's `prometheus` package) in deploy/prometheus/."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: apt-get install prometheus", pytrace=False)
    return subprocess.run(
        [binary, *args],
        cwd=ALERTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", ALERTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_test_rules() -> None:
    result = promtool("test", "rules", ALERT_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in load_yaml(ALERT_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {str(rule["alert"]) for rule in alert_rules()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested not firing"
    assert (firing | quiet) - names == set(), "tests of alerts that do not exist"


def runbook_anchors() -> set[str]:
    """GitHub-style anchors of the runbook's headings."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_every_alert_links_to_its_runbook_section() -> None:
    anchors = runbook_anchors()
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        url = str(annotations["runbook_url"])
        path, _, anchor = url.partition("#")
        assert (REPO / path) == RUNBOOK, url
        assert anchor == str(rule["alert"]).lower(), url
        assert anchor in anchors, f"docs/runbook.md has no section {rule['alert']}"
        assert {"summary", "description"} <= set(annotations), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}  # type: ignore[index]


def test_alerts_and_dashboards_use_only_exposed_metrics(scraped_stack: ScrapedStack) -> None:
    exposed = set(SCRAPE_SERIES).union(
        *(exposed_names(text) for text in scraped_stack.expositions.values())
    )
    # Alerts (not dashboard panels) may use metrics that docs/metrics.md lists as landing
    # from other work; they are named there with their type, labels and meaning.
    alert_exposed = exposed | landing_names()
    for rule in alert_rules():
        unknown = metric_names_in(str(rule["expr"])) - alert_exposed
        assert unknown == set(), f"alert {rule['alert']} uses unknown metrics {unknown}"
    expressions = dashboard_expressions()
    assert expressions, "no dashboard queries"
    unknown = {
        where: sorted(metric_names_in(expr) - exposed)
        for where, exprs in expressions.items()
        for expr in exprs
        if metric_names_in(expr) - exposed
    }
    assert unknown == {}, "queries on metrics that no Escalator process exposes"
