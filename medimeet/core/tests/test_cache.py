"""The Redis cache backend (medimeet/core/cache.py) against a real Redis when the run has one."""

from __future__ import annotations

import os
import uuid

import pytest

from medimeet.core.cache import SharedPoolRedisCache


def redis_cache(location: str) -> SharedPoolRedisCache:
    return SharedPoolRedisCache(location, {"KEY_PREFIX": f"test-cache-{uuid.uuid4().hex[:8]}"})


def test_every_operation_of_a_redis_cache_uses_the_same_client_of_its_pool():
    cache = redis_cache("redis://127.0.0.1:6390/0")  # nothing needs to listen: no command is sent
    client = cache._cache
    assert client.get_client(write=True) is client.get_client(write=True)
    assert client.get_client(write=False) is client.get_client("any-key", write=False)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs the Redis of the PostgreSQL + Redis run")
def test_the_reused_client_reads_writes_counts_and_deletes_in_redis():
    cache = redis_cache(os.environ["REDIS_URL"])
    cache.set("k", {"a": 1}, 30)
    assert cache.get("k") == {"a": 1}
    assert cache.add("n", 1, 30) is True and cache.add("n", 5, 30) is False
    assert cache.incr("n", 2) == 3
    cache.delete_many(["k", "n"])
    assert cache.get_many(["k", "n"]) == {}
