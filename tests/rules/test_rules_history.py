"""Rule set versions without a broker: who publishes, the diff, and what a rollback republishes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from escalator.rules_history import Version, diff, find, publisher_name, rollback_record
from rules import RuleSetError
from schemas import RuleSetRecord, RuleSetVersion

RULES = "version: 1\nqueues: {general: {}}\nroutes: {queue: general, priority: normal}\n"


def _version(number: int, sources: dict[str, str], files: dict[str, str] | None = None) -> Version:
    record = RuleSetRecord(
        version=f"sha256:{number}",
        sources=sources,
        files=files or {},
        published_at=datetime(2026, 1, 4, 9, number, tzinfo=UTC),
        published_by="ana",
    )
    return Version(number, RuleSetVersion(publish_id=f"p{number}", record=record))


def test_the_publisher_comes_from_the_flag_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ESCALATOR_PUBLISHER", "lee")
    assert publisher_name("ana") == "ana"
    assert publisher_name(None) == "lee"
    monkeypatch.delenv("ESCALATOR_PUBLISHER")
    assert publisher_name(None)  # the login name


def test_diff_shows_changed_added_and_removed_files() -> None:
    old = _version(1, {"a.yaml": "x: 1\ny: 2\n", "gone.yaml": "z: 3\n"})
    new = _version(2, {"a.yaml": "x: 1\ny: 5\n", "new.yaml": "w: 4\n"}, {"h.ics": "BEGIN\n"})
    text = diff(old, new)
    assert "--- v1:a.yaml\n+++ v2:a.yaml\n" in text and "-y: 2\n+y: 5\n" in text
    assert "--- v1:gone.yaml\n+++ /dev/null\n" in text and "-z: 3\n" in text
    assert "--- /dev/null\n+++ v2:new.yaml\n" in text and "+w: 4\n" in text
    assert "+++ v2:h.ics\n" in text
    assert diff(old, old) == ""


def test_find_names_the_known_versions() -> None:
    versions = [_version(1, {}), _version(2, {})]
    assert find(versions, 2) is versions[1]
    with pytest.raises(LookupError, match=r"no rule set version 3 \(published versions: 1 to 2\)"):
        find(versions, 3)


def test_a_rollback_is_compiled_again_and_restamped() -> None:
    earlier = _version(1, {"rules.yaml": RULES})
    record, ruleset = rollback_record(earlier, "lee")
    assert record.sources == earlier.record.sources and record.version == ruleset.version
    assert record.published_by == "lee" and record.published_at > earlier.record.published_at
    broken = _version(2, {"rules.yaml": RULES.replace("queue: general", "queue: nowhere")})
    with pytest.raises(RuleSetError):
        rollback_record(broken, "lee")


def test_an_unreachable_broker_is_one_error_line_and_exit_1() -> None:
    from typer.testing import CliRunner

    from escalator.cli import app

    nowhere = "127.0.0.1:1"
    env = {"KAFKA_BOOTSTRAP_SERVERS": nowhere, "ESCALATOR_KAFKA_BOOTSTRAP_SERVERS": nowhere}
    result = CliRunner().invoke(app, ["rules", "history"], env=env)
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot read the rule set history: ")
