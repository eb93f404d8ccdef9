"""Browser fixtures for the end-to-end tests (``@pytest.mark.e2e``): one headless Debian Chromium
for the whole test session and a fresh, isolated page (own cookies and storage) per test.

Registered for every app by the root conftest.py (``pytest_plugins``). Serve pages with
pytest-django's ``live_server``; ``navigator.mediaDevices`` needs its localhost origin.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

# Playwright's sync API keeps an asyncio event loop running in the test thread, and Django
# refuses ORM calls from such a thread. The test reads the database between browser steps on
# purpose, so allow it (test processes only: this module is never imported by the app).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("MEDIMEET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium, or set MEDIMEET_CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="Europe/London")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()
