"""Collects problems while a rule set is checked, turning document paths into positions."""

from __future__ import annotations

from dataclasses import dataclass, field

from rules._problems import RuleProblem, Severity
from rules._yaml import Path, Positions


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
