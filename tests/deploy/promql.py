"""Reading metric names out of `/metrics` pages and out of PromQL expressions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = REPO / "deploy" / "prometheus" / "alerts.test.yml"
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
RUNBOOK = REPO / "docs" / "runbook.md"
CATALOGUE = REPO / "docs" / "metrics.md"

LANDING = "\n## Landing with the outbound replies issue"
"""The catalogue's optional section of metrics that other work is adding (not exposed yet)."""

# Series Prometheus itself attaches to every scrape target; they are not Escalator's to expose.
SCRAPE_SERIES = frozenset(
    {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"}
)
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
    | {"and", "or", "unless", "offset", "inf", "nan", "atan2"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MODIFIER = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords and labels removed)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables such as $__rate_interval
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery windows
    text = _MODIFIER.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def exposed_names(exposition: str) -> set[str]:
    """Every sample name a Prometheus text exposition can produce, from its TYPE lines and samples.

    A histogram family `x` yields `x_bucket`, `x_count` and `x_sum` even before its first sample,
    so a metric that has simply not happened yet still counts as exposed.
    """
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
            elif kind == "summary":
                names |= {f"{name}_count", f"{name}_sum"}
        elif line and not line.startswith("#"):
            match = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
            if match:
                names.add(match.group())
    return names


def escalator_families(exposition: str) -> set[str]:
    """Escalator's own metric families (`escalator_*`, without the `_created` companions)."""
    families = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE escalator_"):
            name = line.split()[2]
            if not name.endswith("_created"):
                families.add(name)
    return families


def names_in_tables(section: str) -> set[str]:
    """Metric names in the first column of a section's tables."""
    return set(re.findall(r"^\| `(escalator_[a-z0-9_]+)` \|", section, flags=re.MULTILINE))


def landing_names() -> set[str]:
    """Names of the catalogue's landing section (if it has one), for the alert check."""
    _, _, landing = CATALOGUE.read_text().partition(LANDING)
    return names_in_tables(landing)


def load_yaml(path: Path) -> Any:
    """A YAML file as plain Python data (safe loader)."""
    return YAML(typ="safe").load(path.read_text())


def alert_rules() -> list[dict[str, object]]:
    """Every alerting rule in `deploy/prometheus/alerts.yml`, across its groups."""
    document = load_yaml(ALERTS)
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard_expressions() -> dict[str, list[str]]:
    """Every PromQL expression of every provisioned dashboard, by panel title."""
    found: dict[str, list[str]] = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                found.setdefault(f"{path.name}: {panel['title']}", []).append(target["expr"])
    return found
