"""Read rule files from disk for the CLI and the workers: a FILE or a DIR of `*.yaml` files.

`rules/` does no I/O; this module is the edge that turns paths into `{filename: text}`
for `rules.compile_sources`, and supplies the reader for files rules refer to (.ics).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

RULE_SUFFIXES = (".yaml", ".yml")
TEST_FILE_PATTERNS = ("tests.y*ml", "*_tests.y*ml", "*.tests.y*ml", "*_test.y*ml", "*.test.y*ml")
"""Files in a rules folder that hold rule tests, not rules; folder loading skips them."""


class RuleFilesError(OSError):
    """The path given holds no readable rule files."""


def is_test_file(path: Path) -> bool:
    """True if the file name marks a rule-tests file (e.g. `tests.yaml`, `billing_test.yaml`)."""
    return any(fnmatch.fnmatch(path.name, pattern) for pattern in TEST_FILE_PATTERNS)


def read_rule_sources(path: Path) -> dict[str, str]:
    """`{filename: text}` of a rule file, or of every rule file directly inside a folder.

    A folder contributes its `*.yaml`/`*.yml` files in name order, except hidden files
    and rule-tests files (see `TEST_FILE_PATTERNS`). Raises `RuleFilesError`.
    """
    if path.is_dir():
        files = sorted(
            child
            for child in path.iterdir()
            if child.is_file()
            and child.suffix in RULE_SUFFIXES
            and not child.name.startswith(".")
            and not is_test_file(child)
        )
        if not files:
            raise RuleFilesError(f"{path}: no rule files (*.yaml, *.yml) in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise RuleFilesError(f"{path}: no such file or folder")
    try:
        return {str(file): file.read_text(encoding="utf-8") for file in files}
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFilesError(f"cannot read rule files: {exc}") from exc


def read_referenced_file(name: str) -> str:
    """Read a file a rule file refers to (a calendar's `holidays_file`), as UTF-8 text."""
    return Path(name).read_text(encoding="utf-8")
