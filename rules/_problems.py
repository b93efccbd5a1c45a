"""Problems found in rule files, the collector that positions them while a rule set is checked,
and the one exception loading a rule set may raise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rules._yaml import Path, Positions

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class RuleProblem:
    """One error or warning, positioned in a rule file (line and column count from 1)."""

    file: str
    line: int
    col: int
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        """`FILE:LINE:COL: message`, with `warning: ` before the message of a warning."""
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.col}: {prefix}{self.message}"


class RuleSetError(ValueError):
    """A rule set that cannot be used; `problems` lists every error (and warning) found."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = sorted(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        head = str(errors[0]) if errors else "invalid rule set"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(head + more)

    @property
    def errors(self) -> list[RuleProblem]:
        """Only the problems of severity `error`."""
        return [p for p in self.problems if p.severity == "error"]


def show_value(value: object) -> str:
    """A value as a problem message quotes it: short, and spelled the way YAML spells it."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class Reporter:
    """Every error and warning found so far, with the positions of each file's nodes."""

    positions: dict[str, Positions] = field(default_factory=dict)
    problems: list[RuleProblem] = field(default_factory=list)

    def where(self, file: str, path: Path, on_key: bool = False) -> tuple[int, int]:
        """Line and column (from 1) of the key or value at `path` in `file`."""
        table = self.positions.get(file) or Positions()
        line, col = table.of_key(path) if on_key else table.of_value(path)
        return line + 1, col + 1

    def error(self, file: str, path: Path, message: str, on_key: bool = False) -> None:
        """Record an error at the key or value at `path`."""
        self._add(file, path, message, on_key, "error")

    def warning(self, file: str, path: Path, message: str, on_key: bool = False) -> None:
        """Record a warning at the key or value at `path`."""
        self._add(file, path, message, on_key, "warning")

    def _add(self, file: str, path: Path, message: str, on_key: bool, severity: Severity) -> None:
        line, col = self.where(file, path, on_key)
        self.problems.append(RuleProblem(file, line, col, message, severity))

    @property
    def has_errors(self) -> bool:
        """True once any error (not just warnings) was recorded."""
        return any(p.severity == "error" for p in self.problems)
