"""Compare local payment records with the gateway's and list mismatches.

    manage.py payments_reconcile --gateway sandbox --days 7
    manage.py payments_reconcile --gateway stripe --since 2026-11-01 --until 2026-11-08 --csv out.csv

Exit status 0 when everything agrees, 1 when there are mismatches (for cron/alerting).
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from payments.gateways import GATEWAY_NAMES, gateway_configured
from payments.gateways.base import GatewayError
from payments.selectors import reconciliation


class Command(BaseCommand):
    help = "Compare local payments with the gateway's records and list mismatches."

    def add_arguments(self, parser):
        parser.add_argument("--gateway", choices=GATEWAY_NAMES, default="sandbox")
        parser.add_argument("--days", type=int, default=1, help="The last N days (ignored with --since).")
        parser.add_argument("--since", type=lambda v: datetime.combine(datetime.strptime(v, "%Y-%m-%d").date(), time(0), tzinfo=UTC))
        parser.add_argument("--until", type=lambda v: datetime.combine(datetime.strptime(v, "%Y-%m-%d").date(), time(0), tzinfo=UTC))
        parser.add_argument("--csv", dest="csv_path", help="Also write the mismatches to this CSV file.")

    def handle(self, *args, gateway, days, since, until, csv_path, **options):
        if not gateway_configured(gateway):
            raise CommandError(f"The {gateway} gateway has no keys configured on this installation.")
        until = until or timezone.now()
        since = since or until - timedelta(days=days)
        try:
            problems = reconciliation(gateway=gateway, start=since, end=until)
        except GatewayError as exc:
            raise CommandError(f"Could not read the {gateway} ledger: {exc}") from exc
        for problem in problems:
            self.stdout.write(f"{problem['reference']}: {problem['problem']} (ours: {problem['ours'] or '—'}; gateway: {problem['theirs'] or '—'})")
        if csv_path:
            with open(csv_path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=["reference", "problem", "ours", "theirs"])
                writer.writeheader()
                writer.writerows(problems)
        summary = f"{gateway}: {len(problems)} mismatch(es) between {since:%Y-%m-%d %H:%M} and {until:%Y-%m-%d %H:%M} UTC."
        if problems:
            self.stderr.write(summary)
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(summary))
