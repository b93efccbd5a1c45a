"""Compile the `when:` of a route into a fast predicate, reporting every mistake by path.

A compiled `Cond` holds a plain closure over `Facts` (the fast path used by
evaluation), a human description, and its parts (the slow path used by `explain`).
Leaf conditions also carry index hints: the values or words a message must have for
the condition to possibly hold, which the route compiler turns into indexes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol

from rules._context import INDEXED_FIELDS, KNOWN_FIELDS, Facts, FieldKind, Getter, resolve_field
from rules._context import tokenize as tokenize
from rules._yaml import Path
from rules.calendar import parse_duration

Test = Callable[[Facts], bool]
Mode = Literal["leaf", "all", "any", "not"]

OPERATORS = (
    "equals",
    "in",
    "any",
    "all",
    "none",
    "regex",
    "below",
    "above",
    "at_least",
    "at_most",
    "exists",
)
COMBINATORS = ("all_of", "any_of", "not", "during", "outside")
_TEXT_KINDS = ("text", "string", "any")


class OpenCalendar(Protocol):
    """What `during`/`outside` need of a calendar."""

    def is_open(self, at: Any) -> bool:
        """True if the calendar is open at the instant `at`."""
        ...


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


@dataclass
class ConditionCompiler:
    """Compiles conditions; collects `(path, message, on_key)` problems instead of raising."""

    calendars: Mapping[str, OpenCalendar | None]
    problems: list[tuple[Path, str, bool]] = field(default_factory=list)

    def problem(self, path: Path, message: str, on_key: bool = False) -> None:
        """Record a problem at the value (or the key) at `path`."""
        self.problems.append((path, message, on_key))

    def compile(self, raw: Any, path: Path) -> Cond:
        """Compile a `when:` mapping (all entries must hold)."""
        if not isinstance(raw, dict):
            self.problem(path, f"a condition is a mapping of field: test, not {_show(raw)}")
            return MATCH_ALL
        if not raw:
            return MATCH_ALL
        parts = [self._entry(str(key), value, (*path, key)) for key, value in raw.items()]
        return _all(parts)

    def _entry(self, key: str, value: Any, path: Path) -> Cond:
        if key in ("all_of", "any_of"):
            if not isinstance(value, list) or not value:
                self.problem(path, f"'{key}' takes a non-empty list of conditions")
                return MATCH_ALL
            parts = [self.compile(item, (*path, i)) for i, item in enumerate(value)]
            return _all(parts) if key == "all_of" else _any(parts)
        if key == "not":
            inner = self.compile(value, path)
            return Cond(
                test=lambda f: not inner.test(f),
                text="not",
                mode="not",
                parts=(inner,),
                cost=inner.cost,
            )
        if key in ("during", "outside"):
            return self._calendar(key, value, path)
        resolved = resolve_field(key)
        if resolved is None:
            close = difflib.get_close_matches(key, [*KNOWN_FIELDS, *COMBINATORS], n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.problem(
                path,
                f"unknown field {key!r}{hint}; fields are channel, text, subject, language, sender, "
                "attachments, sentiment, customer.*, case.*, metadata.*",
                on_key=True,
            )
            return MATCH_ALL
        name, kind, getter = resolved
        if isinstance(value, dict):
            if not value:
                self.problem(path, f"empty test for {name!r}")
                return MATCH_ALL
            return _all(
                [
                    self._operator(name, kind, getter, str(op), arg, (*path, op))
                    for op, arg in value.items()
                ]
            )
        if isinstance(value, list):
            return self._operator(name, kind, getter, "in", value, path)
        return self._operator(name, kind, getter, "equals", value, path)

    def _calendar(self, key: str, value: Any, path: Path) -> Cond:
        if not isinstance(value, str) or value not in self.calendars:
            names = sorted(self.calendars)
            close = (
                difflib.get_close_matches(str(value), names, n=1, cutoff=0.6)
                if isinstance(value, str)
                else []
            )
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.problem(path, f"'{key}' names an undefined calendar {_show(value)}{hint}")
            return MATCH_ALL
        calendar = self.calendars[value]
        inside = key == "during"

        def test(facts: Facts) -> bool:
            return calendar is not None and calendar.is_open(facts.at) == inside

        return Cond(
            test=test, text=f"{key} {value}", observe=lambda f: f"at {f.at.isoformat()}", cost=20
        )

    def _operator(
        self, name: str, kind: FieldKind, get: Getter, op: str, arg: Any, path: Path
    ) -> Cond:
        observe = _observer(get)
        if op in ("equals", "in"):
            values = arg if op == "in" else [arg]
            if not isinstance(values, list) or not values:
                self.problem(path, f"'{op}' takes a non-empty list of values")
                return MATCH_ALL
            normal = [
                self._value(name, kind, v, (*path, i) if op == "in" else path)
                for i, v in enumerate(values)
            ]
            wanted = frozenset(v for v in normal if v is not _BAD)
            return _equality(name, kind, get, wanted, observe)
        if op in ("any", "all", "none"):
            return self._keywords(name, kind, get, op, arg, path, observe)
        if op == "regex":
            return self._regex(name, kind, get, arg, path, observe)
        if op in _COMPARE:
            return self._compare(name, kind, get, op, arg, path, observe)
        if op == "exists":
            if not isinstance(arg, bool):
                self.problem(path, "'exists' takes true or false")
                return MATCH_ALL
            return Cond(
                test=lambda f: (get(f) not in (None, "", [], ())) == arg,
                text=f"{name} exists: {str(arg).lower()}",
                observe=observe,
            )
        close = difflib.get_close_matches(op, OPERATORS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        self.problem(
            path,
            f"unknown test {op!r} for {name!r}{hint}; tests are {', '.join(OPERATORS)}",
            on_key=True,
        )
        return MATCH_ALL

    def _value(self, name: str, kind: FieldKind, value: Any, path: Path) -> Any:
        if isinstance(value, dict | list):
            self.problem(path, f"{name!r} compares with plain values, not {_show(value)}")
            return _BAD
        if kind == "duration":
            duration = self._duration(value, path)
            return _BAD if duration is None else duration
        if kind == "number" and not isinstance(value, int | float):
            self.problem(path, f"{name!r} is a number; {_show(value)} can never equal it")
            return _BAD
        return normalise(value)

    def _duration(self, value: Any, path: Path) -> timedelta | None:
        try:
            duration = parse_duration(value)
        except ValueError as exc:
            self.problem(path, str(exc))
            return None
        return duration.open_time + timedelta(days=duration.open_days + 7 * duration.open_weeks)

    def _keywords(
        self,
        name: str,
        kind: FieldKind,
        get: Getter,
        op: str,
        arg: Any,
        path: Path,
        observe: Callable[[Facts], str],
    ) -> Cond:
        if kind not in _TEXT_KINDS:
            self.problem(path, f"'{op}' looks for words in text; {name!r} is a {kind}")
            return MATCH_ALL
        items = arg if isinstance(arg, list) else [arg]
        if not items or not all(isinstance(item, str) for item in items):
            self.problem(path, f"'{op}' takes a word or phrase, or a non-empty list of them")
            return MATCH_ALL
        phrases: list[tuple[str, ...]] = []
        for i, item in enumerate(items):
            words = tokenize(item)
            if not words:
                self.problem(
                    (*path, i) if isinstance(arg, list) else path,
                    f"{item!r} has no letters or digits to match",
                )
            else:
                phrases.append(words)
        if not phrases:
            return MATCH_ALL
        return _keyword_cond(name, kind, get, op, phrases, observe)

    def _regex(
        self,
        name: str,
        kind: FieldKind,
        get: Getter,
        arg: Any,
        path: Path,
        observe: Callable[[Facts], str],
    ) -> Cond:
        if kind not in _TEXT_KINDS:
            self.problem(path, f"'regex' matches text; {name!r} is a {kind}")
            return MATCH_ALL
        if not isinstance(arg, str):
            self.problem(path, f"'regex' takes a regular expression string, not {_show(arg)}")
            return MATCH_ALL
        try:
            pattern = re.compile(arg)
        except (re.error, OverflowError, RecursionError) as exc:
            detail = getattr(exc, "msg", str(exc))
            where = getattr(exc, "pos", None)
            at = f" at position {where}" if where is not None else ""
            self.problem(path, f"invalid regex {arg!r}: {detail}{at}")
            return MATCH_ALL
        search = pattern.search

        def test(facts: Facts) -> bool:
            value = get(facts)
            return isinstance(value, str) and search(value) is not None

        return Cond(test=test, text=f"{name} matches /{arg}/", observe=observe, cost=8)

    def _compare(
        self,
        name: str,
        kind: FieldKind,
        get: Getter,
        op: str,
        arg: Any,
        path: Path,
        observe: Callable[[Facts], str],
    ) -> Cond:
        limit: Any
        if kind == "duration":
            limit = self._duration(arg, path)
            if limit is None:
                return MATCH_ALL
            shown = str(arg)
        elif (
            kind in ("number", "list", "any")
            and isinstance(arg, int | float)
            and not isinstance(arg, bool)
        ):
            limit = arg
            shown = str(arg)
            if name == "sentiment" and not -1 <= arg <= 1:
                self.problem(path, f"sentiment lies between -1 and 1; {arg} is outside")
        else:
            wanted = "a duration such as 4h" if kind == "duration" else "a number"
            if kind in ("text", "string"):
                self.problem(path, f"'{op}' compares numbers; {name!r} is text")
            else:
                self.problem(path, f"'{op}' takes {wanted}, not {_show(arg)}")
            return MATCH_ALL
        compare = _COMPARE[op]
        if kind == "list":

            def test(facts: Facts) -> bool:
                return compare(len(get(facts)), limit)
        elif kind == "duration":

            def test(facts: Facts) -> bool:
                return compare(get(facts), limit)
        else:

            def test(facts: Facts) -> bool:
                value = get(facts)
                return (
                    isinstance(value, int | float)
                    and not isinstance(value, bool)
                    and compare(value, limit)
                )

        cost = 60 if name == "sentiment" else 2
        return Cond(
            test=test, text=f"{name} {op.replace('_', ' ')} {shown}", observe=observe, cost=cost
        )


_BAD = object()
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "below": lambda a, b: bool(a < b),
    "above": lambda a, b: bool(a > b),
    "at_least": lambda a, b: bool(a >= b),
    "at_most": lambda a, b: bool(a <= b),
}


def normalise(value: Any) -> Any:
    """The form equality compares: strings case-folded, everything else as is."""
    return value.casefold() if isinstance(value, str) else value


def _equality(
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
    return value if not isinstance(value, dict | list) else _BAD


def _keyword_cond(
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


def _all(parts: list[Cond]) -> Cond:
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


def _any(parts: list[Cond]) -> Cond:
    tests = tuple(p.test for p in sorted(parts, key=lambda p: p.cost))

    def test(facts: Facts) -> bool:
        return any(t(facts) for t in tests)

    return Cond(
        test=test, text="any of", mode="any", parts=tuple(parts), cost=sum(p.cost for p in parts)
    )


def conjuncts(cond: Cond) -> tuple[Cond, ...]:
    """The top-level parts that must all hold (the condition itself if it is not an `all`)."""
    return cond.parts if cond.mode == "all" else (cond,)


def _observer(get: Getter) -> Callable[[Facts], str]:
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


def _show(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
