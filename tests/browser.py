"""Headless Chromium for the page tests: Debian's `chromium`, driven by Playwright for Python
(the system browser: Playwright's own browser download is never used). The fixtures are registered
once, in conftest.py: a test module that imported them again would get a second session-scoped
Playwright in the same worker, which Playwright's sync API refuses ("inside the asyncio loop").

    def test_page(page):          # a fresh page (own context: cookies do not leak between tests)
        page.goto(url)
        shoot(page, "status")     # tests/artifacts/status.png, kept for the README and reviews
"""
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("UWB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# as root, without a sandbox; no background traffic (this machine has no network but loopback)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def _require():
    if not Path(CHROMIUM).exists():
        pytest.fail("the browser tests need Debian's chromium: run  sudo apt-get install chromium",
                    pytrace=False)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("the browser tests need Playwright: run  make venv", pytrace=False)


@pytest.fixture(scope="session")
def browser():
    _require()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1100, "height": 800})
    pg = ctx.new_page()
    pg.set_default_timeout(10000)
    yield pg
    ctx.close()


def shoot(page, name):
    """Save a screenshot of PAGE as tests/artifacts/NAME.png; its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / (name + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path
