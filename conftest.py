"""Project-wide pytest fixtures: a clean cache per test (throttles, lockouts and MFA counters
live there, on LocMem or on the real Redis in CI) and the people every permission test uses."""

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()
