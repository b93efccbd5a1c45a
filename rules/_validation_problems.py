"""Turn pydantic validation errors into positioned, plain-English rule problems."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from rules._problems import RuleProblem, show_value
from rules._schema import allowed_keys, model_at
from rules._yaml import Path, Positions

_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "date_type": "a date",
}


def problems_from_validation(
    error: ValidationError, data: Any, file: str, positions: Positions
) -> list[RuleProblem]:
    """One problem per distinct pydantic error, at the YAML position the error is about."""
    located = [_locate(detail, data) for detail in error.errors(include_url=False)]
    problems: list[RuleProblem] = []
    for path, detail in _drop_union_noise(located, data):
        line, col, message = _describe(path, detail, positions)
        problems.append(RuleProblem(file, line + 1, col + 1, message))
    return sorted(set(problems))


def _locate(detail: ErrorDetails, data: Any) -> tuple[Path, Path | None, str, ErrorDetails]:
    """Follow the error's location through the data; note where a union branch was taken.

    Returns the data path, the path of the union (or None), the branch's tag and the error.
    """
    path: list[str | int] = []
    union_at: Path | None = None
    branch = ""
    node = data
    loc = detail["loc"]
    if detail["type"] == "missing":
        loc = loc[:-1]
    for part in loc:
        in_dict = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            path.append(part)
            node = node[part]
        elif part != "[key]" and union_at is None:
            union_at, branch = tuple(path), str(part)
    return tuple(path), union_at, branch, detail


def _drop_union_noise(
    located: Sequence[tuple[Path, Path | None, str, ErrorDetails]], data: Any
) -> list[tuple[Path, ErrorDetails]]:
    """Keep the errors of the union branch that was meant, or one combined error.

    A mapping was meant for the model branch (its errors are kept); any other value
    gets one error listing what each branch would have accepted.
    """
    plain: list[tuple[Path, ErrorDetails]] = []
    unions: dict[Path, list[tuple[Path, str, ErrorDetails]]] = {}
    for path, union_at, branch, detail in located:
        if union_at is None:
            plain.append((path, detail))
        else:
            unions.setdefault(union_at, []).append((path, branch, detail))
    for union_at, members in unions.items():
        value = _get(data, union_at)
        model_members = [m for m in members if m[1][:1].isupper()]
        if isinstance(value, dict) and model_members:
            plain.extend((path, detail) for path, _, detail in model_members)
        else:
            plain.append((union_at, _combined(union_at, value, [m[2] for m in members])))
    return plain


def _get(data: Any, path: Path) -> Any:
    for part in path:
        data = data[part]
    return data


def _combined(path: Path, value: Any, details: list[ErrorDetails]) -> ErrorDetails:
    wanted: list[str] = []
    for detail in details:
        what = _what_was_expected(detail)
        if what not in wanted:
            wanted.append(what)
    return ErrorDetails(
        type="union_combined",
        loc=tuple(path),
        msg=" or ".join(wanted),
        input=value,
    )


def _what_was_expected(detail: ErrorDetails) -> str:
    if detail["type"] == "literal_error":
        return str((detail.get("ctx") or {}).get("expected", "a known value"))
    return _EXPECTED.get(detail["type"], detail["msg"])


def _label(path: Path) -> str:
    keys = [p for p in path if isinstance(p, str)]
    if not keys:
        return "the document"
    label = keys[-1]
    for part in path[path.index(keys[-1]) + 1 :] if keys else ():
        label += f"[{part}]"
    return f"'{label}'"


def _describe(path: Path, detail: ErrorDetails, positions: Positions) -> tuple[int, int, str]:
    kind = detail["type"]
    value = detail.get("input")
    label = _label(path)
    line, col = positions.of_value(path)
    if kind == "extra_forbidden":
        parent = path[:-1]
        context = model_at(parent)
        key = str(path[-1])
        line, col = positions.of_key(path)
        choices = allowed_keys(context) if context else []
        close_keys = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
        where = f" in {context}" if context and context != "file" else ""
        suggestion = f" (did you mean {close_keys[0]!r}?)" if close_keys else ""
        if not suggestion and choices:
            suggestion = f"; expected one of: {', '.join(choices)}"
        return line, col, f"unknown key {key!r}{where}{suggestion}"
    if kind == "missing":
        missing = str(detail["loc"][-1])
        context = model_at(path)
        line, col = positions.of_key(path) if path else (0, 0)
        where = f" in {context}" if context and context != "file" else ""
        return line, col, f"missing required key {missing!r}{where}"
    if kind == "literal_error":
        expected = str((detail.get("ctx") or {}).get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected)
        key_error = isinstance(value, str) and path and path[-1] == value
        if key_error:
            line, col = positions.of_key(path)
        hint = ""
        if isinstance(value, str):
            close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        subject = f"key {value!r}" if key_error else label
        return line, col, f"{subject} should be {expected}, not {show_value(value)}{hint}"
    if kind == "string_pattern_mismatch":
        key_error = isinstance(value, str) and path and path[-1] == value
        if key_error:
            line, col = positions.of_key(path)
            return line, col, f"invalid name {value!r}: {_pattern_hint(detail)}"
        return (
            line,
            col,
            f"{label} has an invalid value {show_value(value)}: {_pattern_hint(detail)}",
        )
    if kind in ("value_error", "assertion_error"):
        error = (detail.get("ctx") or {}).get("error")
        message = str(error) if error is not None else detail["msg"]
        return line, col, f"{label}: {message}"
    if kind == "union_combined":
        return line, col, f"{label} should be {detail['msg']}, not {show_value(value)}"
    if kind in _EXPECTED:
        return line, col, f"{label} should be {_EXPECTED[kind]}, not {show_value(value)}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return line, col, f"{label}: {detail['msg'].lower()}, not {show_value(value)}"
    return line, col, f"{label}: {detail['msg']}"


def _pattern_hint(detail: ErrorDetails) -> str:
    pattern = str((detail.get("ctx") or {}).get("pattern", ""))
    if "a-z0-9" in pattern and "A-Z" not in pattern:
        return "queue names use lowercase letters, digits, '_' and '-' (up to 64)"
    return "names use letters, digits, '.', '_' and '-' (up to 64), starting with a letter or digit"
