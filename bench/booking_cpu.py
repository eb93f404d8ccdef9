"""CPU of one booking in the server process alone: bookings through Django's WSGI handler in
this process, no HTTP server and no load generator on the cores, on the bench data set.

    .venv/bin/python bench/booking_cpu.py                      # 500 bookings: CPU ms per booking
    .venv/bin/python bench/booking_cpu.py --bookings 1000 --ref-tree var/bench-tree/<sha>   # another commit's export
    py-spy record -r 250 -f raw -o /tmp/book.folded -- .venv/bin/python bench/booking_cpu.py --bookings 1000   # where it goes
    .venv/bin/python bench/booking_cpu.py --sql               # the statements and Redis commands of one booking

Each booking is `POST /api/v1/appointments/` with the reason and an Idempotency-Key, as the
`book` scenario of bench/run.py sends it, by one of 8 seeded patients (bench/setup_data.py seed:
their earlier bookings are removed first) on the free slots that `dataset.targets` picks. The
figure is ``time.process_time()`` over the bookings after 30 warm-up ones, divided by their
number: the server's CPU per booking without gunicorn (about 1 ms more per request there) and
without the other processes' CPU that `bench/run.py` reports separately; with it, the fastest
and the median of the runs of 25 bookings, which resist the host's swings better. It still
moves with the host (±5–10 % between runs here, more on a busy host): compare commits in
alternating runs, as `--ref-tree` allows. Needs the data set (`bench/run.py` seeds it) and the
same services as the harness.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOKING_REASON = "Persistent cough for two weeks, no fever."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bookings", type=int, default=500)
    parser.add_argument("--ref-tree", default=str(ROOT), help="project tree to import (an export made by bench/run.py --ref)")
    parser.add_argument("--sql", action="store_true", help="print the SQL statements and Redis commands of one booking, then stop")
    args = parser.parse_args()
    args.ref_tree = str(Path(args.ref_tree).resolve())

    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "medimeet.settings.local",
            "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", "postgres://medimeet_bench@127.0.0.1:5432/medimeet_bench"),
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"),
            "DEBUG": "false",
            "THROTTLE_USER": "1000000/min",
            "THROTTLE_BOOKING": "1000000/min",
            "JWT_ACCESS_TOKEN_LIFETIME_SECONDS": "86400",
            "BENCH_PROJECT_DIR": args.ref_tree,
        }
    )
    # Celery's Django fix-up puts the working directory first on sys.path during setup: from the
    # tree under test, so that the apps it has not imported yet come from that tree too.
    os.chdir(args.ref_tree)
    sys.path.insert(0, str(ROOT / "bench"))
    import setup_data  # noqa: PLC0415 (first: it sets Django up with the tree under test)

    # isort: split
    import dataset  # noqa: PLC0415
    from django.core.handlers.wsgi import WSGIHandler  # noqa: PLC0415

    marker = dataset.marker_read()
    if marker is None:
        sys.exit("bench/booking_cpu.py: no bench data set (run bench/run.py --scenarios booking once)")
    patients = setup_data.seed(8, "bench-booking-cpu")
    targets = dataset.targets(marker, booking_workers=8, per_worker=args.bookings // 8 + 10, contention_items=1)["booking"]
    handler, run = WSGIHandler(), uuid.uuid4().hex[:8]

    def book(patient: int, doctor: int, epoch: int, i: int) -> None:
        _, service = targets["doctors"][doctor]
        start = datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat().replace("+00:00", "Z")
        body = json.dumps({"service": service, "start": start, "reason": BOOKING_REASON}).encode()
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/appointments/", "SCRIPT_NAME": "", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.5",
            "HTTP_HOST": "127.0.0.1:8000", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": f"Bearer {patients['tokens'][patient]}", "HTTP_IDEMPOTENCY_KEY": f"cpu-{run}-{patient}-{i}",
            "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
            "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
        }  # fmt: skip
        status = {}
        answer = b"".join(handler(environ, lambda s, headers, exc_info=None: status.setdefault("line", s)))
        if not status["line"].startswith("201"):
            raise SystemExit(f"booking refused: {status['line']} {answer[:300]!r}")

    # Round-robin over the patients, each walking their own list of slots (other doctors, no clashes).
    jobs = sorted(
        ((patient, doctor, epoch, i) for patient, plan in enumerate(targets["plans"]) for i, (doctor, epoch) in enumerate(plan)),
        key=lambda job: (job[3], job[0]),
    )
    warm, measured = jobs[:30], jobs[30 : 30 + args.bookings]
    for job in warm:
        book(*job)
    if args.sql:
        sql_and_redis(book, measured[0])
        return
    cpu, wall = time.process_time(), time.perf_counter()
    batches = []  # CPU ms per booking of each run of 25: the fastest and the median resist the host's swings
    for start in range(0, len(measured), 25):
        batch = time.process_time()
        for job in measured[start : start + 25]:
            book(*job)
        batches.append(1000 * (time.process_time() - batch) / len(measured[start : start + 25]))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    batches.sort()
    print(
        f"{len(measured)} bookings: {1000 * cpu / len(measured):.2f} ms of CPU per booking ({1000 * wall / len(measured):.2f} ms wall);"
        f" batches of 25: fastest {batches[0]:.2f}, median {batches[len(batches) // 2]:.2f} ms"
    )


def sql_and_redis(book, job) -> None:
    import redis  # noqa: PLC0415
    from django.db import connection  # noqa: PLC0415
    from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.config_resetstat()
    with CaptureQueriesContext(connection) as queries:
        book(*job)
    for query in queries.captured_queries:
        print(query["sql"][:160])
    commands = {name.removeprefix("cmdstat_"): stat["calls"] for name, stat in client.info("commandstats").items() if "resetstat" not in name}
    print(f"{len(queries.captured_queries)} statements; Redis commands: {commands}")


if __name__ == "__main__":
    main()
