"""Project-wide pytest fixtures: a clean cache per test (throttles, lockouts and MFA counters
live there, on LocMem or on the real Redis in CI) and the people every permission test uses."""

import pytest
from django.core.cache import cache

pytest_plugins = ["medimeet.core.tests.browser"]


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Each test stores uploads in its own directory, so tests can assert what was written."""
    settings.MEDIA_ROOT = tmp_path / "media"


def pytest_collection_modifyitems(config, items):
    """Browser tests last: Playwright's sync API keeps an event loop running in the main thread
    for the rest of the session, and the asyncio tests (websocket consumers) need their own."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
