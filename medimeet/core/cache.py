"""Redis cache backend that shares its connection pool across requests and survives Redis outages.

Django keeps cache objects per execution context; under ASGI every request is a new context,
so the stock RedisCache builds a fresh client, and with it a fresh connection pool and TCP
connection, for every request (measured in docs/performance.md). The client holds only a
thread-safe redis-py pool, so one client per configuration is shared process-wide.

The cache holds nothing that is not also somewhere else (sessions are ``cached_db``, search
counts and platform settings are recomputed from the database), so Redis being down must not
take pages down: reads answer "miss", writes and deletes are skipped, each with a warning in the
log, and for ``OUTAGE_BACKOFF_SECONDS`` after a failure Redis is not even tried (no connection
attempt per request while it is down). Rate limits are not enforced meanwhile (``sliding_window_hit``
lets requests through uncounted; ``add`` answers True, "stored", so allauth's rate-limit lock is taken at once
instead of every sign-in waiting a second and being refused with 429; constance's cache fills
lose nothing). Do not rely on ``add`` alone as a lock or a "first use?" check where allowing
twice is harmful. ``incr`` has no safe answer (counting wrong sign-in codes): it raises
``CacheUnavailable``, which the API answers with 503 SERVER_002 — the second factor is refused
while Redis is down, never allowed (accounts.services.login_complete_mfa counts before it
checks single use).
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property
from redis.exceptions import RedisError

logger = logging.getLogger("medimeet.cache")

_clients: dict[tuple, object] = {}
_lock = threading.Lock()
OUTAGE_BACKOFF_SECONDS = 5.0
_down_until = 0.0  # monotonic time until which Redis is taken as down (process-wide)


class CacheUnavailable(Exception):
    """The cache could not answer an operation that has no safe default (``incr``)."""


def _failed(operation: str, exc: Exception) -> None:
    global _down_until
    if time.monotonic() >= _down_until:  # one warning per back-off period, not one per request
        logger.warning("cache unavailable, serving without it", extra={"event": operation, "code": type(exc).__name__})
    _down_until = time.monotonic() + OUTAGE_BACKOFF_SECONDS


def cache_is_down() -> bool:
    return time.monotonic() < _down_until


class _ReusedClientRedisCacheClient(RedisCacheClient):
    """Django's client builds a new ``redis.Redis`` around its pool for every operation, and each
    one copies redis-py's table of ~200 response callbacks: about 0.1 ms of CPU per cache call,
    several per API request (throttles, constance). A ``redis.Redis`` over a pool is
    thread-safe, so one per pool serves every operation."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients_by_pool: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients_by_pool.get(id(pool))
        if client is None:
            client = self._clients_by_pool.setdefault(id(pool), self._client(connection_pool=pool))
        return client


# One request in a rate limit's sliding window, atomically: drop the timestamps older than the
# window (newest first, as DRF's throttles keep them), refuse if ``limit`` remain, else record
# this one. Returns {allowed, requests in the window, the oldest one's timestamp}.
SLIDING_WINDOW_HIT = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
while true do
  local last = redis.call('LINDEX', key, -1)
  if not last or tonumber(last) > now - window then break end
  redis.call('RPOP', key)
end
local count = redis.call('LLEN', key)
if count >= limit then
  return {0, count, redis.call('LINDEX', key, -1)}
end
redis.call('LPUSH', key, ARGV[1])
redis.call('EXPIRE', key, math.ceil(window))
return {1, count + 1, redis.call('LINDEX', key, -1)}
"""


class SharedPoolRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusedClientRedisCacheClient

    @cached_property
    def _sliding_window_hit(self):
        return self._cache.get_client(write=True).register_script(SLIDING_WINDOW_HIT)

    def sliding_window_hit(self, key: str, *, now: float, window: float, limit: int) -> tuple[bool, int, float | None]:
        """Count one request against ``limit`` per ``window`` seconds under ``key`` (a rate
        limit's log, medimeet.core.api throttles): (allowed, requests in the window with this
        one if allowed, the oldest one's time). One round trip, atomic: concurrent requests
        cannot both take the last place, as they could with a read then a write. With Redis down
        the request is allowed and not counted, as for every other cache read."""
        if cache_is_down():
            return True, 0, None
        try:
            allowed, count, oldest = self._sliding_window_hit(keys=[self.make_and_validate_key(f"{key}:log")], args=[repr(now), window, limit])
        except RedisError as exc:
            _failed("sliding_window_hit", exc)
            return True, 0, None
        return bool(allowed), int(count), float(oldest) if oldest is not None else None

    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client

    def _tolerant(self, operation: str, default, *args, **kwargs):
        if cache_is_down():
            return default
        try:
            return getattr(super(), operation)(*args, **kwargs)
        except RedisError as exc:
            _failed(operation, exc)
            return default

    def _strict(self, operation: str, *args, **kwargs):
        if cache_is_down():
            raise CacheUnavailable(operation)
        try:
            return getattr(super(), operation)(*args, **kwargs)
        except RedisError as exc:
            _failed(operation, exc)
            raise CacheUnavailable(operation) from exc

    def get(self, key, default=None, version=None):
        return self._tolerant("get", default, key, default, version)

    def get_many(self, keys, version=None):
        return self._tolerant("get_many", {}, keys, version)

    def has_key(self, key, version=None):
        return self._tolerant("has_key", False, key, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._tolerant("set", None, key, value, timeout, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._tolerant("set_many", list(data), data, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._tolerant("touch", False, key, timeout, version)

    def delete(self, key, version=None):
        return self._tolerant("delete", False, key, version)

    def delete_many(self, keys, version=None):
        return self._tolerant("delete_many", None, keys, version)

    def clear(self):
        return self._tolerant("clear", False)

    def get_or_set(self, key, default, timeout=DEFAULT_TIMEOUT, version=None):
        # Django's version goes through add(): without Redis the value is just computed.
        value = self.get(key, version=version)
        if value is None:
            value = default() if callable(default) else default
            if value is not None:
                self.set(key, value, timeout, version)
        return value

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._tolerant("add", True, key, value, timeout, version)

    def incr(self, key, delta=1, version=None):  # decr() goes through incr()
        return self._strict("incr", key, delta, version)
