"""Acknowledgement templates: checked with positions, chosen by routes, rendered in a sandbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError
from typer.testing import CliRunner

from escalator.cli import app
from rules import (
    RuleSetError,
    acknowledgement_variables,
    compile_sources,
    human_time,
)
from schemas import InboundMessage

RULES = """\
version: 1
calendars:
  eu:
    timezone: Europe/Berlin
    hours: {mon-fri: ["09:00-17:00"]}
sla:
  std:
    calendar: eu
    targets:
      normal: {first_response: 4h}
queues:
  general: {}
  vip: {}
acknowledgements:
  default:
    subject: "We got your message [#{{ case.reference }}]"
    text: |
      We will answer by {{ promise.first_response }} ({{ sla.first_response.due_at }}).
      Still not solved? {{ links.escalate }}
    variants:
      - channel: sms
        text: "Answer by {{ promise.first_response_local }}"
      - language: de
        subject: "Eingegangen [#{{ case.reference }}]"
        text: "Antwort bis {{ promise.first_response_local }}"
    update:
      text: "Sooner: {{ promise.first_response }}"
  vip:
    subject: "VIP [#{{ case.reference }}]"
    text: "{% set who = 'you' %}Dear {{ who }}, by {{ promise.first_response|upper }}"
    public: true
routes:
  queue: general
  priority: normal
  sla: std
  routes:
    - name: vip
      when: {customer.tier: vip}
      queue: vip
      acknowledgement: vip
      routes:
        - name: vip-sms
          when: {channel: sms}
"""

# Monday 4 January 2027, 08:00 UTC = 09:00 in Berlin: 4 open hours later is 13:00 CET
MONDAY = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)


def message(**extra: object) -> InboundMessage:
    data: dict[str, object] = {
        "channel": "email",
        "external_id": "m1",
        "sender": "ana@example.com",
        "text": "help",
        "sent_at": MONDAY.isoformat(),
    }
    data.update(extra)
    return InboundMessage.model_validate(data)


def test_a_route_chooses_its_template_children_inherit_it_and_default_applies_elsewhere() -> None:
    rules = compile_sources({"rules.yaml": RULES})
    assert rules.evaluate(message(), None, MONDAY).acknowledgement == "default"
    vip = message(customer={"tier": "vip"})
    assert rules.evaluate(vip, None, MONDAY).acknowledgement == "vip"
    vip_sms = message(customer={"tier": "vip"}, channel="sms", sender="+4915112345678")
    decision = rules.evaluate(vip_sms, None, MONDAY)
    assert decision.matched == ("vip", "vip-sms")
    assert decision.acknowledgement == "vip"


def test_without_a_default_template_no_route_acknowledges() -> None:
    rules = compile_sources({"rules.yaml": RULES.replace("  default:\n", "  plain:\n")})
    assert rules.evaluate(message(), None, MONDAY).acknowledgement is None


def test_due_at_is_exactly_what_rules_explain_prints(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "msg.json").write_text(message().model_dump_json())
    result = CliRunner().invoke(
        app,
        [
            "rules",
            "explain",
            str(tmp_path / "rules.yaml"),
            "--message",
            str(tmp_path / "msg.json"),
            "--at",
            "2027-01-04T08:00:00Z",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    explained = json.loads(result.output)
    assert explained["acknowledgement"] == "default"
    rules = compile_sources({"rules.yaml": RULES})
    due = rules.evaluate(message(), None, MONDAY).sla_due["first_response"]
    variables = acknowledgement_variables("C-ABCDEFGHIJ", due, "Europe/Berlin", "https://x/e")
    rendered = rules.acknowledgements["default"].render(variables, "email", None, update=False)
    assert rendered is not None
    assert explained["sla"]["first_response"]["due_at"] == "2027-01-04T12:00:00Z"
    assert "(2027-01-04T12:00:00Z)" in rendered.text
    assert "by Monday 4 January, 13:00 CET" in rendered.text
    assert rendered.subject == "We got your message [#C-ABCDEFGHIJ]"


def test_variants_by_channel_then_language_and_the_update() -> None:
    template = compile_sources({"rules.yaml": RULES}).acknowledgements["default"]
    due = datetime(2027, 1, 4, 12, 0, 30, tzinfo=UTC)
    variables = acknowledgement_variables("C-ABCDEFGHIJ", due, "Europe/Berlin", "")
    sms = template.render(variables, "sms", "de", update=False)
    assert sms is not None and sms.text == "Answer by 2027-01-04 13:01 CET"  # rounded up
    assert sms.subject == "We got your message [#C-ABCDEFGHIJ]"  # the base subject
    german = template.render(variables, "email", "DE", update=False)
    assert german is not None and german.subject == "Eingegangen [#C-ABCDEFGHIJ]"
    austrian = template.render(variables, "email", "de-AT", update=False)
    assert austrian is not None and austrian.text == german.text
    update = template.render(variables, "email", None, update=True)
    assert update is not None and update.text == "Sooner: Monday 4 January, 13:01 CET"
    vip = compile_sources({"rules.yaml": RULES}).acknowledgements["vip"]
    assert vip.public
    assert vip.render(variables, "email", None, update=True) is None  # no update template
    rendered = vip.render(variables, "email", None, update=False)
    assert rendered is not None and rendered.text == "Dear you, by MONDAY 4 JANUARY, 13:01 CET"


def test_human_time_uses_the_zone_and_its_daylight_saving() -> None:
    summer = datetime(2027, 7, 5, 8, 0, tzinfo=UTC)
    assert human_time(summer, "Europe/Berlin") == "Monday 5 July, 10:00 CEST"
    assert human_time(summer, "America/New_York") == "Monday 5 July, 04:00 EDT"
    assert human_time(summer, "Not/AZone") == "Monday 5 July, 08:00 UTC"


def problems(text: str) -> list[str]:
    with pytest.raises(RuleSetError) as caught:
        compile_sources({"rules.yaml": text})
    return [str(problem) for problem in caught.value.errors]


def test_unknown_variables_are_errors_at_their_line_and_column() -> None:
    bad = RULES.replace("{{ links.escalate }}", "{{ links.escalat }}").replace(
        'VIP [#{{ case.reference }}]"', 'VIP [#{{ case.refrence }}]"'
    )
    found = problems(bad)
    lines = bad.splitlines()
    escalat = next(i for i, line in enumerate(lines) if "links.escalat " in line)
    refrence = next(i for i, line in enumerate(lines) if "case.refrence" in line)
    assert found == [
        f"rules.yaml:{escalat + 1}:{lines[escalat].index('links.escalat') + 1}: unknown variable "
        "'links.escalat' (did you mean 'links.escalate'?)",
        f"rules.yaml:{refrence + 1}:{lines[refrence].index('case.refrence') + 1}: unknown "
        "variable 'case.refrence' (did you mean 'case.reference'?)",
    ]


def test_unknown_names_syntax_errors_filters_and_references_are_all_reported() -> None:
    bad = RULES.replace("Sooner: {{ promise.first_response }}", "{{ customer.email }}")
    bad = bad.replace('text: "Answer by', 'text: "{% if %}Answer by')
    bad = bad.replace("|upper", "|shout")
    bad = bad.replace("      acknowledgement: vip", "      acknowledgement: vipp")
    found = problems(bad)
    assert len(found) == 4, found
    assert any("unknown variable 'customer'" in p for p in found)
    assert any("template syntax error" in p for p in found)
    assert any("shout" in p for p in found)
    assert any("undefined acknowledgement 'vipp' (did you mean 'vip'?)" in p for p in found)
    assert all(p.startswith("rules.yaml:") and p.split(":")[1] != "1" for p in found)


def test_the_cli_check_prints_file_line_col(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.replace("{{ links.escalate }}", "{{ links.nope }}"))
    result = CliRunner().invoke(app, ["rules", "check", str(path)])
    assert result.exit_code != 0
    line = next(i for i, text in enumerate(path.read_text().splitlines()) if "links.nope" in text)
    assert f"{path}:{line + 1}:" in result.output
    assert "unknown variable 'links.nope'" in result.output


def test_the_sandbox_refuses_what_a_template_must_not_reach() -> None:
    # attribute paths off a text value are limited to str methods by the check ...
    sneaky = RULES.replace(
        "Sooner: {{ promise.first_response }}",
        "{{ promise.first_response.__class__.__mro__ }}",
    )
    assert any("a text has no '__class__'" in p for p in problems(sneaky))
    # ... and the sandbox refuses unsafe calls the check cannot see (a loop variable)
    hidden = RULES.replace(
        "Sooner: {{ promise.first_response }}",
        "{% for c in [promise.first_response] %}{{ c.__class__.__subclasses__() }}{% endfor %}",
    )
    template = compile_sources({"rules.yaml": hidden}).acknowledgements["default"]
    variables = acknowledgement_variables("C-ABCDEFGHIJ", MONDAY, "UTC", "")
    with pytest.raises(SecurityError):
        template.render(variables, "email", None, update=True)


@pytest.mark.parametrize(
    "bomb",
    [
        "{{ case.reference * 100000000 }}",
        "{{ 10 ** 100000000 }}",
        "{% for i in range(100000) %}{{ case.reference }}{% endfor %}",
    ],
)
def test_a_template_cannot_render_a_memory_bomb(bomb: str) -> None:
    rules = compile_sources(
        {"rules.yaml": RULES.replace("Sooner: {{ promise.first_response }}", bomb)}
    )
    variables = acknowledgement_variables("C-ABCDEFGHIJ", MONDAY, "UTC", "")
    with pytest.raises(SecurityError):
        rules.acknowledgements["default"].render(variables, "email", None, update=True)


def test_a_template_defined_in_two_files_is_an_error_at_the_second() -> None:
    other = 'version: 1\nacknowledgements:\n  default: {subject: "x", text: "y"}\n'
    with pytest.raises(RuleSetError) as caught:
        compile_sources({"a.yaml": RULES, "b.yaml": other})
    [problem] = caught.value.errors
    assert str(problem).startswith(
        "b.yaml:3:3: acknowledgement 'default' is already defined at a.yaml:"
    )


def test_a_template_needs_subject_and_text() -> None:
    broken = RULES.replace('    text: "{% set who', '    txt: "{% set who')
    found = problems(broken)
    assert any("txt" in p for p in found), found
    assert any("text" in p and "required" in p.lower() for p in found), found
