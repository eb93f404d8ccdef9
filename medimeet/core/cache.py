"""Redis cache backend that shares its connection pool across requests.

Django keeps cache objects per execution context; under ASGI every request is a new context,
so the stock RedisCache builds a fresh client, and with it a fresh connection pool and TCP
connection, for every request (measured in docs/performance.md). The client holds only a
thread-safe redis-py pool, so one client per configuration is shared process-wide.
"""

from __future__ import annotations

import threading

from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

_clients: dict[tuple, object] = {}
_lock = threading.Lock()


class SharedPoolRedisCache(RedisCache):
    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client
