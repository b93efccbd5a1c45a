"""The Helm chart renders (helm), passes `helm lint --strict`, and validates against Kubernetes'
schemas (kubernetes-validate, offline, strict: unknown fields are errors).

`.ci/run` installs both tools when they are missing. The ServiceMonitor is a Prometheus
Operator CRD that kubernetes-validate has no schema for: it is checked field by field here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from tests.deploy.test_compose import PROPOSED_SETTINGS, known_setting_names

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "escalator"
KUBERNETES_VERSIONS = ("1.25.0", "1.31.0", kubernetes_validate.latest_version())
JOBS = {"worker": "escalator-worker", "ingress": "escalator-ingress"}
JOBS["projection"] = "escalator-projection"
JOBS |= {"desk": "escalator-desk", "replies": "escalator-replies"}
SECURE = {
    "serviceMonitor.enabled": "true",
    "kafka.securityProtocol": "SASL_SSL",
    "kafka.sasl.mechanism": "SCRAM-SHA-512",
    "kafka.sasl.username": "escalator",
    "kafka.sasl.password": "not-a-real-password",
    "kafka.tls.caSecret": "kafka-ca",
    "database.url": "postgresql+psycopg://escalator:pw@postgres/escalator",
    "connectorSecrets.ESCALATOR_WEBHOOK_TOKEN": "token",
    "projection.podDisruptionBudget.enabled": "true",
}


def helm() -> str:
    """The helm binary (`.ci/run` builds it with `go install` when missing)."""
    found = shutil.which("helm")
    if found is None:
        pytest.fail("helm is missing: see .ci/run", pytrace=False)
    return found


def render(values: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """`helm template` of the chart with `--set` values, as a list of manifests."""
    sets = [arg for key, value in (values or {}).items() for arg in ("--set", f"{key}={value}")]
    result = subprocess.run(
        [helm(), "template", "esc", str(CHART), "--kube-version", "1.31.0", *sets],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in YAML(typ="safe").load_all(result.stdout) if doc]


def by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """Manifests of one kind, by name."""
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def test_helm_lint_strict() -> None:
    for values in ({}, SECURE):
        sets = [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]
        result = subprocess.run(
            [helm(), "lint", "--strict", str(CHART), *sets],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", [{}, SECURE], ids=["defaults", "sasl-tls-database"])
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_manifests_validate_against_kubernetes_schemas(
    values: dict[str, str], version: str
) -> None:
    manifests = render(values)
    kinds = {m["kind"] for m in manifests}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget"} <= kinds
    for manifest in manifests:
        if manifest["apiVersion"].startswith("monitoring.coreos.com/"):
            continue
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_validator_rejects_a_broken_manifest() -> None:
    deployment = next(iter(by_kind(render(), "Deployment").values()))
    deployment["spec"]["replicas"] = "two"
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.31.0", strict=True)


def test_deployments_are_every_process_with_probes_and_non_root() -> None:
    deployments = by_kind(render(), "Deployment")
    assert set(deployments) == {f"esc-escalator-{component}" for component in JOBS}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            assert "livenessProbe" in container and "readinessProbe" in container, name
            assert container["resources"]["requests"], name
            mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
            assert "/etc/escalator/rules" in mounts, name
    worker = deployments["esc-escalator-worker"]
    assert worker["spec"]["replicas"] == 2
    ready = worker["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert ready["exec"]["command"][-1] == "http://127.0.0.1:6066/readyz"
    for component in ("ingress", "projection", "desk", "replies"):
        container = deployments[f"esc-escalator-{component}"]["spec"]["template"]["spec"]
        probes = container["containers"][0]
        assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz", component
        assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz", component


def test_sasl_tls_and_database_reach_every_process_from_secrets() -> None:
    manifests = render(SECURE)
    secrets = by_kind(manifests, "Secret")
    assert set(secrets["esc-escalator"]["stringData"]) == {"kafka-sasl-password", "database-url"}
    assert secrets["esc-escalator-connectors"]["stringData"] == {"ESCALATOR_WEBHOOK_TOKEN": "token"}
    known = known_setting_names() | PROPOSED_SETTINGS | {"ESCALATOR_HEALTHCHECK_URL"}
    for name, deployment in by_kind(manifests, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        env = {item["name"]: item for item in pod["containers"][0]["env"]}
        assert set(env) <= known, f"{name}: {set(env) - known} are not Escalator settings"
        assert env["ESCALATOR_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        assert env["ESCALATOR_KAFKA_SASL_MECHANISM"]["value"] == "SCRAM-SHA-512"
        password = env["ESCALATOR_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert password == {"name": "esc-escalator", "key": "kafka-sasl-password"}
        assert env["ESCALATOR_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "database-url"
        assert env["ESCALATOR_KAFKA_SSL_CAFILE"]["value"] == "/etc/escalator/kafka-ca/ca.crt"
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert volumes["kafka-ca"]["secret"]["secretName"] == "kafka-ca"
    ingress = by_kind(manifests, "Deployment")["esc-escalator-ingress"]
    env_from = ingress["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert env_from == [{"secretRef": {"name": "esc-escalator-connectors"}}]


def test_no_secret_without_secret_values() -> None:
    assert by_kind(render(), "Secret") == {}


def test_service_monitors_select_the_services_and_name_the_alert_jobs() -> None:
    manifests = render(SECURE)
    services = by_kind(manifests, "Service")
    monitors = by_kind(manifests, "ServiceMonitor")
    assert len(monitors) == len(JOBS)
    jobs = set()
    for name, monitor in monitors.items():
        spec = monitor["spec"]
        selected = [
            service
            for service in services.values()
            if spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, name
        service = selected[0]
        jobs.add(service["metadata"]["labels"][spec["jobLabel"]])
        ports = {port["name"] for port in service["spec"]["ports"]}
        for endpoint in spec["endpoints"]:
            assert endpoint["port"] in ports and endpoint["path"] == "/metrics", name
        assert set(spec) <= {"jobLabel", "selector", "endpoints"}
    assert jobs == set(JOBS.values())


def test_pod_disruption_budgets_select_their_deployments() -> None:
    manifests = render(SECURE)
    deployments = by_kind(manifests, "Deployment")
    for name, budget in by_kind(manifests, "PodDisruptionBudget").items():
        deployment = deployments[name]
        assert budget["spec"]["selector"] == deployment["spec"]["selector"], name


def test_the_default_rules_in_the_configmap_pass_rules_check(tmp_path: Path) -> None:
    config_map = by_kind(render(), "ConfigMap")["esc-escalator-rules"]
    for filename, text in config_map["data"].items():
        (tmp_path / filename).write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "escalator", "rules", "check", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_component_can_run_as_its_own_kafka_principal() -> None:
    components = ("worker", "ingress", "projection", "desk", "replies")
    values = {
        "kafka.securityProtocol": "SASL_SSL",
        "kafka.sasl.mechanism": "SCRAM-SHA-512",
        **{f"kafka.sasl.principals.{c}.username": f"escalator-{c}" for c in components},
        **{f"kafka.sasl.principals.{c}.password": f"{c}-pw" for c in components},
    }
    manifests = render(values)
    secret = by_kind(manifests, "Secret")["esc-escalator"]["stringData"]
    assert secret == {f"kafka-sasl-password-{c}": f"{c}-pw" for c in components}
    for component in components:
        deployment = by_kind(manifests, "Deployment")[f"esc-escalator-{component}"]
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["ESCALATOR_KAFKA_SASL_USERNAME"]["value"] == f"escalator-{component}"
        key = env["ESCALATOR_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"]
        assert key == f"kafka-sasl-password-{component}"


def test_the_ingress_reads_its_keys_from_a_secret_and_keeps_metrics_off_its_public_port() -> None:
    manifests = render({"ingress.keysSecret": "escalator-ingress-keys", **SECURE})
    ingress = by_kind(manifests, "Deployment")["esc-escalator-ingress"]["spec"]["template"]
    container = ingress["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["ESCALATOR_INGRESS_AUTH"] == "keys"
    assert env["ESCALATOR_INGRESS_KEYS_FILE"] == "/etc/escalator/ingress-keys/keys.json"
    assert env["ESCALATOR_INGRESS_METRICS_PORT"] == "9468"
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    assert mounts["ingress-keys"]["mountPath"] == "/etc/escalator/ingress-keys"
    assert mounts["ingress-keys"]["readOnly"] is True
    assert "subPath" not in mounts["ingress-keys"]  # a subPath mount never sees Secret updates
    volumes = {volume["name"]: volume for volume in ingress["spec"]["volumes"]}
    assert volumes["ingress-keys"]["secret"]["secretName"] == "escalator-ingress-keys"
    monitor = by_kind(manifests, "ServiceMonitor")["esc-escalator-ingress"]
    assert [endpoint["port"] for endpoint in monitor["spec"]["endpoints"]] == ["http-metrics"]
    without = by_kind(render(), "Deployment")["esc-escalator-ingress"]["spec"]["template"]
    assert "ESCALATOR_INGRESS_KEYS_FILE" not in {
        item["name"] for item in without["spec"]["containers"][0]["env"]
    }


def test_escalation_links_reach_the_worker_and_the_ingress_only() -> None:
    """The worker signs the links, the ingress checks them: both, and nobody else, get the key."""
    manifests = render(
        {"escalateLinks.url": "https://help.example.com", "escalateLinks.secret": "s3cret"}
    )
    assert by_kind(manifests, "Secret")["esc-escalator"]["stringData"] == {
        "escalate-link-secret": "s3cret"
    }
    known = known_setting_names()
    for name, deployment in by_kind(manifests, "Deployment").items():
        env = {
            item["name"]: item
            for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        links = {key for key in env if key.startswith("ESCALATOR_ESCALATE_LINK_")}
        if name in ("esc-escalator-worker", "esc-escalator-ingress"):
            assert links == {
                "ESCALATOR_ESCALATE_LINK_URL",
                "ESCALATOR_ESCALATE_LINK_LIFETIME",
                "ESCALATOR_ESCALATE_LINK_SECRET",
            }, name
            assert links <= known
            assert env["ESCALATOR_ESCALATE_LINK_SECRET"]["valueFrom"]["secretKeyRef"] == {
                "name": "esc-escalator",
                "key": "escalate-link-secret",
            }
        else:
            assert not links, name
    # a URL without a key is a mistake the chart refuses
    result = subprocess.run(
        [
            *(helm(), "template", "esc", str(CHART), "--kube-version", "1.31.0"),
            *("--set", "escalateLinks.url=https://x.example"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0 and "escalateLinks.secret" in result.stderr
