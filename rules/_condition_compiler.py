"""Compile the `when:` of a route into a `Cond`, reporting every mistake by document path."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from rules._condition_nodes import (
    BAD,
    COMPARE,
    MATCH_ALL,
    Cond,
    all_of,
    any_of,
    equality,
    keyword_cond,
    normalise,
    observer,
)
from rules._message_facts import KNOWN_FIELDS, Facts, FieldKind, Getter, resolve_field, tokenize
from rules._problems import show_value
from rules._yaml import Path
from rules.calendar import parse_duration

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
            self.problem(path, f"a condition is a mapping of field: test, not {show_value(raw)}")
            return MATCH_ALL
        if not raw:
            return MATCH_ALL
        parts = [self._entry(str(key), value, (*path, key)) for key, value in raw.items()]
        return all_of(parts)

    def _entry(self, key: str, value: Any, path: Path) -> Cond:
        if key in ("all_of", "any_of"):
            if not isinstance(value, list) or not value:
                self.problem(path, f"'{key}' takes a non-empty list of conditions")
                return MATCH_ALL
            parts = [self.compile(item, (*path, i)) for i, item in enumerate(value)]
            return all_of(parts) if key == "all_of" else any_of(parts)
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
            choices = [*KNOWN_FIELDS, *COMBINATORS]
            close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.problem(
                path,
                f"unknown field {key!r}{hint}; fields are channel, text, subject, language, "
                "sender, "
                "attachments, sentiment, customer.*, case.*, history.*, metadata.*",
                on_key=True,
            )
            return MATCH_ALL
        name, kind, getter = resolved
        if isinstance(value, dict):
            if not value:
                self.problem(path, f"empty test for {name!r}")
                return MATCH_ALL
            return all_of(
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
            self.problem(path, f"'{key}' names an undefined calendar {show_value(value)}{hint}")
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
        observe = observer(get)
        if op in ("equals", "in"):
            values = arg if op == "in" else [arg]
            if not isinstance(values, list) or not values:
                self.problem(path, f"'{op}' takes a non-empty list of values")
                return MATCH_ALL
            normal = [
                self._value(name, kind, v, (*path, i) if op == "in" else path)
                for i, v in enumerate(values)
            ]
            wanted = frozenset(v for v in normal if v is not BAD)
            return equality(name, kind, get, wanted, observe)
        if op in ("any", "all", "none"):
            return self._keywords(name, kind, get, op, arg, path, observe)
        if op == "regex":
            return self._regex(name, kind, get, arg, path, observe)
        if op in COMPARE:
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
            self.problem(path, f"{name!r} compares with plain values, not {show_value(value)}")
            return BAD
        if kind == "duration":
            duration = self._duration(value, path)
            return BAD if duration is None else duration
        if kind == "number" and not isinstance(value, int | float):
            self.problem(path, f"{name!r} is a number; {show_value(value)} can never equal it")
            return BAD
        return normalise(value)

    def _duration(self, value: Any, path: Path) -> timedelta | None:
        try:
            duration = parse_duration(value)
        except ValueError as exc:
            self.problem(path, str(exc))
            return None
        return duration.wall_clock()

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
        return keyword_cond(name, kind, get, op, phrases, observe)

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
            self.problem(path, f"'regex' takes a regular expression string, not {show_value(arg)}")
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
            if kind in ("text", "string"):
                self.problem(path, f"'{op}' compares numbers; {name!r} is text")
            else:
                self.problem(path, f"'{op}' takes a number, not {show_value(arg)}")
            return MATCH_ALL
        compare = COMPARE[op]
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
