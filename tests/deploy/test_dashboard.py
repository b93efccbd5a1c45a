"""The provisioned Grafana dashboard: well-formed, on its provisioned datasource, real queries."""

from __future__ import annotations

import json

from tests.deploy.promql import DASHBOARDS, REPO, load_yaml, metric_names_in

PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"


def test_dashboards_use_the_provisioned_datasource_and_have_real_queries() -> None:
    datasources = load_yaml(PROVISIONING / "datasources" / "prometheus.yaml")["datasources"]
    uids = {source["uid"] for source in datasources}
    paths = sorted(DASHBOARDS.glob("*.json"))
    assert paths
    for path in paths:
        dashboard = json.loads(path.read_text())
        panels = dashboard["panels"]
        ids = [panel["id"] for panel in panels]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in panels:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, panel["title"]
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] in uids, panel["title"]
            assert panel["targets"], f"{panel['title']}: a panel without a query"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in uids, panel["title"]
                assert metric_names_in(target["expr"]), f"{panel['title']}: no metric"
                assert "TODO" not in target["expr"] and "placeholder" not in panel["title"].lower()


def test_dashboard_provider_points_where_compose_mounts_the_dashboards() -> None:
    providers = load_yaml(PROVISIONING / "dashboards" / "escalator.yaml")["providers"]
    compose = load_yaml(REPO / "deploy" / "compose" / "compose.yaml")
    mounts = compose["services"]["grafana"]["volumes"]
    for provider in providers:
        path = provider["options"]["path"]
        assert any(str(mount).endswith(f":{path}:ro") for mount in mounts), mounts
