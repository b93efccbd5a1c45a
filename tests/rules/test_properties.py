"""Hypothesis properties: the loader never crashes; evaluation is deterministic and local."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

import rules
from schemas import InboundMessage

KEYS = [
    "version",
    "calendars",
    "sla",
    "escalations",
    "queues",
    "routes",
    "name",
    "when",
    "queue",
    "priority",
    "tags",
    "continue",
    "channel",
    "text",
    "any",
    "all",
    "regex",
    "below",
    "timezone",
    "hours",
    "targets",
    "first_response",
    "on",
    "after",
    "not",
    "any_of",
    "customer.tier",
    "case.age",
    "during",
    "mon-fri",
    "general",
    "24x7",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        ["general", "urgent", "+1", "30m", "2d", "08:00-18:00", "UTC", "[", "(", "24x7", ""]
    ),
    st.text(max_size=12),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=5),
    ),
    max_leaves=40,
)
YAMLISH = st.text(
    alphabet=st.sampled_from(list("abc:-[]{}!&*#'\"|>,?%@ \n\t0123456789")), max_size=200
)


def _dump(data: Any) -> str:
    stream = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, stream)
    return stream.getvalue()


def _never_crashes(text: str) -> None:
    try:
        rules.compile_sources({"fuzz.yaml": text})
    except rules.RuleSetError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.line >= 1
            assert problem.col >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_random_structures_never_crash_the_loader(data: Any) -> None:
    _never_crashes(_dump(data))


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["calendars", "sla", "escalations", "queues", "routes"]), DOCUMENTS
    )
)
def test_random_sections_never_crash_the_loader(data: dict[str, Any]) -> None:
    _never_crashes(_dump(data))


@settings(max_examples=300, deadline=None)
@given(YAMLISH)
def test_random_yamlish_text_never_crashes_the_loader(text: str) -> None:
    _never_crashes(text)


def test_pathological_documents_give_rule_set_errors() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 4) + "]\n"
        for i in range(12)
    )
    for text in [
        "[" * 5000,
        "- " * 3000 + "x",
        bomb,
        "\x00",
        "a: !!python/object:os.system x",
        "routes:\n" + "  " * 200,
    ]:
        _never_crashes(text)


WORDS = ["refund", "invoice", "lawyer", "broken", "thanks", "angry", "login", "legal", "action"]
MESSAGES = st.builds(
    lambda channel, words, tier, lang: InboundMessage(
        channel=channel,
        external_id="m",
        sender="s",
        text=" ".join(words),
        sent_at=datetime(2027, 1, 4, 9, tzinfo=UTC),
        customer={"tier": tier},
        language=lang,
    ),
    st.sampled_from(["email", "sms", "twitter", "community"]),
    st.lists(st.sampled_from(WORDS), max_size=8),
    st.sampled_from([None, "vip", "standard"]),
    st.sampled_from([None, "de", "en"]),
)
CASES = st.one_of(
    st.none(),
    st.builds(
        lambda contacts, hours: rules.CaseFacts(
            contacts=contacts, unanswered_for=timedelta(hours=hours)
        ),
        st.integers(1, 6),
        st.integers(0, 10),
    ),
)
CONDITIONS = st.sampled_from(
    [
        "{channel: email}",
        "{channel: [sms, twitter]}",
        "{text: {any: [refund, invoice]}}",
        "{text: {any: ['legal action']}}",
        "{text: {all: [angry, broken]}}",
        "{text: {none: [thanks]}}",
        "{customer.tier: vip}",
        "{language: de}",
        "{case.contacts: {at_least: 3}}",
        "{case.unanswered_for: {above: 4h}}",
        "{any_of: [{channel: sms}, {text: {any: [login]}}]}",
        "{not: {channel: email}}",
        "{channel: community, text: {regex: 'ref+und'}}",
    ]
)
ROUTES = st.lists(
    st.tuples(
        CONDITIONS, st.booleans(), st.sampled_from(["urgent", "+1", "-1", None]), st.integers(0, 9)
    ),
    min_size=1,
    max_size=20,
)


def _ruleset(
    routes: list[tuple[str, bool, str | None, int]], names: list[str] | None = None
) -> rules.CompiledRuleSet:
    names = names or [f"r{i}" for i in range(len(routes))]
    lines = [
        "queues: {" + ", ".join(f"q{i}: {{}}" for i in range(10)) + "}",
        "routes:",
        "  queue: q0",
        "  routes:",
    ]
    lines.extend(
        f"    - {{name: {name}, when: {cond}, continue: {str(cont).lower()}, queue: q{queue}"
        + (f", priority: '{prio}'" if prio else "")
        + f", tags: [t-{name}]}}"
        for name, (cond, cont, prio, queue) in zip(names, routes, strict=True)
    )
    return rules.compile_sources({"p.yaml": "\n".join(lines) + "\n"})


@settings(max_examples=200, deadline=None)
@given(ROUTES, MESSAGES, CASES)
def test_evaluation_is_deterministic_and_matches_explain(
    routes: Any, message: InboundMessage, case: Any
) -> None:
    ruleset = _ruleset(routes)
    first = ruleset.evaluate(message, case, message.sent_at)
    assert ruleset.evaluate(message, case, message.sent_at) == first
    assert _ruleset(routes).evaluate(message, case, message.sent_at) == first
    assert ruleset.explain(message, case, message.sent_at).decision == first


@settings(max_examples=200, deadline=None)
@given(ROUTES, MESSAGES, CASES, st.integers(0, 20))
def test_adding_a_route_that_cannot_match_changes_nothing(
    routes: Any, message: InboundMessage, case: Any, where: int
) -> None:
    before = _ruleset(routes).evaluate(message, case, message.sent_at)
    impossible = ("{channel: no-such-channel}", False, "urgent", 9)
    position = min(where, len(routes))
    names = [f"r{i}" for i in range(len(routes))]
    names.insert(position, "never")
    bigger = _ruleset([*routes[:position], impossible, *routes[position:]], names)
    after = bigger.evaluate(message, case, message.sent_at)
    assert (after.queue, after.priority, after.tags, after.matched) == (
        before.queue,
        before.priority,
        before.tags,
        before.matched,
    )


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_ascii_tokenizer_fast_path_equals_the_unicode_path(text: str) -> None:
    import re
    import unicodedata

    from rules._message_facts import tokenize

    assert tokenize(text) == tuple(
        re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold())
    )
