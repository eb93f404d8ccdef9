"""Live availability fan-out through channels-redis (docs/performance.md, "Live availability").

What one availability event costs the process that publishes it (``group_send_now`` from the
request's thread after commit, as appointments.availability_events does: one PUBLISH on the
process's synchronous Redis client) with 1, 100 and 1,000 subscribed channels in the group.

    REDIS_URL=redis://127.0.0.1:6379/5 DJANGO_SETTINGS_MODULE=medimeet.settings.test \\
        .venv/bin/python bench/availability.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medimeet.settings.test")

import django  # noqa: E402

django.setup()

from channels.layers import get_channel_layer  # noqa: E402

from medimeet.core.events import group_send_now  # noqa: E402

EVENT = {
    "type": "slots.changed",
    "doctor": "dr-priya-raman",
    "changes": [{"state": "held", "start": "2026-11-23T04:30:00+00:00", "end": "2026-11-23T04:50:00+00:00",
                 "refetch_from": "2026-11-22T23:10:00+00:00", "refetch_until": "2026-11-23T05:00:00+00:00", "service": None}],
}


def timed_send(group: str) -> float:
    """One send as a request thread makes it; milliseconds."""
    began = time.perf_counter()
    assert group_send_now(group, EVENT)
    return (time.perf_counter() - began) * 1000


async def main() -> None:
    layer = get_channel_layer()
    for members in (1, 100, 1000):
        group = f"availability.bench{members}"
        channels = [await layer.new_channel() for _ in range(members)]
        for channel in channels:
            await layer.group_add(group, channel)
        timings = []
        for _ in range(50):
            timings.append(await asyncio.to_thread(timed_send, group))
            for channel in channels:  # drain, as the subscribed consumers would
                await layer.receive(channel)
        for channel in channels:
            await layer.group_discard(group, channel)
        timings.sort()
        print(f"{members:>5} subscribers: publish median {statistics.median(timings):.2f} ms, p95 {timings[int(len(timings) * 0.95)]:.2f} ms")


asyncio.run(main())
