"""/ready/ against the real database, cache (LocMem, or Redis when REDIS_URL is set), broker and
storage. A failing dependency is a setting pointed at a closed port on 127.0.0.1, never a mock."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

CLOSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_ready_when_every_dependency_answers(client):
    response = client.get("/ready/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok", "broker": "ok", "storage": "ok"}, "failed": []}


def test_not_ready_when_the_cache_is_unreachable(client, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CLOSED}}

    response = client.get("/ready/")

    assert response.status_code == 503
    assert response.json() == {"status": "error", "checks": {"database": "ok", "cache": "failed", "broker": "ok", "storage": "ok"}, "failed": ["cache"]}


def test_not_ready_when_the_broker_is_unreachable_and_the_answer_holds_no_address(client, settings):
    settings.CELERY_BROKER_URL = "redis://:s3cret-password@127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}

    response = client.get("/ready/")

    assert response.status_code == 503
    assert response.json()["failed"] == ["broker"]
    assert b"s3cret" not in response.content and b"127.0.0.1" not in response.content


def test_not_ready_when_storage_is_not_writable(client, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the media directory should be")
    settings.MEDIA_ROOT = blocker

    response = client.get("/ready/")

    assert response.status_code == 503
    assert response.json()["failed"] == ["storage"]


def test_ready_leaves_nothing_behind_in_storage(client, settings):
    client.get("/ready/")

    assert list((settings.MEDIA_ROOT / "health").iterdir()) == []
