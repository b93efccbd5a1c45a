"""The order a replay feeds stage C: case group by case group, each in event-time order.

Stage C's cases never influence each other: a record changes its own case (and, when that
case cannot take a message, the customer's successor case), and its deadlines fire
case by case. So any order that keeps each case's records in event-time order decides
exactly what the worker decided. Replaying the history group by group instead of
interleaving every case of the week keeps what the replay touches small, and a replay of
a week of 100,000 messages runs about a tenth faster (`bench/RESULTS.md`).

A group is a customer together with every case their messages name: their own cases, the
successors a resolved case hands messages to, and a forum topic's case, which joins every
customer who posts in it. Agent actions join the group of the case they name. An action
naming a case no message names (a case from before the replayed range, or a successor
further down a chain than `SUCCESSOR_DEPTH`) is a *stray*: strays come last, in
event-time order, and the caller must check that their cases do not exist by then.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from schemas import AgentAction
from schemas.ids import successor_case_id
from streams.records import ThreadedMessage

__all__ = ["SUCCESSOR_DEPTH", "CaseInput", "CaseOrder", "case_order"]

SUCCESSOR_DEPTH = 2
"""How far down a case's chain of successors actions are looked for (a successor of a
successor: a case resolved and written to again, more than the reopen window later, twice
in the replayed range). Deeper chains are found by the caller's check of the strays."""


class CaseInput(NamedTuple):
    """One input of stage C: a threaded message or an agent action, at its place in time.

    A named tuple: a week of history makes hundreds of thousands of them.
    """

    position: int
    """Its position in event-time order."""
    threaded: ThreadedMessage | None = None
    action: AgentAction | None = None


@dataclass(frozen=True)
class CaseOrder:
    """Stage C's inputs grouped by case, and the strays to apply last."""

    groups: list[list[CaseInput]]
    """Each group's inputs in event-time order; no case is named in two groups."""
    strays: list[CaseInput]


class _Groups:
    """Union-find over customer and case keys."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        root = self._parent.setdefault(key, key)
        while self._parent[root] != root:
            root = self._parent[root]
        while key != root:  # compress the path behind it
            self._parent[key], key = root, self._parent[key]
        return root

    def join(self, first: str, second: str) -> None:
        one, other = self.find(first), self.find(second)
        if one != other:
            self._parent[other] = one

    def known(self, key: str) -> bool:
        return key in self._parent


def case_order(inputs: Iterable[CaseInput]) -> CaseOrder:
    """Group `inputs` (given in event-time order) by case group, keeping time order within."""
    inputs = list(inputs)
    groups = _Groups()
    chained: set[tuple[str, str]] = set()
    for item in inputs:
        threaded = item.threaded
        if threaded is None:
            continue
        customer = "u:" + threaded.customer_id
        groups.join(customer, "c:" + threaded.case_id)
        if (threaded.customer_id, threaded.case_id) in chained:
            continue
        chained.add((threaded.customer_id, threaded.case_id))
        successor = threaded.successor_case_id
        for _ in range(SUCCESSOR_DEPTH):
            if successor is None:
                break
            groups.join(customer, "c:" + successor)
            successor = successor_case_id(threaded.customer_id, successor)
    rank: dict[str, int] = {}
    keyed: list[tuple[int, int, CaseInput]] = []
    strays: list[CaseInput] = []
    for item in inputs:
        if item.threaded is not None:
            root = groups.find("c:" + item.threaded.case_id)
        else:
            assert item.action is not None
            key = "c:" + item.action.case_id
            if not groups.known(key):
                strays.append(item)
                continue
            root = groups.find(key)
        keyed.append((rank.setdefault(root, len(rank)), item.position, item))
    keyed.sort(key=lambda entry: (entry[0], entry[1]))
    ordered: list[list[CaseInput]] = []
    for group_rank, _position, item in keyed:
        if len(ordered) <= group_rank:
            ordered.append([])
        ordered[group_rank].append(item)
    return CaseOrder(ordered, strays)
