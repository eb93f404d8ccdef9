"""The channel layer as production configures it (channels-redis pub/sub), for tests of a
Redis that is not there."""

from __future__ import annotations

from .test_smtp_delivery import free_port


def unreachable_channel_layers() -> dict:
    """``CHANNEL_LAYERS`` pointed at a port where nothing listens: a real connection refusal."""
    return {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]}}}
