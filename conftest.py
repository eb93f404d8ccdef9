"""Project-wide pytest fixtures: a clean cache per test (throttles, lockouts and MFA counters
live there, on LocMem or on the real Redis in CI) and the people every permission test uses."""

import pytest
from django.core.cache import cache

pytest_plugins = ["medimeet.core.tests.browser"]


def pytest_sessionstart(session):
    """The Hindi catalogue is compiled by `make test`; a bare `pytest` after editing the .po
    compiles it too, so translations under test are never stale."""
    from medimeet.core.management.commands.compile_catalogues import catalogues_compile

    catalogues_compile()


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_channel_layers():
    """A channel layer of its own for each test. Each async test runs its own event loop, and
    channels-redis keeps asyncio locks bound to the loop that first waited on them: a layer
    shared across tests failed now and then with "bound to a different event loop"."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Each test stores uploads in its own directory, so tests can assert what was written."""
    settings.MEDIA_ROOT = tmp_path / "media"


def pytest_collection_modifyitems(config, items):
    """Browser tests last: Playwright's sync API keeps an event loop running in the main thread
    for the rest of the session, and the asyncio tests (websocket consumers) need their own."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
