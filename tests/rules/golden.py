"""Helpers for the golden rule-file fixtures under tests/rules/good and tests/rules/bad."""

from __future__ import annotations

from pathlib import Path

import rules

HERE = Path(__file__).parent
GOOD = HERE / "good"
BAD = HERE / "bad"


def fixture_sources(path: Path) -> dict[str, str]:
    """A fixture file (named by its base name) or folder (named `folder/file`)."""
    if path.is_dir():
        return {f"{path.name}/{f.name}": f.read_text() for f in sorted(path.glob("*.yaml"))}
    return {path.name: path.read_text()}


def missing_file(name: str) -> str:
    """A file reader for which no referenced file exists."""
    raise FileNotFoundError(2, "No such file or directory", name)


def problem_lines(path: Path) -> list[str]:
    """What `rules check` reports for a fixture: every error, or the warnings of a valid set."""
    try:
        ruleset = rules.compile_sources(fixture_sources(path), read_file=missing_file)
    except rules.RuleSetError as exc:
        return [str(p) for p in exc.problems]
    return [str(w) for w in ruleset.warnings]


def bad_fixtures() -> list[Path]:
    """Every bad fixture: a `.yaml` file or a folder, each with a sibling `.expected` file."""
    return sorted(p.with_suffix("") if p.suffix else p for p in BAD.glob("*.expected"))


if __name__ == "__main__":  # regenerate the .expected files after reviewing a change
    for fixture in bad_fixtures():
        source = fixture if fixture.is_dir() else fixture.with_suffix(".yaml")
        fixture.with_suffix(".expected").write_text("\n".join(problem_lines(source)) + "\n")
