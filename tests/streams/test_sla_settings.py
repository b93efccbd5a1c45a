"""The SLA timer's settings reach the worker from ESCALATOR_* environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from escalator.settings import KafkaSettings, Settings
from escalator.wiring import worker_config
from streams.worker_config import WorkerConfig


def test_sla_timer_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ESCALATOR_SLA_LATENESS_SECONDS", "0.35")
    monkeypatch.setenv("ESCALATOR_SLA_PREPARE_SECONDS", "0")
    monkeypatch.setenv("ESCALATOR_SLA_PREPARE_LIMIT", "500")
    config = worker_config(Settings(), KafkaSettings(), tmp_path, None)
    assert config.sla_lateness_seconds == 0.35
    assert config.sla_prepare_seconds == 0.0
    assert config.sla_prepare_limit == 500


def test_unset_sla_settings_keep_the_worker_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("LATENESS_SECONDS", "PREPARE_SECONDS", "PREPARE_LIMIT"):
        monkeypatch.delenv(f"ESCALATOR_SLA_{name}", raising=False)
    config = worker_config(Settings(), KafkaSettings(), tmp_path, None)
    defaults = WorkerConfig(broker_url="kafka://unused", topics=config.topics)
    assert config.sla_lateness_seconds == defaults.sla_lateness_seconds
    assert config.sla_prepare_seconds == defaults.sla_prepare_seconds
    assert config.sla_prepare_limit == defaults.sla_prepare_limit


def test_a_negative_lateness_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATOR_SLA_LATENESS_SECONDS", "-1")
    with pytest.raises(ValueError, match="sla_lateness_seconds"):
        Settings()
