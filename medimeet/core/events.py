"""Side effects after commit: the one helper every service uses to queue a task, an email or
a websocket event, so a rolled-back transaction never sends anything.

The transaction has committed by then, so a broker or channel layer that cannot be reached
(Redis down) must not turn the answer into an error: the failure is logged, recorded as a
``FailedTask`` (the staff dashboard's failed tasks; name and error type only) and the work is
picked up again from the database by a beat scan where one exists (stored notifications:
``requeue_stalled_notifications``; refunds and webhook events: their retry scans). A websocket
event that cannot be sent is dropped: the pages read the state again when they reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import cache, partial

from channels import DEFAULT_CHANNEL_LAYER
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

# A websocket event is a courtesy to whoever is watching: the change it reports is committed
# already. A channel layer that is down or slow must not fail (or hold up) the request that
# made the change, so a send waits at most this long and any failure is logged and dropped.
GROUP_SEND_TIMEOUT_SECONDS = 1.0
# Sends without a time bound of their own (the consultation room's events) still give up on a
# Redis that does not answer for this long.
PUBLISH_TIMEOUT_SECONDS = 10.0


def _unreachable(exc: Exception) -> bool:
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import RedisError

    return isinstance(exc, BrokerError | RedisError)


def task_enqueue(task, *args, **kwargs) -> bool:
    """``task.delay(...)``; False (logged) when the broker cannot be reached."""
    exc = _delay(task, args, kwargs)
    if exc is None:
        return True
    logger.warning("task not queued: broker unreachable", extra={"task": task.name, "code": type(exc).__name__})
    _record_not_queued(task.name, exc)
    return False


def _delay(task, args: tuple, kwargs: dict) -> Exception | None:
    """Queue the task; the error when the broker cannot be reached (any other is raised)."""
    try:
        task.delay(*args, **kwargs)
    except Exception as exc:
        if not _unreachable(exc):
            raise
        return exc
    return None


def _record_not_queued(task_name: str, exc: Exception) -> None:
    """Staff see it with the failed tasks (dashboard, admin): name, error type and time only."""
    from .dashboard.failures import failed_task_record

    try:
        failed_task_record(task_name=task_name, task_id="", exception=exc)
    except Exception:  # the database may be what is down too: the log line above remains
        logger.warning("could not record a task that was not queued", extra={"task": task_name})


def enqueue_on_commit(task, *args, **kwargs) -> None:
    """Queue Celery ``task`` with the given arguments once the current transaction commits."""
    transaction.on_commit(partial(task_enqueue, task, *args, **kwargs))


def enqueue_or_run_on_commit(task, **kwargs) -> None:
    """As ``enqueue_on_commit``, for work that is only deferred to keep it out of the request
    and must not be lost: when the broker cannot be reached, the task runs here, after commit,
    as it would have on a worker (e.g. rendering messages, whose stored rows the requeue scan
    then delivers)."""

    def queue_or_run() -> None:
        exc = _delay(task, (), kwargs)
        if exc is None:
            return
        logger.warning("task run in the request: broker unreachable", extra={"task": task.name, "code": type(exc).__name__})
        try:
            task.run(**kwargs)
        except Exception as failure:  # the change is committed: the answer must not become an error
            logger.warning("task failed in the request", extra={"task": task.name, "code": type(failure).__name__})
            _record_not_queued(task.name, failure)

    transaction.on_commit(queue_or_run)


def group_send_now(group: str, event: dict, *, timeout: float | None = GROUP_SEND_TIMEOUT_SECONDS) -> bool:
    """Send ``event`` to a channel-layer group from synchronous code; never raises. Returns
    whether the layer took it (a layer that is down, or slower than ``timeout`` seconds, is
    logged as a warning and the event is dropped)."""
    from channels.layers import get_channel_layer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    layer = get_channel_layer()
    try:
        if isinstance(layer, RedisPubSubChannelLayer):
            _publish(layer, group, event, timeout=timeout)
        else:
            _group_send_in_a_loop(layer, group, event, timeout=timeout)
    except Exception as exc:  # the layer's errors are many (connection, timeout): all are "not sent"
        # The group's kind only (a consultation room id is a secret), the event and the error.
        kind = group.split(".", 1)[0]
        logger.warning("websocket event not sent to a %s group: %s", kind, type(exc).__name__, extra={"event": event.get("type"), "code": type(exc).__name__})
        return False
    return True


def _publish(layer, group: str, event: dict, *, timeout: float | None) -> None:
    """A group send on channels-redis's pub/sub layer is one PUBLISH of the serialised event
    on the group's Redis channel. Done here with the process's synchronous client: no event loop
    and no new Redis connection per event, which is what ``async_to_sync(layer.group_send)``
    costs a WSGI request or a Celery task (~3 ms of CPU each; docs/performance.md, booking).
    The channel name and shard follow ``channels_redis.pubsub`` (a test holds them to it: a
    subscribed consumer receives what this publishes)."""
    from channels_redis.utils import _consistent_hash, decode_hosts

    config = settings.CHANNEL_LAYERS[DEFAULT_CHANNEL_LAYER]["CONFIG"]
    channel = f"{config.get('prefix', 'asgi')}__group__{group}"
    hosts = decode_hosts(config.get("hosts"))
    address = hosts[_consistent_hash(channel, len(hosts))]["address"]
    _publisher(address, timeout).publish(channel, layer.serialize(event))


@cache
def _publisher(address: str, timeout: float | None):
    """One thread-safe client (and pool) per Redis address and time bound, for the process.
    Tried twice without a pause (a pooled connection from before a Redis restart fails once),
    each try with half the bound, so the whole send stays within it."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    bound = (timeout or PUBLISH_TIMEOUT_SECONDS) / 2
    return redis.Redis.from_url(address, socket_timeout=bound, socket_connect_timeout=bound, retry=Retry(NoBackoff(), 1))


def _group_send_in_a_loop(layer, group: str, event: dict, *, timeout: float | None) -> None:
    """Any other layer (the in-memory one of the embedded default): its own coroutine."""
    from asgiref.sync import async_to_sync

    async def send() -> None:
        await asyncio.wait_for(layer.group_send(group, event), timeout=timeout)

    async_to_sync(send)()


def group_send_on_commit(group: str, event: dict | Callable[[], dict]) -> None:
    """Send ``event`` to a channel-layer group (websockets) once the current transaction commits;
    a callable is called then, so the event describes the committed state. A layer that is
    down is logged, not raised (the change is committed already); no time bound here, as the
    consultation room's events (recording state, a withdrawn guest) must not be dropped."""
    transaction.on_commit(lambda: group_send_now(group, event() if callable(event) else event, timeout=None))
