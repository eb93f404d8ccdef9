"""Time the staff dashboard and the custom reports on the benchmark data set (docs/performance.md →
Dashboard). Django side only: the selectors, and the admin page rendered with its charts.

    DATABASE_URL=postgres://…/medimeet_dashboard_bench python bench/dashboard.py [--runs 5]

Prints one markdown row per case: queries, median and slowest wall time, and the slowest
statement of the last run (with its time), so a regression names its query.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medimeet.settings.local")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from accounts.models import User  # noqa: E402
from medimeet.core.dashboard import selectors, views  # noqa: E402
from medimeet.core.dashboard.periods import period_resolve  # noqa: E402

ZONE = "Asia/Kolkata"


class Recorder:
    def __init__(self):
        self.queries: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((time.perf_counter() - start, sql))


def measure(label: str, call, runs: int) -> None:
    times, recorder = [], None
    call()  # warm: plans, connection, template loading
    for _ in range(runs):
        recorder = Recorder()
        with connection.execute_wrapper(recorder):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
    slowest = max(recorder.queries)
    sql = " ".join(slowest[1].split())[:110]
    print(f"| {label} | {len(recorder.queries)} | {statistics.median(times) * 1000:,.0f} | {max(times) * 1000:,.0f} | {slowest[0] * 1000:,.0f} ms: `{sql}…` |")


def page(query: str):
    request = RequestFactory().get(f"/admin/dashboard/?{query}")
    request.user = User(email="bench-analyst@medimeet.local", is_staff=True, is_superuser=True, is_active=True, timezone=ZONE)
    request.session = {}
    response = views.dashboard(request)
    assert response.status_code == 200, response.status_code
    return response


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print("| Case | Queries | Median ms | Slowest ms | Slowest statement (last run) |\n|---|---:|---:|---:|---|")
    for name in ("today", "7d", "30d", "90d"):
        period = period_resolve(name=name, zone=ZONE)
        measure(f"dashboard numbers, {name}", lambda period=period: selectors.dashboard(period), args.runs)
    measure("admin page with charts, 30d", lambda: page("period=30d"), args.runs)
    measure("admin page with charts, 90d", lambda: page("period=90d"), args.runs)
    thirty = period_resolve(name="30d", zone=ZONE)
    for metric, group_by in (("revenue", "doctor"), ("bookings", "specialization"), ("no_show_rate", "city"), ("refunds", "gateway"), ("average_rating", "doctor")):
        measure(f"report {metric} by {group_by}, 30d", lambda metric=metric, group_by=group_by: selectors.report(metric=metric, group_by=group_by, period=thirty), args.runs)


if __name__ == "__main__":
    main()
