"""The period a dashboard or report covers, in the time zone of the staff member looking.

"Today" and "the last 7 days" start at midnight where the staff member is (their account's
time zone), so a day in a chart is the day they lived, not a UTC day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from medimeet.core.errors import ApplicationError

PERIODS = ("today", "7d", "30d", "90d", "custom")
INTERVALS = ("day", "week", "month")
LENGTHS = {"today": 1, "7d": 7, "30d": 30, "90d": 90}
MAX_CUSTOM_DAYS = 731


@dataclass(frozen=True)
class Period:
    name: str
    first_day: date  # local dates, both included
    last_day: date
    interval: str  # how series are bucketed: day, week or month
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(0), tzinfo=self.zone)

    @property
    def end(self) -> datetime:
        """Exclusive: midnight after the last day."""
        return datetime.combine(self.last_day + timedelta(days=1), time(0), tzinfo=self.zone)

    def buckets(self) -> list[date]:
        """The first local day of every bucket of the period, in order (what Trunc* returns)."""
        first = bucket_of(self.first_day, self.interval)
        out, day = [], first
        while day <= self.last_day:
            out.append(day)
            if self.interval == "day":
                day += timedelta(days=1)
            elif self.interval == "week":
                day += timedelta(days=7)
            else:
                day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        return out

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "from": self.first_day.isoformat(),
            "to": self.last_day.isoformat(),
            "interval": self.interval,
            "time_zone": self.zone.key,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


def bucket_of(day: date, interval: str) -> date:
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def _default_interval(days: int) -> str:
    return "day" if days <= 31 else "week" if days <= 180 else "month"


def _parse_day(value, field: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ApplicationError("DASH_002", fields={field: ["Enter a date as YYYY-MM-DD."]}) from None


def period_resolve(*, name: str | None, zone: ZoneInfo | str, first=None, last=None, interval: str | None = None, today: date | None = None) -> Period:
    """The period asked for. Raises DASH_001 (unknown period), DASH_002 (custom dates missing,
    malformed, reversed or longer than two years) or DASH_003 (unknown interval)."""
    zone = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    name = name or "30d"
    if name not in PERIODS:
        raise ApplicationError("DASH_001", fields={"period": [f"Choose one of: {', '.join(PERIODS)}."]})
    if interval not in (None, "") and interval not in INTERVALS:
        raise ApplicationError("DASH_003", fields={"interval": [f"Choose one of: {', '.join(INTERVALS)}."]})
    today = today or timezone.localdate(timezone=zone)
    if name == "custom":
        missing = {field: ["Required for a custom period."] for field, value in (("from", first), ("to", last)) if value in (None, "")}
        if missing:
            raise ApplicationError("DASH_002", fields=missing)
        first_day, last_day = _parse_day(first, "from"), _parse_day(last, "to")
        if last_day < first_day:
            raise ApplicationError("DASH_002", fields={"to": ["The end date is before the start date."]})
        if (last_day - first_day).days + 1 > MAX_CUSTOM_DAYS:
            raise ApplicationError("DASH_002", fields={"to": [f"A period is at most {MAX_CUSTOM_DAYS} days."]})
    else:
        first_day, last_day = today - timedelta(days=LENGTHS[name] - 1), today
    return Period(name, first_day, last_day, interval or _default_interval((last_day - first_day).days + 1), zone)


def staff_zone(user) -> ZoneInfo:
    """The staff member's own time zone (their account's), the platform's when unset."""
    try:
        return ZoneInfo(getattr(user, "timezone", "") or timezone.get_default_timezone_name())
    except (ValueError, KeyError):
        return ZoneInfo(timezone.get_default_timezone_name())
