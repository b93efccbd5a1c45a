"""Playwright on Debian's chromium (never a downloaded browser) for the console's browser tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
"""Where screenshots go (tests/artifacts/, kept out of git)."""

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str:
    """The system chromium that `deploy/test-tools.sh` installs; fail (never skip) without it."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "no chromium on PATH: run `bash deploy/test-tools.sh` (installs Debian's chromium)",
        pytrace=False,
    )


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless chromium driven by Playwright."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_path(name: str) -> Path:
    """A path under tests/artifacts/ for a screenshot called `name`."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
