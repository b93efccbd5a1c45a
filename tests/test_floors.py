"""The floors hold: Kafka clients are built in kafkaio only, and the floors import no upper one.

Parsed from the source (ast), so a client built anywhere else in product code, or an
import that points up from a floor, fails here rather than in review. tests/ and bench/
are not product code and may build their own clients.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = {"schemas", "kafkaio", "metricsio", "rules", "connectors", "streams", "queues", "escalator"}
PRODUCT = ("connectors", "streams", "queues", "escalator", "rules", "schemas", "metricsio")
CLIENTS = {
    "Producer",
    "Consumer",
    "AdminClient",
    "SerializingProducer",
    "DeserializingConsumer",
}
FLOORS = {"kafkaio": {"schemas", "kafkaio"}, "metricsio": {"metricsio"}}
"""Each floor and the packages of ours it may import."""


def sources(package: str) -> Iterator[Path]:
    yield from sorted((REPO / package).rglob("*.py"))


def client_constructions(path: Path) -> list[str]:
    """`file:line: Name(` for every confluent-kafka client the module constructs."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()  # local names bound to a client class
    modules: set[str] = set()  # local names bound to confluent_kafka (or .admin)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("confluent_kafka"):
            names |= {alias.asname or alias.name for alias in node.names if alias.name in CLIENTS}
            modules |= {alias.asname or alias.name for alias in node.names if alias.name == "admin"}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("confluent_kafka"):
                    modules.add(alias.asname or alias.name.split(".")[0])
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        direct = isinstance(func, ast.Name) and func.id in names
        qualified = (
            isinstance(func, ast.Attribute)
            and func.attr in CLIENTS
            and ast.unparse(func.value).split(".")[0] in modules
        )
        if direct or qualified:
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(func)}(")
    return found


def imported_packages(path: Path) -> set[str]:
    """The top-level packages of ours that a module imports (absolute imports)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", PRODUCT)
def test_product_code_builds_no_kafka_client_outside_kafkaio(package: str) -> None:
    found = [hit for path in sources(package) for hit in client_constructions(path)]
    assert not found, "build Kafka clients in kafkaio (clients, producer, blocking):\n" + "\n".join(
        found
    )


def test_kafkaio_is_where_the_clients_are_built() -> None:
    # the check above would pass vacuously if it never recognised a construction
    hits = [hit for path in sources("kafkaio") for hit in client_constructions(path)]
    built = {hit.split(": ")[1] for hit in hits}
    assert built >= {"Producer(", "Consumer(", "AdminClient("}


@pytest.mark.parametrize("floor", sorted(FLOORS))
def test_a_floor_imports_nothing_of_ours_above_it(floor: str) -> None:
    allowed = FLOORS[floor]
    wrong = {
        f"{path.relative_to(REPO)} imports {', '.join(sorted(imported_packages(path) - allowed))}"
        for path in sources(floor)
        if imported_packages(path) - allowed
    }
    assert not wrong, sorted(wrong)


ENCODERS = {"choose_encoder", "generate_latest"}


@pytest.mark.parametrize("package", [p for p in PRODUCT if p != "metricsio"])
def test_every_metrics_page_uses_the_one_exposition(package: str) -> None:
    """`/metrics` bodies come from metricsio.render_metrics, never a second encoder."""
    found = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in sources(package)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("prometheus_client")
        and {alias.name for alias in node.names} & ENCODERS
    ]
    assert not found, found
