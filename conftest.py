"""Project-wide pytest fixtures: a clean cache per test (throttles, lockouts and MFA counters
live there, on LocMem or on the real Redis in CI) and the people every permission test uses."""

import pytest
from django.core.cache import cache

pytest_plugins = ["medimeet.core.tests.browser", "medimeet.core.tests.journey"]


def pytest_sessionstart(session):
    """The Hindi catalogue is compiled by `make test`; a bare `pytest` after editing the .po
    compiles it too, so translations under test are never stale."""
    from medimeet.core.management.commands.compile_catalogues import catalogues_compile

    catalogues_compile()


@pytest.fixture(scope="session", autouse=True)
def pdf_signing_files(tmp_path_factory):
    """A throwaway platform signing key and self-signed certificate for the whole session
    (receipts and prescriptions are signed with it); no key is checked in."""
    from datetime import UTC, datetime

    from django.test import override_settings

    from medimeet.core.pdf import signing_certificate_create

    directory = tmp_path_factory.mktemp("pdf-signing")
    key_pem, cert_pem = signing_certificate_create(common_name="MediMeet document signing (tests)", valid_from=datetime(2020, 1, 1, tzinfo=UTC))  # tests travel in time
    (directory / "key.pem").write_bytes(key_pem)
    (directory / "cert.pem").write_bytes(cert_pem)
    files = {"key": directory / "key.pem", "cert": directory / "cert.pem"}
    with override_settings(PDF_SIGNING_KEY_FILE=str(files["key"]), PDF_SIGNING_CERT_FILE=str(files["cert"]), PDF_SIGNING_KEY="", PDF_SIGNING_CERT="", PDF_SIGNING_CHAIN="", PDF_SIGNING_CHAIN_FILE="", PDF_SIGNING_PREVIOUS_CERTS_FILE="", PDF_SIGNING_TSA_URL=""):
        yield files


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_content_types():
    """ContentType's per-process cache outlives a test's rolled-back transaction: a content type
    made inside one (constance's ``Config``, created on the first admin change of a setting) stayed
    cached with an id no row has, and the next admin log entry in that process broke its foreign
    key (which test came next depended on pytest-xdist's split)."""
    from django.contrib.contenttypes.models import ContentType

    yield
    ContentType.objects.clear_cache()


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
