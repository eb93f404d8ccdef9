"""Every number of the staff dashboard and the custom reports, defined once.

The admin page (``views``) and the API (``api``) both read from here. Each metric is one
aggregate query in the database (``Count``/``Sum``/``Avg``, grouped by ``Trunc*`` in the staff
member's time zone or by a key), so the cost does not grow with the number of rows Python sees
and the number of queries is the same whatever the data. Money is summed per currency: INR and
USD are never added together, refunds likewise.

Definitions (also in docs/architecture.md → Staff dashboard):

- sign-ups: patient and doctor accounts created in the period (``date_joined``);
- bookings: appointments created in the period that went past a hold (every status except
  ``held`` and ``expired``: waiting for payment, confirmed, in progress, completed, no-show,
  cancelled);
- consultations: video consultations that started (both parties in the room) in the period;
- cancellations: appointments cancelled in the period (``cancelled_at``), whoever cancelled;
- no-show rate: no-shows ÷ (completed + no-shows) among appointments that started in the period;
- average rating: published reviews written in the period, their ``overall`` score;
- revenue: payments that succeeded in the period (``paid_at``), gross, per currency;
- refunds: refunds that succeeded in the period (``processed_at``), per the payment's currency;
- searches: doctor searches (page and API, first page of results) counted in
  ``doctors.SearchTally``; conversion = bookings ÷ searches of the same period;
- average wait to the next free slot: over listed doctors whose denormalised
  ``next_available_at`` is still ahead, the mean of (``next_available_at`` − now).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db.models import Avg, Count, DateTimeField, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Concat, TruncDay, TruncMonth, TruncWeek
from django.utils import timezone

from .periods import Period

TRUNC = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}
GROUPINGS = ("doctor", "specialization", "city", "gateway", "day", "week", "month")
FORMATS = ("json", "csv")


@dataclass(frozen=True)
class Source:
    """Where one metric's rows come from: the model's rows that count, the instant that places
    them in a period, the path to their doctor and (for money) gateway, currency and amount."""

    label: str
    kind: str  # count | money | rate | average
    queryset: Callable[[], QuerySet]
    when: str
    doctor: str | None = None
    gateway: str | None = None
    currency: str | None = None
    amount: str | None = None

    def in_period(self, period: Period) -> QuerySet:
        return self.queryset().filter(**{f"{self.when}__gte": period.start, f"{self.when}__lt": period.end})

    def groupings(self) -> tuple[str, ...]:
        return tuple(g for g in GROUPINGS if (g != "gateway" or self.gateway) and (g not in ("doctor", "specialization", "city") or self.doctor))


def _signups() -> QuerySet:
    from accounts.models import User

    return User.objects.filter(role__in=[User.Role.PATIENT, User.Role.DOCTOR])


def _bookings() -> QuerySet:
    from appointments.models import Appointment

    return Appointment.objects.exclude(status__in=[Appointment.Status.HELD, Appointment.Status.EXPIRED])


def _consultations() -> QuerySet:
    from consultations.models import Consultation

    return Consultation.objects.filter(started_at__isnull=False)


def _cancellations() -> QuerySet:
    from appointments.models import Appointment

    return Appointment.objects.filter(status=Appointment.Status.CANCELLED)


def _attendance() -> QuerySet:
    from appointments.models import Appointment

    return Appointment.objects.filter(status__in=[Appointment.Status.COMPLETED, Appointment.Status.NO_SHOW])


def _revenue() -> QuerySet:
    from payments.models import Payment

    return Payment.objects.filter(status=Payment.Status.SUCCEEDED)


def _refunds() -> QuerySet:
    from payments.models import Refund

    return Refund.objects.filter(status=Refund.Status.SUCCEEDED)


def _reviews() -> QuerySet:
    from reviews.models import Review

    return Review.objects.filter(status=Review.Status.PUBLISHED)


SOURCES: dict[str, Source] = {
    "signups": Source("Sign-ups", "count", _signups, "date_joined"),
    "bookings": Source("Bookings", "count", _bookings, "created_at", doctor="doctor"),
    "consultations": Source("Consultations", "count", _consultations, "started_at", doctor="appointment__doctor"),
    "cancellations": Source("Cancellations", "count", _cancellations, "cancelled_at", doctor="doctor"),
    "no_show_rate": Source("No-show rate", "rate", _attendance, "start", doctor="doctor"),
    "revenue": Source("Revenue", "money", _revenue, "paid_at", doctor="doctor", gateway="gateway", currency="currency", amount="amount_minor"),
    "refunds": Source(
        "Refunds", "money", _refunds, "processed_at", doctor="payment__doctor", gateway="payment__gateway", currency="payment__currency", amount="amount_minor"
    ),
    "average_rating": Source("Average rating", "average", _reviews, "created_at", doctor="doctor"),
}
METRICS = tuple(SOURCES)


# --- Series: one number per day/week/month of the period --------------------------------------


def _local_day(value: datetime | date, period: Period) -> date:
    return value.astimezone(period.zone).date() if isinstance(value, datetime) else value


def _count_series(source: Source, period: Period) -> dict:
    rows = source.in_period(period).annotate(bucket=TRUNC[period.interval](source.when, tzinfo=period.zone)).values("bucket").annotate(n=Count("pk")).order_by()
    counts = {_local_day(row["bucket"], period): row["n"] for row in rows}
    points = [{"date": day.isoformat(), "value": counts.get(day, 0)} for day in period.buckets()]
    return {"total": sum(counts.values()), "points": points}


def _money_series(source: Source, period: Period) -> list[dict]:
    from doctors.models import format_money

    rows = (
        source.in_period(period)
        .annotate(bucket=TRUNC[period.interval](source.when, tzinfo=period.zone), money_currency=F(source.currency))
        .values("money_currency", "bucket")
        .annotate(n=Count("pk"), amount=Sum(source.amount))
        .order_by()
    )
    by_currency: dict[str, dict[date, tuple[int, int]]] = {}
    for row in rows:  # one row per currency and bucket, not per payment
        by_currency.setdefault(row["money_currency"], {})[_local_day(row["bucket"], period)] = (row["n"], row["amount"])
    out = []
    for currency in sorted(by_currency):
        buckets = by_currency[currency]
        total = sum(amount for _, amount in buckets.values())
        out.append(
            {
                "currency": currency,
                "count": sum(n for n, _ in buckets.values()),
                "amount_minor": total,
                "display": format_money(total, currency),
                "points": [{"date": day.isoformat(), "value": buckets.get(day, (0, 0))[1]} for day in period.buckets()],
            }
        )
    return out


def signups(period: Period) -> dict:
    return _count_series(SOURCES["signups"], period)


def bookings(period: Period) -> dict:
    return _count_series(SOURCES["bookings"], period)


def consultations(period: Period) -> dict:
    return _count_series(SOURCES["consultations"], period)


def cancellations(period: Period) -> dict:
    return _count_series(SOURCES["cancellations"], period)


def revenue(period: Period) -> list[dict]:
    """Gross revenue per currency: ``[{currency, count, amount_minor, display, points}]``."""
    return _money_series(SOURCES["revenue"], period)


def refunds(period: Period) -> list[dict]:
    """Refunds paid out per currency, same shape as ``revenue``."""
    return _money_series(SOURCES["refunds"], period)


# --- Performance indicators -------------------------------------------------------------------


def searches(period: Period) -> int:
    from doctors.models import SearchTally

    return SearchTally.objects.filter(bucket__gte=period.start, bucket__lt=period.end).aggregate(n=Coalesce(Sum("count"), 0))["n"]


def search_conversion(*, bookings_total: int, searches_total: int) -> float | None:
    """Bookings per search in the period, as a fraction (None without searches)."""
    return round(bookings_total / searches_total, 4) if searches_total else None


def no_show_rate(period: Period) -> dict:
    from appointments.models import Appointment

    counts = (
        SOURCES["no_show_rate"]
        .in_period(period)
        .aggregate(no_shows=Count("pk", filter=Q(status=Appointment.Status.NO_SHOW)), completed=Count("pk", filter=Q(status=Appointment.Status.COMPLETED)))
    )
    return {**counts, "rate": _rate(counts["no_shows"], counts["completed"])}


def _rate(no_shows: int, completed: int) -> float | None:
    return round(no_shows / (no_shows + completed), 4) if no_shows + completed else None


def average_rating(period: Period) -> dict:
    row = SOURCES["average_rating"].in_period(period).aggregate(reviews=Count("pk"), average=Avg("overall"))
    return {"reviews": row["reviews"], "average": round(row["average"], 2) if row["average"] is not None else None}


def average_wait_to_next_slot(*, now: datetime | None = None) -> dict:
    """Over listed doctors with a free slot ahead: how long, on average, until the first one."""
    from doctors.models import DoctorProfile

    now = now or timezone.now()
    wait = ExpressionWrapper(F("next_available_at") - Value(now, output_field=DateTimeField()), output_field=DurationField())
    row = DoctorProfile.objects.listed().filter(next_available_at__gte=now).aggregate(doctors=Count("pk"), average=Avg(wait))
    average = row["average"]
    if average is not None and not isinstance(average, timedelta):  # SQLite answers in microseconds
        average = timedelta(microseconds=average)
    return {"doctors": row["doctors"], "average_seconds": round(average.total_seconds()) if average is not None else None}


# --- Real time ------------------------------------------------------------------------------


def active_consultations() -> int:
    """Video consultations in progress now (doctor and patient both joined, not ended)."""
    from consultations.models import Consultation

    return Consultation.objects.filter(status=Consultation.Status.LIVE).count()


def signed_in_users(*, now: datetime | None = None) -> dict:
    """People signed in now, each counted once however many devices: on the web, an unexpired
    Django session (allauth's ``UserSession`` names its user) seen within the idle timeout
    after which the session policy signs them out; on the API, an ``ApiSession`` neither
    revoked nor expired."""
    from allauth.usersessions.models import UserSession

    from accounts.models import ApiSession

    now = now or timezone.now()
    live = Session.objects.filter(session_key=OuterRef("session_key"), expire_date__gt=now)
    web = UserSession.objects.filter(Exists(live), last_seen_at__gte=now - timedelta(seconds=settings.SESSION_IDLE_TIMEOUT)).values("user_id").order_by()
    api = ApiSession.objects.filter(revoked_at__isnull=True, expires_at__gt=now).values("user_id").order_by()
    return {"web": web.distinct().count(), "api": api.distinct().count(), "total": web.union(api).count()}


def queue_lengths() -> list[dict]:
    """Messages waiting in each Celery queue: LLEN of the queue's list on the Redis broker,
    the files waiting in the queue folder of the embedded filesystem broker. ``messages`` is
    None when the broker cannot be read (the page says so instead of failing)."""
    from medimeet.celery import app

    queues = [app.conf.task_default_queue]
    broker = settings.CELERY_BROKER_URL
    out = []
    for queue in queues:
        try:
            if broker.startswith(("redis://", "rediss://")):
                messages = _redis_client(broker).llen(queue)
            elif broker.startswith("filesystem://"):
                folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
                with os.scandir(folder) as entries:
                    messages = sum(1 for entry in entries if entry.name.endswith(f".{queue}.msg"))
            else:
                messages = None
        except Exception:  # an unreachable broker is a reading of its own, not a broken page
            messages = None
        out.append({"queue": queue, "messages": messages})
    return out


_redis_clients: dict[str, Any] = {}


def _redis_client(url: str):
    """The cache's Redis client when the broker is the same server and database (the usual
    set-up, one pool per process), else one client per broker URL kept for the process."""
    from django.core.cache import cache

    if url == getattr(settings, "REDIS_URL", None) and hasattr(cache, "_cache"):
        return cache._cache.get_client(write=True)
    if url not in _redis_clients:
        import redis

        _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return _redis_clients[url]


def failed_tasks(*, since: datetime) -> dict:
    """Celery tasks that failed for good since then, and notifications whose delivery failed."""
    from medimeet.core.models import FailedTask, Notification

    return {
        "tasks": FailedTask.objects.filter(failed_at__gte=since).count(),
        "notifications": Notification.objects.filter(status=Notification.Status.FAILED, created_at__gte=since).count(),
    }


def webhook_failures() -> int:
    """Gateway webhook events whose processing failed and still waits (retried by beat)."""
    from payments.models import WebhookEvent

    return WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).count()


# --- The dashboard ----------------------------------------------------------------------------

REAL_TIME_WINDOW = timedelta(hours=24)


# The period's numbers (usage and performance) are aggregates over up to 731 days of bookings and
# payments: kept for a minute per period, zone and interval, so staff reloading the page or
# clicking between periods do not re-aggregate. The real-time block is always computed fresh.
HISTORY_CACHE_SECONDS = 60


def _history(period: Period, *, now: datetime) -> dict:
    usage = {"signups": signups(period), "bookings": bookings(period), "consultations": consultations(period), "cancellations": cancellations(period)}
    searches_total = searches(period)
    return {
        "usage": usage,
        "performance": {
            "searches": searches_total,
            "search_to_booking": search_conversion(bookings_total=usage["bookings"]["total"], searches_total=searches_total),
            "no_shows": no_show_rate(period),
            "rating": average_rating(period),
            "wait_to_next_slot": average_wait_to_next_slot(now=now),
            "revenue": revenue(period),
            "refunds": refunds(period),
        },
    }


def dashboard(period: Period, *, now: datetime | None = None, fresh: bool = False) -> dict:
    """Everything the dashboard shows, for the period: a fixed number of queries (none for the
    period's numbers when they were computed in the last minute, unless ``fresh``)."""
    from django.core.cache import cache

    now = now or timezone.now()
    key = f"dashboard:history:{period.name}:{period.first_day}:{period.last_day}:{period.interval}:{period.zone.key}"
    history = None if fresh else cache.get(key)
    if history is None:
        history = _history(period, now=now)
        cache.set(key, history, HISTORY_CACHE_SECONDS)
    return {
        "period": period.as_dict(),
        "generated_at": now.isoformat(),
        "real_time": {
            "active_consultations": active_consultations(),
            "signed_in_users": signed_in_users(now=now),
            "queues": queue_lengths(),
            "failed_last_24h": failed_tasks(since=now - REAL_TIME_WINDOW),
            "webhook_failures": webhook_failures(),
        },
        **history,
    }


# --- Custom reports ---------------------------------------------------------------------------


@dataclass
class Report:
    metric: str
    group_by: str
    period: Period
    columns: list[str]
    rows: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"metric": self.metric, "group_by": self.group_by, "period": self.period.as_dict(), "columns": self.columns, "rows": self.rows}

    def table(self) -> list[list]:
        return [[row[column] for column in self.columns] for row in self.rows]


VALUE_COLUMNS = {
    "count": ["count"],
    "money": ["currency", "count", "amount_minor", "amount"],
    "rate": ["no_shows", "completed", "no_show_rate"],
    "average": ["reviews", "average_rating"],
}


def report_check(*, metric: str, group_by: str) -> Source:
    """The metric's source, or DASH_004 (unknown metric), DASH_005 (unknown grouping),
    DASH_006 (a grouping the metric has not got, e.g. sign-ups by doctor)."""
    from medimeet.core.errors import ApplicationError

    if metric not in SOURCES:
        raise ApplicationError("DASH_004", fields={"metric": [f"Choose one of: {', '.join(METRICS)}."]})
    if group_by not in GROUPINGS:
        raise ApplicationError("DASH_005", fields={"group_by": [f"Choose one of: {', '.join(GROUPINGS)}."]})
    source = SOURCES[metric]
    if group_by not in source.groupings():
        raise ApplicationError("DASH_006", fields={"group_by": [f"{source.label} can be grouped by: {', '.join(source.groupings())}."]})
    return source


def report(*, metric: str, group_by: str, period: Period) -> Report:
    """One row per group (and currency, for money), aggregated in one query."""
    from appointments.models import Appointment
    from doctors.models import format_money

    source = report_check(metric=metric, group_by=group_by)
    queryset = source.in_period(period)
    doctor = source.doctor
    keys: dict[str, Any]
    if group_by in TRUNC:
        keys = {"group_key": TRUNC[group_by](source.when, tzinfo=period.zone)}
    elif group_by == "doctor":
        keys = {"group_key": F(f"{doctor}__slug"), "group_name": Concat(f"{doctor}__user__first_name", Value(" "), f"{doctor}__user__last_name")}
    elif group_by == "specialization":
        keys = {"group_key": F(f"{doctor}__primary_specialization__name")}
    elif group_by == "city":
        keys = {"group_key": F(f"{doctor}__city")}
    else:
        keys = {"group_key": F(source.gateway)}
    if source.kind == "money":
        keys["money_currency"] = F(source.currency)
    aggregates = {
        "count": {"count": Count("pk")},
        "money": {"count": Count("pk"), "amount_minor": Sum(source.amount)},
        "rate": {"no_shows": Count("pk", filter=Q(status=Appointment.Status.NO_SHOW)), "completed": Count("pk", filter=Q(status=Appointment.Status.COMPLETED))},
        "average": {"reviews": Count("pk"), "average_rating": Avg("overall")},
    }[source.kind]
    order = {"count": ["-count"], "money": ["money_currency", "-amount_minor"], "rate": ["-no_shows"], "average": ["-average_rating"]}[source.kind]
    rows = queryset.annotate(**keys).values(*keys).annotate(**aggregates).order_by(*(["group_key"] if group_by in TRUNC else order), "group_key")
    group_columns = [group_by, "doctor_name"] if group_by == "doctor" else [group_by]
    out = []
    for row in rows:  # one row per group, already aggregated
        key = row.pop("group_key")
        line = {group_by: _local_day(key, period).isoformat() if group_by in TRUNC else (key or "")}
        if group_by == "doctor":
            line["doctor_name"] = row.pop("group_name").strip()
        if source.kind == "money":
            currency = row.pop("money_currency")
            line.update(currency=currency, count=row["count"], amount_minor=row["amount_minor"], amount=format_money(row["amount_minor"], currency))
        elif source.kind == "rate":
            line.update(row, no_show_rate=_rate(row["no_shows"], row["completed"]))
        elif source.kind == "average":
            line.update(reviews=row["reviews"], average_rating=round(row["average_rating"], 2))
        else:
            line.update(row)
        out.append(line)
    return Report(metric, group_by, period, group_columns + VALUE_COLUMNS[source.kind], out)
