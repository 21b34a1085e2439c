"""Chromium for the console's browser tests: Debian's /usr/bin/chromium driven by Playwright.

No browser is downloaded: Playwright is pointed at the system Chromium. Without Playwright or
Chromium the tests skip with the reason, except under IRGOV_REQUIRE_BROWSER=1 (set by CI),
where they fail instead."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("IRGOV_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking"]


def browser_missing() -> str | None:
    """Why no browser test can run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install 'irgov-policy[test]'"
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM}: apt-get install -y chromium"
    return None


def require_browser() -> None:
    missing = browser_missing()
    if missing is None:
        return
    if os.environ.get("IRGOV_REQUIRE_BROWSER") == "1":
        pytest.fail(f"IRGOV_REQUIRE_BROWSER=1 but {missing}")
    pytest.skip(missing)


@contextmanager
def chromium() -> Iterator[Any]:
    """One headless Chromium (a Playwright `Browser`), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
