"""Rule evaluation cost per message for generated rule sets of 10 to 10,000 routes.

Compiled evaluation (indexes + closures) against a naive interpreter that checks every
condition of every route from the dict form, on the same fixed message corpus; both
must reach the same decisions. Prints a table and the ratios the targets are about:
<= 20 us/message at 1,000 routes, and the 10,000-route cost <= 5x the 1,000-route cost.

    .venv/bin/python bench/rules_eval.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rules
from rules import _message_facts
from rules._message_facts import Facts, resolve_field, tokenize
from rules._yaml import load_yaml
from rules.calendar import parse_duration
from schemas import InboundMessage, Priority

SEED = 20270104
CHANNELS = ["email", "email", "email", "chat", "webform", "sms", "twitter", "facebook", "community"]
COMMON = [
    *[
        "the",
        "a",
        "to",
        "and",
        "i",
        "my",
        "is",
        "it",
        "for",
        "of",
        "you",
        "your",
        "this",
        "that",
        "order",
        "please",
        "help",
        "with",
        "have",
        "not",
    ],
    *[
        "was",
        "on",
        "be",
        "can",
        "when",
        "where",
        "what",
        "how",
        "do",
        "get",
        "there",
        "are",
        "any",
        "still",
        "since",
        "week",
        "day",
        "today",
    ],
]
SIZES = (10, 100, 1_000, 10_000)
UNINDEXED_ROUTES = 5
"""Routes with no indexable condition (tried for every message); fixed, as in real rule sets."""


def _vocab(prefix: str, size: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(size)]


def generate_rules(routes: int, rng: random.Random) -> str:
    """A rule file with `routes` child routes of realistic, mixed conditions."""
    keywords = _vocab("kw", max(40, routes // 2))
    tiers = _vocab("tier", max(5, routes // 10))
    products = _vocab("prod", max(10, routes // 4))
    lines = [
        "calendars:",
        "  office:",
        "    timezone: Europe/Berlin",
        "    hours: {mon-fri: ['08:00-18:00'], sat: ['10:00-14:00']}",
        "sla:",
        "  standard:",
        "    calendar: office",
        "    targets:",
        "      urgent: {first_response: 30m, resolution: 8h}",
        "      high: {first_response: 2h, resolution: 2d}",
        "      normal: {first_response: 8h, resolution: 5d}",
        "      low: {first_response: 2d}",
        "escalations:",
        "  standard: [{on: breach, queue: q1, priority: +1}]",
        "queues: {" + ", ".join(f"q{i}: {{}}" for i in range(20)) + "}",
        "routes:",
        "  queue: q0",
        "  priority: normal",
        "  sla: standard",
        "  escalation: standard",
        "  routes:",
        "    - {name: vip, when: {customer.tier: vip}, priority: +1, tags: [vip], continue: true}",
        "    - {name: angry-social, when: {channel: [twitter, facebook], sentiment: {below: -0.5}},"
        " queue: q2, priority: high}",
    ]
    for i in range(UNINDEXED_ROUTES):
        lines.append(
            f"    - {{name: plain{i}, when: {{case.contacts: {{at_least: {6 + i}}},"
            f" subject: {{regex: '(?i)^re: re: re: '}}}}, queue: q3}}"
        )
    for i in range(routes - 2 - UNINDEXED_ROUTES):
        kind = rng.random()
        queue = f"q{rng.randrange(20)}"
        if kind < 0.35:
            words = rng.sample(keywords, 2)
            channels = rng.sample(CHANNELS[2:], 2)
            channel = f"[email, {channels[0]}, {channels[1]}]"
            when = f"{{text: {{any: [{words[0]}, {words[1]}]}}, channel: {channel}}}"
        elif kind < 0.55:
            contacts = f"{{at_least: {rng.randint(1, 3)}}}"
            when = f"{{customer.tier: {rng.choice(tiers)}, case.contacts: {contacts}}}"
        elif kind < 0.70:
            when = f"{{metadata.product: {rng.choice(products)}, text: {{none: [thanks]}}}}"
        elif kind < 0.80:
            a, b = rng.sample(keywords, 2)
            phrase = f"'{b} {rng.choice(COMMON)}'"
            when = f"{{channel: {rng.choice(CHANNELS)}, text: {{all: [{a}, {phrase}]}}}}"
        elif kind < 0.90:
            when = (
                f"{{customer.tier: {rng.choice(tiers)}, language: {rng.choice(['de', 'fr', 'en'])},"
                f" any_of: [{{case.age: {{above: 1d}}}}, {{case.reopened: true}}]}}"
            )
        else:
            when = (
                f"{{metadata.product: {rng.choice(products)},"
                f" subject: {{regex: '(?i)order #\\d{{{rng.randint(4, 8)}}}'}}}}"
            )
        priority = rng.choice(["", ", priority: high", ", priority: +1", ", priority: low"])
        lines.append(
            f"    - {{name: r{i}, when: {when}, queue: {queue}{priority}, tags: [t{i % 50}]}}"
        )
    return "\n".join(lines) + "\n"


def generate_messages(
    count: int, routes: int, rng: random.Random
) -> list[tuple[InboundMessage, rules.CaseFacts]]:
    """A fixed corpus: mixed channels, 10-40 words with a few rule keywords, customers, cases."""
    keywords = _vocab("kw", max(40, routes // 2))
    tiers = [*_vocab("tier", max(5, routes // 10)), "vip", None, None, None]
    products = _vocab("prod", max(10, routes // 4))
    start = datetime(2027, 1, 4, 7, 0, tzinfo=UTC)
    corpus = []
    for i in range(count):
        words = rng.choices(COMMON, k=rng.randint(10, 40))
        for _ in range(rng.randint(0, 3)):
            words.insert(rng.randrange(len(words)), rng.choice(keywords))
        if rng.random() < 0.1:
            words.extend(["terrible", "awful", "worst", "angry"])
        message = InboundMessage(
            channel=rng.choice(CHANNELS),
            external_id=str(i),
            sender=f"c{i}@example.com",
            text=" ".join(words),
            subject=rng.choice([None, "Re: order #123456", "Help"]),
            sent_at=start + timedelta(minutes=37 * i),
            language=rng.choice([None, "en", "de", "fr"]),
            customer={"tier": rng.choice(tiers)},
            metadata={"product": rng.choice(products)} if rng.random() < 0.5 else {},
        )
        case = rules.CaseFacts(
            contacts=rng.randint(1, 4),
            age=timedelta(hours=rng.randint(0, 60)),
            reopened=rng.choice([0, 0, 0, 1]),
        )
        corpus.append((message, case))
    return corpus


class NaiveEvaluator:
    """The baseline: every condition of every route, interpreted from the dict form."""

    def __init__(self, text: str) -> None:
        data, _ = load_yaml(text)
        self.root = data["routes"]

    def matched(
        self, message: InboundMessage, case: rules.CaseFacts, at: datetime
    ) -> tuple[str, ...]:
        """Route names matched, in order, with the same semantics as the compiled set."""
        facts = Facts(message, case, at)
        names: list[str] = []
        self._walk(self.root, facts, names)
        return tuple(names)

    def _walk(self, node: dict[str, Any], facts: Facts, names: list[str]) -> None:
        results = [
            (child, self._holds(child.get("when") or {}, facts)) for child in node.get("routes", [])
        ]
        for child, held in results:
            if held:
                names.append(child["name"])
                self._walk(child, facts, names)
                if not child.get("continue"):
                    return

    def _holds(self, when: dict[str, Any], facts: Facts) -> bool:
        return all([self._entry(key, value, facts) for key, value in when.items()])  # noqa: C419 (no short-circuit)

    def _entry(self, key: str, value: Any, facts: Facts) -> bool:
        if key == "any_of":
            return any([self._holds(item, facts) for item in value])  # noqa: C419 (no short-circuit)
        if key == "all_of":
            return all([self._holds(item, facts) for item in value])  # noqa: C419 (no short-circuit)
        if key == "not":
            return not self._holds(value, facts)
        resolved = resolve_field(key)
        assert resolved is not None
        _, kind, get = resolved
        fact = get(facts)
        if not isinstance(value, dict):
            wanted = value if isinstance(value, list) else [value]
            return any(_equal(fact, w, kind) for w in wanted)
        return all([_operator(op, arg, fact, kind) for op, arg in value.items()])  # noqa: C419 (no short-circuit)


def _equal(fact: Any, wanted: Any, kind: str) -> bool:
    if isinstance(fact, list | tuple):
        return any(_equal(f, wanted, kind) for f in fact)
    if isinstance(wanted, bool) and isinstance(fact, int):
        return bool(fact) == wanted
    if isinstance(fact, str) and isinstance(wanted, str):
        return fact.casefold() == wanted.casefold()
    return bool(fact == wanted)


def _operator(op: str, arg: Any, fact: Any, kind: str) -> bool:
    if op in ("any", "all", "none"):
        words = tokenize(fact) if isinstance(fact, str) else ()
        found = [
            _phrase_in(tokenize(item), words) for item in (arg if isinstance(arg, list) else [arg])
        ]
        return any(found) if op == "any" else all(found) if op == "all" else not any(found)
    if op == "regex":
        return isinstance(fact, str) and re.search(arg, fact) is not None
    limit: Any = arg
    if kind == "duration":
        limit = parse_duration(arg).wall_clock()
    value = len(fact) if kind == "list" else fact
    if not isinstance(value, int | float | timedelta) or isinstance(value, bool):
        return False
    return {
        "below": value < limit,
        "above": value > limit,
        "at_least": value >= limit,
        "at_most": value <= limit,
    }[op]


def _phrase_in(phrase: tuple[str, ...], words: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(words[i : i + size] == phrase for i in range(len(words) - size + 1))


def _per_message_us(
    run: Any, corpus: list[tuple[InboundMessage, rules.CaseFacts]], repeats: int
) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for message, case in corpus:
            run(message, case, message.sent_at)
        best = min(best, (time.perf_counter_ns() - started) / len(corpus) / 1000)
    return best


def main() -> None:
    """Generate, check agreement, time, and print the table and ratios."""

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller corpus, fewer repeats")
    args = parser.parse_args()
    corpus_size, naive_size, repeats = (300, 50, 2) if args.quick else (2_000, 200, 5)
    print(
        f"corpus: {corpus_size} messages (naive baseline: first {naive_size}), "
        f"best of {repeats} runs"
    )
    print(
        "decide = evaluate() with VADER computed when a rule needs it; engine = the same with "
        "VADER scores looked up from a precomputed table; +SLA = decide plus SLA due times"
    )
    print(
        f"{'routes':>7} {'compile ms':>11} {'decide us':>10} {'engine us':>10} {'+SLA us':>8} "
        f"{'naive us':>10} {'naive/engine':>13}"
    )
    vader = _message_facts.sentiment_of
    results: dict[int, float] = {}
    for size in SIZES:
        rng = random.Random(SEED + size)
        text = generate_rules(size, rng)
        started = time.perf_counter()
        ruleset = rules.compile_sources({"bench.yaml": text})
        compile_ms = (time.perf_counter() - started) * 1000
        no_sla = rules.compile_sources({"bench.yaml": text.replace("  sla: standard\n", "", 1)})
        corpus = generate_messages(corpus_size, size, random.Random(SEED))
        naive = NaiveEvaluator(text)
        for message, case in corpus[:naive_size]:
            decided = ruleset.evaluate(message, case, message.sent_at)
            assert decided.matched == naive.matched(message, case, message.sent_at), message
            assert isinstance(decided.priority, Priority)
        _message_facts.sentiment_of = vader
        decide_us = _per_message_us(no_sla.evaluate, corpus, repeats)
        full_us = _per_message_us(ruleset.evaluate, corpus, repeats)
        scores = {message.text: vader(message.text) for message, _ in corpus}
        _message_facts.sentiment_of = scores.__getitem__
        engine_us = _per_message_us(no_sla.evaluate, corpus, repeats)
        naive_us = _per_message_us(naive.matched, corpus[:naive_size], max(1, repeats // 2))
        _message_facts.sentiment_of = vader
        results[size] = engine_us
        print(
            f"{size:>7} {compile_ms:>11.1f} {decide_us:>10.2f} {engine_us:>10.2f} {full_us:>8.2f} "
            f"{naive_us:>10.1f} {naive_us / engine_us:>12.1f}x"
        )
    growth = results[10_000] / results[1_000]
    print(f"engine, 10,000 / 1,000 routes: {growth:.2f}x (target <= 5x)")
    print(f"engine, 1,000 routes: {results[1_000]:.2f} us/message (target <= 20 us)")


if __name__ == "__main__":
    main()
