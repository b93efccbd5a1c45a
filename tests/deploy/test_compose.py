"""The compose stack and the Dockerfile, checked as far as a machine without a docker engine can.

The compose file is validated against the compose-spec JSON Schema (vendored under
deploy/compose/schema/) and against our own files: mounts, the build context, Prometheus'
targets, and that every Escalator variable it sets is a real setting.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from connectors.channels.registry import PLUGINS
from escalator.settings import ChannelSettings, KafkaSettings, OutboundSettings, Settings
from tests.deploy.promql import REPO, load_yaml

COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
DOCKERFILE = REPO / "Dockerfile"
ESCALATOR_SERVICES = {"worker-1", "worker-2", "ingress", "projection", "smtp", "replies", "desk"}

# Variables our deployment files set that are not Escalator settings: read by the image's
# healthcheck, or proposed settings (docs/operations.md, "Known gaps") that take effect once the
# Python side adds them (none are pending now).
NOT_SETTINGS = {"ESCALATOR_HEALTHCHECK_URL"}
PROPOSED_SETTINGS: set[str] = set()


def compose() -> dict[str, Any]:
    """compose.yaml with its YAML anchors and merge keys resolved."""
    document: dict[str, Any] = load_yaml(COMPOSE)
    return document


def known_setting_names() -> set[str]:
    """Every environment variable Escalator's settings read."""
    names: set[str] = set()
    plugins = tuple(plugin.settings for plugin in PLUGINS)
    for model in (Settings, KafkaSettings, ChannelSettings, OutboundSettings, *plugins):
        prefix = str(model.model_config.get("env_prefix", ""))
        for field_name, field in model.model_fields.items():
            names.add(f"{prefix}{field_name}".upper())
            alias = field.validation_alias
            choices = getattr(alias, "choices", [alias] if isinstance(alias, str) else [])
            names |= {str(choice) for choice in choices}
    return names


def test_compose_file_is_valid_against_the_compose_spec_schema() -> None:
    schema = json.loads((COMPOSE_DIR / "schema" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(compose())
    ]
    assert errors == []


def test_schema_rejects_a_broken_compose_file() -> None:
    schema = json.loads((COMPOSE_DIR / "schema" / "compose-spec.json").read_text())
    broken = compose()
    broken["services"]["kafka"]["healthcheck"]["test"] = 42
    broken["services"]["ingress"]["portz"] = ["8080:8080"]
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(broken))) >= 2


def test_the_stack_has_every_part() -> None:
    services = compose()["services"]
    assert set(services) == ESCALATOR_SERVICES | {"kafka", "postgres", "prometheus", "grafana"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    workers = [name for name, s in services.items() if s.get("command") == ["worker"]]
    assert sorted(workers) == ["worker-1", "worker-2"]
    assert services["ingress"]["command"][:2] == ["connect", "http"]
    assert services["projection"]["command"] == ["projection"]
    assert "postgresql" in services["projection"]["environment"]["ESCALATOR_DATABASE_URL"]
    assert services["smtp"]["command"][:2] == ["connect", "smtp"]
    assert services["replies"]["command"] == ["connect", "replies"]
    assert services["desk"]["command"][0] == "desk"


def test_bind_mounts_and_build_context_exist() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).resolve().exists(), f"{name}: {volume}"
        if "build" in service:
            context = (COMPOSE_DIR / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).is_file(), name


def test_escalator_variables_are_real_settings() -> None:
    known = known_setting_names() | NOT_SETTINGS | PROPOSED_SETTINGS
    for name in ESCALATOR_SERVICES:
        environment = compose()["services"][name]["environment"]
        for variable in environment:
            if variable.startswith(("ESCALATOR_", "KAFKA_")):
                assert variable in known, f"{name}: {variable} is not an Escalator setting"
    assert PROPOSED_SETTINGS.isdisjoint(known_setting_names()), (
        "a proposed setting now exists: move it out of PROPOSED_SETTINGS"
    )


def test_prometheus_scrapes_the_compose_services_and_loads_the_alerts() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: apt-get install prometheus", pytrace=False)
    check = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    config = load_yaml(PROMETHEUS_CONFIG)
    services = compose()["services"]
    mounts = services["prometheus"]["volumes"]
    for rule_file in config["rule_files"]:
        assert any(str(m).endswith(f"alerts.yml:{rule_file}:ro") for m in mounts), rule_file
    targets = {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
        for job in config["scrape_configs"]
    }
    assert set(targets) == {
        f"escalator-{job}" for job in ("worker", "ingress", "projection", "smtp", "replies", "desk")
    }
    assert targets["escalator-worker"] == ["worker-1:6066", "worker-2:6066"]
    ingress_port = services["ingress"]["environment"]["ESCALATOR_INGRESS_METRICS_PORT"]
    assert targets["escalator-ingress"] == [f"ingress:{ingress_port}"]
    projection_port = services["projection"]["environment"]["ESCALATOR_PROJECTION_METRICS_PORT"]
    assert targets["escalator-projection"] == [f"projection:{projection_port}"]
    replies_port = services["replies"]["environment"]["ESCALATOR_REPLIES_METRICS_PORT"]
    assert targets["escalator-replies"] == [f"replies:{replies_port}"]
    assert targets["escalator-smtp"] == ["smtp:9466"]  # its --metrics-port
    assert targets["escalator-desk"] == ["desk:8090"]  # its --port


def test_dockerfile_is_slim_non_root_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert bases and all(base.endswith("-slim") or " AS " in base for base in bases)
    assert all("-slim" in base for base in bases)
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert re.search(r"^HEALTHCHECK .*\n?.*ESCALATOR_HEALTHCHECK_URL", text, flags=re.MULTILINE)
    assert "/healthz" in text
    for copied in re.findall(r"^COPY (?!--from)(\S+)", text, flags=re.MULTILINE):
        assert (REPO / copied).exists(), copied
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_the_image_holds_every_package_of_the_project() -> None:
    """A package missing from the image (as kafkaio once was) fails at the first import."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {
        name.rstrip("*") for name in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = set(re.findall(r"^COPY (?!--from)(\S+) \1$", DOCKERFILE.read_text(), re.MULTILINE))
    assert packages <= copied, packages - copied


def test_compose_and_chart_never_embed_a_real_secret() -> None:
    for path in [COMPOSE, *Path(REPO / "deploy" / "helm").rglob("values.yaml")]:
        text = path.read_text()
        assert not re.search(r"BEGIN [A-Z ]*PRIVATE KEY", text), path


def test_each_escalator_service_reads_its_own_kafka_principal() -> None:
    services = compose()["services"]
    expected = {
        "worker-1": "worker",
        "worker-2": "worker",
        "ingress": "ingress",
        "smtp": "ingress",
        "projection": "projection",
        "replies": "replies",
        "desk": "desk",
    }
    for name, component in expected.items():
        env_file = services[name]["env_file"]
        assert env_file == [{"path": f"kafka-{component}.env", "required": False}], name
