"""Each process's `/metrics` passes `promtool check metrics`; docs/metrics.md lists them all."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.deploy.conftest import ScrapedStack
from tests.deploy.promql import (
    CATALOGUE,
    LANDING,
    SCRAPE_SERIES,
    escalator_families,
    metric_names_in,
    names_in_tables,
)

pytestmark = pytest.mark.kafka


def promtool() -> str:
    """The promtool binary (Debian's `prometheus` package; `.ci/run` installs it)."""
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: apt-get install prometheus", pytrace=False)
    return found


@pytest.mark.parametrize("process", ["worker", "ingress", "projection", "desk"])
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


def catalogue_sections() -> tuple[str, str]:
    """The catalogue's text: metrics exposed now, metrics landing from other work."""
    current, _, landing = CATALOGUE.read_text().partition(LANDING)
    return current, landing


def test_catalogue_lists_every_exposed_family(scraped_stack: ScrapedStack) -> None:
    exposed = set().union(*(escalator_families(t) for t in scraped_stack.expositions.values()))
    current, landing = (names_in_tables(s) for s in catalogue_sections())
    assert current, "no metrics found in docs/metrics.md"
    assert current - exposed == set(), "in docs/metrics.md as exposed, but not exposed"
    assert exposed - (current | landing) == set(), "exposed, not in docs/metrics.md"


def test_catalogue_example_queries_use_exposed_names(scraped_stack: ScrapedStack) -> None:
    exposed = set().union(*(escalator_families(t) for t in scraped_stack.expositions.values()))
    current = catalogue_sections()[0]
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
