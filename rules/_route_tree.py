"""The routes tree: compiled nodes, per-node child indexes, and the tree walk.

A node's children are tried in order; the first match wins unless it says
`continue: true`. Nodes with many children get a `ChildIndex` that proposes, for a
message, only the children that can possibly match (by indexed field values and by
words of the text), still in their written order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rules._condition_nodes import Cond, conjuncts
from rules._message_facts import Facts, Getter, resolve_field
from schemas import Priority

INDEX_MIN_CHILDREN = 8
"""Below this many children a plain scan is faster than consulting an index."""


@dataclass(frozen=True)
class RouteNode:
    """One compiled route: its condition, the settings it sets, and its children."""

    name: str | None
    cond: Cond | None
    queue: str | None = None
    priority: str | None = None
    sla: str | None = None
    escalation: str | None = None
    tags: tuple[str, ...] = ()
    acknowledgement: str | None = None
    continue_: bool = False
    children: tuple[RouteNode, ...] = ()
    index: ChildIndex | None = None
    where: tuple[str, int, int] = ("", 0, 0)

    @property
    def matches_everything(self) -> bool:
        """True if the route has no condition (or an empty one)."""
        return self.cond is None or (self.cond.mode == "all" and not self.cond.parts)


@dataclass
class Outcome:
    """The settings accumulated while walking the tree for one message."""

    queue: str
    priority: Priority
    sla: str | None
    escalation: str | None
    tags: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    acknowledgement: str | None = None

    def apply(self, node: RouteNode) -> None:
        """Apply a matched route's settings: later routes override, tags accumulate."""
        if node.queue is not None:
            self.queue = node.queue
        if node.priority is not None:
            self.priority = apply_priority(self.priority, node.priority)
        if node.sla is not None:
            self.sla = node.sla
        if node.escalation is not None:
            self.escalation = node.escalation
        if node.acknowledgement is not None:
            self.acknowledgement = node.acknowledgement
        for tag in node.tags:
            if tag not in self.tags:
                self.tags.append(tag)
        if node.name is not None:
            self.matched.append(node.name)


def apply_priority(current: Priority, setting: str) -> Priority:
    """An absolute priority (`high`) replaces; a relative one (`+1`: more urgent) shifts."""
    if setting[:1] in "+-":
        return current.shifted(int(setting))
    return Priority(setting)


def walk(node: RouteNode, facts: Facts, outcome: Outcome) -> None:
    """Try `node`'s children in order (via its index if it has one), applying matches."""
    children = node.children
    order: Sequence[int] = node.index.candidates(facts) if node.index else range(len(children))
    for position in order:
        child = children[position]
        cond = child.cond
        if cond is None or cond.test(facts):
            outcome.apply(child)
            if child.children:
                walk(child, facts, outcome)
            if not child.continue_:
                return


@dataclass(frozen=True)
class _ValueDimension:
    getter: Getter
    buckets: dict[Any, tuple[int, ...]]
    everything: tuple[int, ...]


@dataclass(frozen=True)
class _WordDimension:
    field: str
    getter: Getter
    buckets: dict[str, tuple[int, ...]]
    words: frozenset[str]


@dataclass(frozen=True)
class ChildIndex:
    """Candidate children of one node by indexed values and words; the rest are always tried."""

    always: tuple[int, ...]
    values: tuple[_ValueDimension, ...]
    words: tuple[_WordDimension, ...]

    def candidates(self, facts: Facts) -> Sequence[int]:
        """Positions of the children that may match `facts`, ascending."""
        hits: list[tuple[int, ...]] = [self.always] if self.always else []
        for dimension in self.values:
            value = dimension.getter(facts)
            if value.__class__ is str:
                bucket = dimension.buckets.get(value.casefold())
            elif isinstance(value, list | tuple | dict):
                bucket = dimension.everything
            else:
                bucket = dimension.buckets.get(value)
            if bucket:
                hits.append(bucket)
        for words in self.words:
            present = facts.tokens(words.field, words.getter(facts))[1]
            buckets = words.buckets
            hits.extend([buckets[word] for word in present & words.words])
        if len(hits) > 1:
            return sorted(set().union(*hits))
        return hits[0] if hits else ()


def build_index(children: Sequence[RouteNode]) -> ChildIndex | None:
    """Index the children by their most selective indexable condition, if there are enough."""
    if len(children) < INDEX_MIN_CHILDREN:
        return None
    always: list[int] = []
    values: dict[str, dict[Any, list[int]]] = {}
    words: dict[str, dict[str, list[int]]] = {}
    for position, child in enumerate(children):
        key = _index_key(child)
        if key is None:
            always.append(position)
        elif key.token_field is not None:
            table = words.setdefault(key.token_field, {})
            for word in key.tokens:
                table.setdefault(word, []).append(position)
        else:
            assert key.index_field is not None
            value_table = values.setdefault(key.index_field, {})
            for value in key.index_values:
                value_table.setdefault(value, []).append(position)
    if not values and not words:
        return None
    return ChildIndex(
        always=tuple(always),
        values=tuple(
            _ValueDimension(
                getter=_getter(name),
                buckets={v: tuple(ps) for v, ps in table.items()},
                everything=tuple(sorted({p for ps in table.values() for p in ps})),
            )
            for name, table in values.items()
        ),
        words=tuple(
            _WordDimension(
                field=name,
                getter=_getter(name),
                buckets={w: tuple(ps) for w, ps in table.items()},
                words=frozenset(table),
            )
            for name, table in words.items()
        ),
    )


_FIELD_PREFERENCE = ("customer.", "metadata.", "sender", "language", "case.", "channel")


def _index_key(child: RouteNode) -> Cond | None:
    """The conjunct that narrows this child most: words first, then the rarest kind of field."""
    if child.cond is None:
        return None
    parts = conjuncts(child.cond)
    worded = [p for p in parts if p.token_field is not None and p.tokens]
    if worded:
        return min(worded, key=lambda p: len(p.tokens))
    valued = [p for p in parts if p.index_field is not None and p.index_values]
    if not valued:
        return None
    return min(valued, key=lambda p: (_preference(p.index_field or ""), len(p.index_values)))


def _preference(name: str) -> int:
    for rank, prefix in enumerate(_FIELD_PREFERENCE):
        if name.startswith(prefix):
            return rank
    return len(_FIELD_PREFERENCE)


def _getter(name: str) -> Getter:
    resolved = resolve_field(name)
    assert resolved is not None, name
    return resolved[2]
