"""Compiled conditions: the `Cond` node, its leaf builders and its `all`/`any` combinators.

A `Cond` holds a plain closure over `Facts` (the fast path used by evaluation), a
human description, and its parts (the slow path used by `explain`). Leaf conditions
also carry index hints: the values or words a message must have for the condition to
possibly hold, which the route compiler turns into indexes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from rules._message_facts import INDEXED_FIELDS, Facts, FieldKind, Getter, tokenize

Test = Callable[[Facts], bool]
Mode = Literal["leaf", "all", "any", "not"]


@dataclass(frozen=True)
class Cond:
    """A compiled condition: `test` decides; the rest serves explain and the route index."""

    test: Test
    text: str
    mode: Mode = "leaf"
    parts: tuple[Cond, ...] = ()
    observe: Callable[[Facts], str] | None = None
    cost: int = 1
    index_field: str | None = None
    index_values: frozenset[Any] = frozenset()
    token_field: str | None = None
    tokens: frozenset[str] = frozenset()

    def explain(self, facts: Facts) -> tuple[bool, str]:
        """Whether the condition holds, and the part of it that decided, in words."""
        if self.mode == "leaf":
            seen = f" ({self.observe(facts)})" if self.observe else ""
            return self.test(facts), f"{self.text}{seen}"
        if self.mode == "not":
            held, why = self.parts[0].explain(facts)
            return not held, f"not [{why}]"
        reasons: list[str] = []
        for part in self.parts:  # short-circuits like the fast path: no needless sentiment
            held, why = part.explain(facts)
            if held != (self.mode == "all"):
                return held, why
            reasons.append(why)
        if self.mode == "all":
            return True, " and ".join(reasons) or "no conditions"
        return False, "none of: " + "; ".join(reasons)


MATCH_ALL = Cond(test=lambda facts: True, text="always", mode="all")


BAD = object()
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "below": lambda a, b: bool(a < b),
    "above": lambda a, b: bool(a > b),
    "at_least": lambda a, b: bool(a >= b),
    "at_most": lambda a, b: bool(a <= b),
}


def normalise(value: Any) -> Any:
    """The form equality compares: strings case-folded, everything else as is."""
    return value.casefold() if isinstance(value, str) else value


def equality(
    name: str, kind: FieldKind, get: Getter, wanted: frozenset[Any], observe: Callable[[Facts], str]
) -> Cond:
    shown = ", ".join(sorted(_shown(v) for v in wanted))
    text = f"{name} = {shown}" if len(wanted) == 1 else f"{name} in [{shown}]"
    flags = {v for v in wanted if isinstance(v, bool)}

    def test(facts: Facts) -> bool:
        value = get(facts)
        if isinstance(value, list | tuple):
            return any(_hashable(normalise(v)) in wanted for v in value)
        if flags and isinstance(value, int) and not isinstance(value, bool):
            return bool(value) in flags or value in wanted
        return _hashable(normalise(value)) in wanted

    if (name in INDEXED_FIELDS or kind == "any") and not flags:
        return Cond(test=test, text=text, observe=observe, index_field=name, index_values=wanted)
    return Cond(test=test, text=text, observe=observe)


def _hashable(value: Any) -> Any:
    return value if not isinstance(value, dict | list) else BAD


def keyword_cond(
    name: str,
    kind: FieldKind,
    get: Getter,
    op: str,
    phrases: list[tuple[str, ...]],
    observe: Callable[[Facts], str],
) -> Cond:
    singles = frozenset(p[0] for p in phrases if len(p) == 1)
    multi = tuple(p for p in phrases if len(p) > 1)
    token_field = name if kind == "text" else None

    def words_of(facts: Facts) -> tuple[tuple[str, ...], frozenset[str]]:
        value = get(facts)
        if token_field is not None:
            return facts.tokens(token_field, value)
        words = tokenize(value) if isinstance(value, str) else ()
        return words, frozenset(words)

    def has_phrase(
        words: tuple[str, ...], present: frozenset[str], phrase: tuple[str, ...]
    ) -> bool:
        if not present.issuperset(phrase):
            return False
        size = len(phrase)
        return any(words[i : i + size] == phrase for i, w in enumerate(words) if w == phrase[0])

    if op == "all":

        def test(facts: Facts) -> bool:
            words, present = words_of(facts)
            return present.issuperset(singles) and all(has_phrase(words, present, p) for p in multi)
    else:

        def found(facts: Facts) -> bool:
            words, present = words_of(facts)
            if not singles.isdisjoint(present):
                return True
            return any(has_phrase(words, present, p) for p in multi)

        test = found if op == "any" else (lambda facts: not found(facts))
    listed = ", ".join(" ".join(p) if len(p) == 1 else '"' + " ".join(p) + '"' for p in phrases)
    text = f"{name} has {op if op != 'none' else 'none'} of [{listed}]"
    index: frozenset[str] = frozenset()
    if token_field is not None and op == "any":
        index = frozenset(p[0] for p in phrases)
    elif token_field is not None and op == "all":
        index = frozenset({phrases[0][0]})
    return Cond(
        test=test,
        text=text,
        observe=observe,
        cost=4,
        token_field=token_field if index else None,
        tokens=index,
    )


def all_of(parts: list[Cond]) -> Cond:
    parts = [p for p in parts if p is not MATCH_ALL] or [MATCH_ALL]
    if len(parts) == 1:
        return parts[0]
    ordered = sorted(parts, key=lambda p: p.cost)
    tests = tuple(p.test for p in ordered)
    if len(tests) == 2:
        first, second = tests

        def test(facts: Facts) -> bool:
            return first(facts) and second(facts)
    else:

        def test(facts: Facts) -> bool:
            return all(t(facts) for t in tests)

    return Cond(
        test=test, text="all of", mode="all", parts=tuple(parts), cost=sum(p.cost for p in parts)
    )


def any_of(parts: list[Cond]) -> Cond:
    tests = tuple(p.test for p in sorted(parts, key=lambda p: p.cost))

    def test(facts: Facts) -> bool:
        return any(t(facts) for t in tests)

    return Cond(
        test=test, text="any of", mode="any", parts=tuple(parts), cost=sum(p.cost for p in parts)
    )


def conjuncts(cond: Cond) -> tuple[Cond, ...]:
    """The top-level parts that must all hold (the condition itself if it is not an `all`)."""
    return cond.parts if cond.mode == "all" else (cond,)


def observer(get: Getter) -> Callable[[Facts], str]:
    def observe(facts: Facts) -> str:
        value = get(facts)
        if isinstance(value, timedelta):
            return f"was {_span(value)}"
        if isinstance(value, float):
            return f"was {value:.3f}"
        text = repr(value)
        return f"was {text if len(text) <= 60 else text[:57] + '...'}"

    return observe


def _span(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return "".join(parts) or "0s"


def _shown(value: Any) -> str:
    if isinstance(value, timedelta):
        return _span(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
