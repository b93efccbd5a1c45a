"""Each process's `/metrics` passes `promtool check metrics`; docs/metrics.md lists them all."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.deploy.conftest import ScrapedStack
from tests.deploy.promql import CATALOGUE, SCRAPE_SERIES, escalator_families, metric_names_in

pytestmark = pytest.mark.kafka


def promtool() -> str:
    """The promtool binary (Debian's `prometheus` package; `.ci/run` installs it)."""
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: apt-get install prometheus", pytrace=False)
    return found


@pytest.mark.parametrize("process", ["worker", "ingress", "projection"])
def test_promtool_check_metrics_passes(scraped_stack: ScrapedStack, process: str) -> None:
    exposition = scraped_stack.expositions[process]
    assert "escalator_" in exposition
    result = subprocess.run(
        [promtool(), "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{process}: {result.stdout}{result.stderr}"
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stdout


def catalogued_families() -> set[str]:
    """Metric names in the first column of the catalogue's tables (before the planned section)."""
    current = CATALOGUE.read_text().split("\n## Planned with the SLA issue")[0]
    return set(re.findall(r"^\| `(escalator_[a-z0-9_]+)` \|", current, flags=re.MULTILINE))


def test_catalogue_lists_exactly_the_exposed_families(scraped_stack: ScrapedStack) -> None:
    exposed = set().union(*(escalator_families(t) for t in scraped_stack.expositions.values()))
    catalogued = catalogued_families()
    assert exposed - catalogued == set(), "exposed but missing from docs/metrics.md"
    assert catalogued - exposed == set(), "in docs/metrics.md but not exposed"


def test_catalogue_example_queries_use_exposed_names(scraped_stack: ScrapedStack) -> None:
    exposed = set().union(*(escalator_families(t) for t in scraped_stack.expositions.values()))
    current = CATALOGUE.read_text().split("\n## Planned with the SLA issue")[0]
    queries = re.findall(r"\| `([^`|]*\([^`|]*)` \|$", current, flags=re.MULTILINE)
    assert queries, "no example queries found in docs/metrics.md"
    suffixes = ("_bucket", "_count", "_sum")
    for query in queries:
        for name in metric_names_in(query):
            family = next((name[: -len(s)] for s in suffixes if name.endswith(s)), name)
            assert family in exposed or name in SCRAPE_SERIES, f"{query!r} uses unknown {name}"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (reason) (rate(x_total{job="w", le="1.0"}[5m]))', {"x_total"}),
        ("histogram_quantile(0.99, sum by (le) (rate(a_bucket[$__rate_interval])))", {"a_bucket"}),
        ("count(count by (version) (info == 1)) > 1", {"info"}),
        ('up{job="a"} == 0 or absent(up{job="b"} == 1)', {"up"}),
        ("a / ignoring(reason) group_left b offset 5m and on() vector(1)", {"a", "b"}),
        ('label_replace(m, "dst", "$1", "src", "(.*)") > 1e3', {"m"}),
    ],
)
def test_metric_names_in_promql(expr: str, names: set[str]) -> None:
    assert metric_names_in(expr) == names
