"""How long one full garbage collection stalls a server process holding 2,000 consultation
sockets, with and without the start-up objects frozen (medimeet/core/process.py).

    PYTHONPATH=. DJANGO_SETTINGS_MODULE=medimeet.settings.local .venv/bin/python bench/gc_pause.py unfrozen
    PYTHONPATH=. DJANGO_SETTINGS_MODULE=medimeet.settings.local .venv/bin/python bench/gc_pause.py frozen
"""

import gc
import statistics
import sys
import time
from collections import deque

import medimeet.asgi  # noqa: F401 (loads the application and freezes what it loaded)
from consultations.consumers import ConsultationConsumer


def main(frozen: bool) -> None:
    if not frozen:
        gc.unfreeze()
    sockets = []
    for i in range(2000):  # roughly what each socket of 1,000 rooms holds: the consumer, its scope, state
        consumer = ConsultationConsumer()
        consumer.scope = {"type": "websocket", "path": f"/ws/consultations/{i}/", "headers": [(b"host", b"x")] * 8, "url_route": {"kwargs": {"room": str(i)}}}
        consumer.recent = deque(float(j) for j in range(20))
        consumer.extra = [{"k": j} for j in range(50)]
        sockets.append(consumer)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - started) * 1000)
    label = "frozen" if frozen else "not frozen"
    print(f"{label}: tracked objects {len(gc.get_objects())}, full collection ms median {statistics.median(times):.1f} (min {min(times):.1f})")


if __name__ == "__main__":
    main(sys.argv[1:] == ["frozen"])
