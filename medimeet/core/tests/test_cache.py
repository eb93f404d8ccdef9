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


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs the Redis of the PostgreSQL + Redis run")
def test_thirty_concurrent_requests_against_a_limit_of_ten_get_exactly_ten_places():
    import threading
    import time

    cache = redis_cache(os.environ["REDIS_URL"])
    start, answers = threading.Barrier(30), []

    def hit():
        start.wait()
        answers.append(cache.sliding_window_hit("throttle_booking_7", now=time.time(), window=60, limit=10)[0])

    threads = [threading.Thread(target=hit) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert (answers.count(True), answers.count(False)) == (10, 20)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs the Redis of the PostgreSQL + Redis run")
def test_a_sliding_window_frees_places_as_its_oldest_requests_leave_it():
    cache = redis_cache(os.environ["REDIS_URL"])
    hit = cache.sliding_window_hit

    first = [hit("throttle_user_1", now=t, window=60, limit=3) for t in (1000.0, 1010.0, 1020.0)]
    refused = hit("throttle_user_1", now=1059.0, window=60, limit=3)
    after_the_first_left = hit("throttle_user_1", now=1060.5, window=60, limit=3)
    other_key = hit("throttle_user_2", now=1060.5, window=60, limit=3)

    assert first == [(True, 1, 1000.0), (True, 2, 1000.0), (True, 3, 1000.0)]
    assert refused == (False, 3, 1000.0)
    assert after_the_first_left == (True, 3, 1010.0)
    assert other_key == (True, 1, 1060.5)


def test_with_redis_down_a_rate_limit_lets_the_request_through_uncounted():
    from medimeet.core import cache as tolerant_cache

    from .test_smtp_delivery import free_port

    cache = redis_cache(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    tolerant_cache._down_until = 0.0
    try:
        assert cache.sliding_window_hit("throttle_user_1", now=1000.0, window=60, limit=1) == (True, 0, None)
        assert cache.sliding_window_hit("throttle_user_1", now=1000.0, window=60, limit=1) == (True, 0, None)
    finally:
        tolerant_cache._down_until = 0.0
