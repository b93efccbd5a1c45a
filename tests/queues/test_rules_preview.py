"""`escalator rules preview` on a real case store (SQLite, PostgreSQL) filled by the projection."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from escalator.cli import app
from queues.apply import EventApplier, SourceRecord
from schemas import CaseEvent
from tests.queues.case_event_builders import appended, case_id, opened, routed, to_bytes

BASE = """\
version: 1
calendars: {always: 24x7}
sla:
  standard:
    calendar: always
    targets: {normal: {first_response: 8h}, high: {first_response: 2h}}
queues: {general: {}, billing: {}}
routes: {queue: general, priority: normal, sla: standard}
"""
REFUNDS_TO_BILLING = BASE.replace(
    "routes: {queue: general, priority: normal, sla: standard}",
    """routes:
  queue: general
  priority: normal
  sla: standard
  routes:
    - name: billing
      when: {text: {any: [refund]}}
      queue: billing
      priority: high
""",
)
FASTER_NORMAL = BASE.replace("normal: {first_response: 8h}", "normal: {first_response: 4h}")


def _case(customer: str, text: str, *, status: str = "open") -> list[CaseEvent]:
    message = appended(customer, 1, text=text)
    route = routed(customer, at=message.at)
    if status != "open":
        route.payload["case"]["status"] = status
    return [opened(customer), message, route]


def _store(session_factory: sessionmaker[Session]) -> None:
    events = [
        *_case("ada", "When will I get my refund?"),
        *_case("ben", "Where is my parcel?"),
        *_case("cy", "My refund came, thanks", status="resolved"),
    ]
    with session_factory() as session, session.begin():
        EventApplier().apply_batch(session, [SourceRecord(value=to_bytes(e)) for e in events])


def _preview(url: str, tmp_path: Path, candidate: str, *flags: str) -> tuple[int, str]:
    (tmp_path / "active.yaml").write_text(BASE)
    (tmp_path / "candidate.yaml").write_text(candidate)
    result = CliRunner().invoke(
        app,
        [
            "rules",
            "preview",
            str(tmp_path / "candidate.yaml"),
            "--baseline",
            str(tmp_path / "active.yaml"),
            *flags,
        ],
        env={"ESCALATOR_DATABASE_URL": url},
    )
    return result.exit_code, result.output


def test_preview_lists_the_open_cases_a_new_route_would_move(
    migrated_url: str, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    _store(session_factory)
    code, output = _preview(migrated_url, tmp_path, REFUNDS_TO_BILLING, "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["cases"] == 2  # the resolved case is not looked at
    [ada] = report["changed"]  # ben's parcel question is decided as before
    assert ada["case_id"] == case_id("ada") and ada["current_queue"] == "general"
    assert ada["reason"] == "matches billing instead of the root route"
    changes = {c["field"]: (c["before"], c["after"]) for c in ada["changes"]}
    assert changes["queue"] == ("general", "billing")
    assert changes["priority"] == ("normal", "high")
    assert changes["sla.first_response"] == ("2026-03-02T17:00:00Z", "2026-03-02T11:00:00Z")

    code, output = _preview(migrated_url, tmp_path, REFUNDS_TO_BILLING)
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].startswith("2 open cases; 1 would change with sha256:")
    assert lines[1].startswith(f"  {case_id('ada')} (in general): queue general → billing")
    assert lines[2] == "      matches billing instead of the root route"


def test_preview_lists_due_times_a_changed_target_moves(
    migrated_url: str, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    _store(session_factory)
    code, output = _preview(migrated_url, tmp_path, FASTER_NORMAL, "--json")
    assert code == 0, output
    changed = json.loads(output)["changed"]
    assert sorted(c["case_id"] for c in changed) == sorted([case_id("ada"), case_id("ben")])
    for case in changed:
        assert case["changes"] == [
            {
                "field": "sla.first_response",
                "before": "2026-03-02T17:00:00Z",
                "after": "2026-03-02T13:00:00Z",
            }
        ]
        assert case["reason"] == "matches the root route as before, whose settings changed"


def test_an_identical_candidate_changes_nothing(
    migrated_url: str, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    _store(session_factory)
    code, output = _preview(migrated_url, tmp_path, BASE)
    assert code == 0, output
    assert output.startswith("2 open cases; 0 would change")


def test_preview_compares_with_the_published_set_by_default(
    kafka_bootstrap: str,
    topic_prefix: str,
    migrated_url: str,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    _store(session_factory)
    env = {
        "ESCALATOR_DATABASE_URL": migrated_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ESCALATOR_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ESCALATOR_TOPIC_PREFIX": topic_prefix,
    }
    (tmp_path / "active.yaml").write_text(BASE)
    (tmp_path / "candidate.yaml").write_text(REFUNDS_TO_BILLING)
    runner = CliRunner()
    refused = runner.invoke(app, ["rules", "preview", str(tmp_path / "candidate.yaml")], env=env)
    assert refused.exit_code == 2
    assert "no rule set is published yet" in refused.output
    published = runner.invoke(app, ["rules", "publish", str(tmp_path / "active.yaml")], env=env)
    assert published.exit_code == 0, published.output
    active = published.output.split()[3]
    result = runner.invoke(
        app, ["rules", "preview", str(tmp_path / "candidate.yaml"), "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["active"] == active
    assert [case["case_id"] for case in report["changed"]] == [case_id("ada")]
