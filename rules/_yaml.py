"""Read YAML text into plain Python data, remembering where every key and value sits.

The round-trip loader of ruamel.yaml knows the line and column of each node; we
copy the document into plain dicts, lists and scalars (so nothing downstream
depends on ruamel types) and keep the positions in a side table keyed by path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError

Path = tuple[str | int, ...]
"""Where a node sits in a document: mapping keys and list indexes from the root."""

MAX_DEPTH = 64
"""Deepest nesting accepted; real rule files stay far below it."""

MAX_NODES = 200_000
"""Most nodes accepted in one document (guards against alias bombs)."""


@dataclass
class Positions:
    """Line and column (both from 0) of the values and keys of one document, by path."""

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def of_value(self, path: Path) -> tuple[int, int]:
        """Position of the value at `path`, or of its nearest known ancestor."""
        return _nearest(self.values, path)

    def under(self, prefix: Path) -> Positions:
        """The positions of the sub-document at `prefix`, with paths relative to it."""
        size = len(prefix)
        return Positions(
            values={p[size:]: v for p, v in self.values.items() if p[:size] == prefix},
            keys={p[size:]: v for p, v in self.keys.items() if p[:size] == prefix},
        )

    def of_key(self, path: Path) -> tuple[int, int]:
        """Position of the key that ends `path` (falls back to the value's position)."""
        if path in self.keys:
            return self.keys[path]
        return _nearest(self.values, path)


def _nearest(table: Mapping[Path, tuple[int, int]], path: Path) -> tuple[int, int]:
    for end in range(len(path), -1, -1):
        if path[:end] in table:
            return table[path[:end]]
    return (0, 0)


class YamlSyntaxError(Exception):
    """The text is not a YAML document we can read; `line`/`col` count from 0."""

    def __init__(self, message: str, line: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


def load_yaml(text: str) -> tuple[Any, Positions]:
    """Parse one YAML document into plain data and its positions; raise `YamlSyntaxError`."""
    yaml = YAML(typ="rt", pure=True)
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line, col = (mark.line, mark.column) if mark is not None else (0, 0)
        raise YamlSyntaxError(f"YAML syntax error: {problem}", line, col) from None
    except RecursionError:
        raise YamlSyntaxError("YAML nested too deeply") from None
    except Exception as exc:  # ruamel raises many types on odd input; all mean "unreadable"
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise YamlSyntaxError(f"YAML syntax error: {message}") from None
    positions = Positions()
    positions.values[()] = (0, 0)
    budget = [MAX_NODES]
    try:
        data = _plain(raw, (), positions, budget)
    except RecursionError:
        raise YamlSyntaxError("YAML nested too deeply") from None
    return data, positions


def _plain(node: Any, path: Path, positions: Positions, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise YamlSyntaxError(f"document too large (more than {MAX_NODES} nodes)")
    if len(path) > MAX_DEPTH:
        line, col = positions.of_value(path)
        raise YamlSyntaxError(f"nested more than {MAX_DEPTH} levels deep", line, col)
    if isinstance(node, CommentedMap):
        result: dict[str, Any] = {}
        for key, value in node.items():
            name = _key_text(key)
            child = (*path, name)
            _remember(positions.keys, child, node.lc.key(key))
            _remember(positions.values, child, node.lc.value(key))
            result[name] = _plain(value, child, positions, budget)
        return result
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for index, value in enumerate(node):
            child = (*path, index)
            _remember(positions.values, child, node.lc.item(index))
            items.append(_plain(value, child, positions, budget))
        return items
    if isinstance(node, Mapping):  # plain mappings from unusual constructors
        return {
            _key_text(k): _plain(v, (*path, _key_text(k)), positions, budget)
            for k, v in node.items()
        }
    if isinstance(node, Sequence) and not isinstance(node, str | bytes):
        return [_plain(v, (*path, i), positions, budget) for i, v in enumerate(node)]
    return _scalar(node)


def _remember(table: dict[Path, tuple[int, int]], path: Path, where: Any) -> None:
    try:
        line, col = where
        table[path] = (int(line), int(col))
    except (TypeError, ValueError):
        return


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return str(key)
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(_scalar(key))


def _scalar(node: Any) -> Any:
    if isinstance(node, dt.datetime):  # ruamel's TimeStamp subclass: keep a plain datetime
        return dt.datetime(*node.timetuple()[:6], node.microsecond, tzinfo=node.tzinfo)
    if node is None or isinstance(node, dt.date):
        return node
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, TaggedScalar):
        return str(node.value)
    return str(node)
