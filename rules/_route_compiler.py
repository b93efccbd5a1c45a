"""Compile the raw `routes:` tree into `RouteNode`s, checking names, references and reachability."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rules._condition_compiler import ConditionCompiler
from rules._cross_checks import Declared, undefined
from rules._problems import Reporter
from rules._route_tree import RouteNode, build_index
from rules._schema import check_priority_setting
from rules._yaml import Path


@dataclass
class TreeCompiler:
    """Walks the routes tree of one file; reports problems to `report`."""

    file: str
    declared: Declared
    conditions: ConditionCompiler
    report: Reporter
    names: dict[str, Path] = field(default_factory=dict)

    def root(self, raw: Any) -> RouteNode:
        """Compile the root route; it matches every message and must set a queue."""
        path: Path = ("routes",)
        if not isinstance(raw, dict):
            return RouteNode(name=None, cond=None)
        for key in ("when", "continue"):
            if key in raw:
                self.report.error(
                    self.file,
                    (*path, key),
                    f"the root route matches every message; '{key}' belongs on child routes",
                    on_key=True,
                )
        if "queue" not in raw:
            self.report.error(
                self.file,
                path,
                "the root route must set a 'queue' (the default queue)",
                on_key=True,
            )
        node = self._node(raw, path, is_root=True)
        if node.priority is not None and node.priority[:1] in "+-":
            self.report.error(
                self.file,
                (*path, "priority"),
                "the root route needs an absolute priority, such as normal",
            )
        return node

    def _node(self, raw: dict[str, Any], path: Path, is_root: bool = False) -> RouteNode:
        name = raw.get("name") if isinstance(raw.get("name"), str) else None
        if name is not None:
            self._claim_name(name, path)
        elif not is_root and "name" not in raw:
            self.report.error(
                self.file, path, "a child route needs a 'name' (it is listed in 'matched')"
            )
        cond = None
        if "when" in raw and not is_root:
            cond = self.conditions.compile(raw["when"], (*path, "when"))
        children = self._children(raw.get("routes"), path)
        return RouteNode(
            name=name,
            cond=cond,
            queue=self._reference(raw, path, "queue", "queues", "queue"),
            priority=_priority(raw.get("priority")),
            sla=self._reference(raw, path, "sla", "sla", "SLA policy"),
            escalation=self._reference(raw, path, "escalation", "escalations", "escalation"),
            acknowledgement=self._reference(
                raw, path, "acknowledgement", "acknowledgements", "acknowledgement"
            ),
            tags=tuple(t for t in raw.get("tags", ()) if isinstance(t, str))
            if isinstance(raw.get("tags"), list)
            else (),
            continue_=raw.get("continue") is True,
            children=children,
            index=build_index(children),
            where=(self.file, *self.report.where(self.file, path)),
        )

    def _children(self, raw: Any, path: Path) -> tuple[RouteNode, ...]:
        if not isinstance(raw, list):
            return ()
        children: list[RouteNode] = []
        catch_all: RouteNode | None = None
        for index, item in enumerate(raw):
            child_path = (*path, "routes", index)
            if not isinstance(item, dict):
                continue
            child = self._node(item, child_path)
            if catch_all is not None:
                self.report.warning(
                    self.file,
                    child_path,
                    f"route {child.name or index!r} can never match: {catch_all.name!r} "
                    f"(line {catch_all.where[1]}) matches every message and does not continue",
                )
            elif child.matches_everything and not child.continue_:
                catch_all = child
            children.append(child)
        return tuple(children)

    def _claim_name(self, name: str, path: Path) -> None:
        first = self.names.get(name)
        if first is not None:
            line, col = self.report.where(self.file, first)
            self.report.error(
                self.file,
                (*path, "name"),
                f"duplicate route name {name!r} (first used at {self.file}:{line}:{col})",
            )
        else:
            self.names[name] = (*path, "name")

    def _reference(
        self, raw: dict[str, Any], path: Path, key: str, section: str, kind: str
    ) -> str | None:
        value = raw.get(key)
        if not isinstance(value, str):
            return None
        known = self.declared.names(section)
        if value not in known:
            self.report.error(self.file, (*path, key), undefined(kind, value, known))
        return value


def _priority(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return check_priority_setting(value)
    except ValueError:
        return None  # reported by the schema pass
