"""Browser fixtures for the end-to-end tests (``@pytest.mark.e2e``): one headless Debian Chromium
for the whole test session and a fresh, isolated page (own cookies and storage) per test.

Registered for every app by the root conftest.py (``pytest_plugins``). Serve pages with
pytest-django's ``live_server``; ``navigator.mediaDevices`` needs its localhost origin.

Video calls need more: ``media_browser`` is a Chromium with a fake camera and microphone (and
no permission prompts), and ``asgi_live_server`` a real Daphne serving HTTP and websockets
(pytest-django's ``live_server`` is WSGI only).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

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
def playwright_session() -> Iterator[Playwright]:
    # One driver for the session: the sync API cannot be started twice in one thread.
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium, or set MEDIMEET_CHROMIUM")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    browser = playwright_session.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="Europe/London")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Errors the page logs to its console (a test asserts there are none)."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(f"{page.url}: {message.text}") if message.type == "error" else None)
    # No smooth scrolling or transitions: screenshots then show the page at rest.
    page.emulate_media(reduced_motion="reduce")
    return errors


class Person:
    """Someone using the product in a browser context of their own (own cookies), with the
    console errors and uncaught exceptions of every page they open."""

    def __init__(self, context: BrowserContext):
        self.context = context
        self.errors: list[str] = []
        self.page = self.open_page()

    def open_page(self) -> Page:
        """Another tab of theirs, watched like the first."""
        page = self.context.new_page()
        page.on("console", lambda message: self.errors.append(f"{page.url}: {message.text}") if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        # No smooth scrolling or transitions: screenshots then show the page at rest.
        page.emulate_media(reduced_motion="reduce")
        return page


# --- Video calls --------------------------------------------------------------------------------

MEDIA_ARGS = [*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture(scope="session")
def media_browser(playwright_session: Playwright) -> Iterator[Browser]:
    """A Chromium whose camera and microphone are generated (a moving test pattern and a beep)
    and allowed without asking; two contexts of it can call each other over loopback."""
    browser = playwright_session.chromium.launch(executable_path=CHROMIUM, headless=True, args=MEDIA_ARGS)
    yield browser
    browser.close()


def _asgi_application():
    # Module level, so the server process can build it (channels.testing.live does the same).
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import SyncToAsync
    from channels.layers import channel_layers
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from medimeet.asgi import application

    # The server process is forked from the test process, whose earlier websocket tests started
    # asgiref's database thread and an in-memory channel layer on their own event loops. A fork
    # keeps those objects but not the thread: give the server fresh ones, or database calls wait
    # forever on an executor whose worker does not exist here.
    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)
    channel_layers.backends.clear()
    return ASGIStaticFilesHandler(application)


@pytest.fixture
def asgi_live_server(transactional_db) -> Iterator[str]:
    """The whole ASGI application (pages, static files and websockets) on Daphne, in a process of
    its own, against the test database; its base URL, on 127.0.0.1 (a secure context for
    getUserMedia). One process: the in-memory channel layer is enough."""
    from daphne.testing import DaphneProcess

    # The test database is a file on SQLite too (settings/test.py), so the server process reaches
    # it; a forked child must not share this process's connections.
    connections.close_all()
    server = DaphneProcess(host="127.0.0.1", get_application=partial(_asgi_application))
    server.start()
    try:
        if not server.ready.wait(timeout=15):
            raise RuntimeError("Daphne did not start" + (f": {server.errors.get(False)[1]}" if not server.errors.empty() else ""))
        yield f"http://127.0.0.1:{server.port.value}"
    finally:
        server.terminate()
        server.join(timeout=10)


# --- Screenshots ----------------------------------------------------------------------------------

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def expect_fits_the_window(page: Page) -> None:
    """The page does not scroll sideways: nothing (a header with too many links, a wide table)
    is wider than the window."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width} pixels wide in a {page.viewport_size['width']}-pixel window"


def screenshot(page: Page, name: str) -> None:
    """The whole page at rest (no focus ring, scrolled to the top) as docs/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


# --- Signing in -----------------------------------------------------------------------------------


_TOTP_PERIOD = 30
_used_totp: dict[str, int] = {}


def totp_code(secret: str) -> str:
    """The authenticator code for ``secret`` that the server will accept: allauth allows no
    clock tolerance and refuses a code used before, so this waits for the next 30-second window
    when the current one is about to end or its code was already used in this test run."""
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value  # Django set up by now

    now = time.time()
    window = int(now) // _TOTP_PERIOD
    if _used_totp.get(secret) == window or (window + 1) * _TOTP_PERIOD - now < 3:
        time.sleep((window + 1) * _TOTP_PERIOD - now + 0.2)
        window += 1
    _used_totp[secret] = window
    return format_hotp_value(hotp_value(secret, window))


def sign_in(page: Page, base_url: str, email: str, password: str, path: str = "/accounts/login/") -> None:
    """Sign in with a password on the login page at ``path`` (a page that asks for it, e.g.
    ``/portal/``, comes back after)."""
    page.goto(f"{base_url}{path}")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign In").click()


def sign_out(page: Page) -> None:
    """Sign out from the account menu of the header."""
    page.get_by_role("button", name=re.compile("account menu")).click()
    page.get_by_role("button", name="Sign out", exact=True).click()


def sign_in_with_code(page: Page, base_url: str, *, email: str, password: str, secret: str) -> None:
    """Sign in on the login page with a password and then the authenticator code of ``secret``
    (staff must have TOTP); lands on the account page."""
    sign_in(page, base_url, email, password)
    page.locator("input[name='code']").fill(totp_code(secret))
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(f"{base_url}/account/")


# --- Video calls, seen from the page ---------------------------------------------------------------

# Video frames the page's peer connection (``window.mmConsultation.pc``) has decoded.
_FRAMES_DECODED = """async () => {
    const pc = window.mmConsultation && window.mmConsultation.pc;
    if (!pc) return 0;
    let frames = 0;
    (await pc.getStats()).forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0; });
    return frames;
}"""


def frames_decoded(page: Page) -> int:
    return page.evaluate(_FRAMES_DECODED)


def expect_call_connected(page: Page, other: str) -> None:
    """The consultation room of ``page`` is connected to ``other`` (their name as shown): the
    page says so, its RTCPeerConnection is connected and it decodes the other side's video."""
    call = page.locator("#mm-consultation")
    expect(call).to_have_attribute("data-call-state", "admitted")
    expect(call).to_have_attribute("data-peer-state", "connected")
    expect(call).to_have_attribute("data-remote-video", "playing")
    expect(page.locator("[data-mm-connection]")).to_have_text(f"Connected to {other}")
    page.wait_for_function("() => window.mmConsultation.pc && window.mmConsultation.pc.connectionState === 'connected'")
    page.wait_for_function(f"async () => (await ({_FRAMES_DECODED})()) > 0")
    assert frames_decoded(page) > 0
