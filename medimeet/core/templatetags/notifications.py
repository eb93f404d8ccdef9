"""Template tags for messages and pages that name times and money.

Rendered by ``notify`` inside ``translation.override`` (the recipient's language) and
``timezone.override`` (the recipient's zone), so "the current zone" is the recipient's.
A time is never printed without its zone, and the other party's local time follows when
their zone differs.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django import template
from django.utils import timezone, translation
from django.utils.dateformat import format as date_format
from django.utils.translation import gettext as _

register = template.Library()

FORMATS = {"datetime": "l j F Y, H:i", "date": "l j F Y", "time": "H:i", "short": "j F, H:i"}


def zoned(value: datetime, zone: str | None = None, style: str = "datetime") -> str:
    tz = ZoneInfo(zone) if zone else timezone.get_current_timezone()
    return date_format(value.astimezone(tz), FORMATS[style])


@register.simple_tag
def zoned_time(value: datetime | None, style: str = "datetime", other_zone: str = "", other_party: str = "") -> str:
    """``Monday 2 November 2026, 14:30 (Asia/Kolkata)``, then ``(09:00 in UTC for the
    doctor)`` when ``other_zone`` differs from the current zone (with the date too when the
    other party's day is not the same)."""
    if value is None:
        return ""
    current = timezone.get_current_timezone()
    text = _("%(time)s (%(zone)s)") % {"time": zoned(value, str(current), style), "zone": str(current)}
    if other_zone and other_zone != str(current):
        same_day = value.astimezone(ZoneInfo(other_zone)).date() == value.astimezone(current).date()
        other = zoned(value, other_zone, "time" if same_day or style == "time" else "short")
        text += " " + _("(%(time)s in %(zone)s for %(party)s)") % {"time": other, "zone": other_zone, "party": other_party}
    return text


@register.filter
def money(amount_minor: int | None, currency: str) -> str:
    """Minor units as the current language writes them: ₹1,00,000.00 in Hindi, ₹100,000.00 in English."""
    from babel.numbers import format_currency

    from doctors.models import CURRENCY_EXPONENTS

    if amount_minor is None:
        return ""
    value = amount_minor / (10 ** CURRENCY_EXPONENTS.get(currency, 2))
    locale = translation.to_locale(translation.get_language() or "en")
    return format_currency(value, currency, locale="hi_IN" if locale == "hi" else locale)
