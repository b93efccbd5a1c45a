"""Problems found in rule files, and the one exception loading a rule set may raise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
