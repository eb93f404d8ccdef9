"""Charts of the dashboard, drawn on the server as inline SVG (no JavaScript, nothing from a CDN).

``bar_chart``/``line_chart`` turn a series (``[{"date", "value"}]``) into geometry that
``templates/admin/dashboard/chart.html`` draws: bars or a line with its points, a y axis with
round ticks and an x axis with at most eight dates. Each chart has a ``<title>`` and a
``<desc>`` (what it shows and its total), each bar or point a ``<title>`` with its value, and
the numbers are also in a table under the chart, for screen readers and copying.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from django.utils.translation import gettext as _

from doctors.models import CURRENCY_EXPONENTS

WIDTH, HEIGHT = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 44
MAX_X_LABELS = 8
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "INR": "₹", "JPY": "¥"}


@dataclass
class Chart:
    id: str
    title: str
    description: str
    kind: str  # bar | line
    x_label: str
    y_label: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    top: int = TOP
    baseline: int = HEIGHT - BOTTOM
    marks: list[dict] = field(default_factory=list)  # bars: x, y, w, h; points: cx, cy; each: label, value
    path: str = ""
    y_ticks: list[dict] = field(default_factory=list)
    x_ticks: list[dict] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)


def compact(value: float) -> str:
    """1,234 → "1.2k", 3,400,000 → "3.4M": short tick labels."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            text = f"{value / limit:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return f"{value:g}" if value != int(value) else f"{int(value):,}"


def money_formatter(currency: str) -> Callable[[float], str]:
    exponent = CURRENCY_EXPONENTS.get(currency, 2)

    def fmt(minor: float) -> str:
        text = compact(minor / 10**exponent)
        symbol = SYMBOLS.get(currency)
        return f"{symbol}{text}" if symbol else f"{text} {currency}"

    return fmt


def _nice_max(value: float) -> float:
    """The top of the y axis: the smallest 1, 2, 2.5 or 5 × 10ⁿ at or above the value (4 ticks)."""
    if value <= 0:
        return 4
    step = value / 4
    magnitude = 10 ** math.floor(math.log10(step))
    for multiple in (1, 2, 2.5, 5, 10):
        if step <= multiple * magnitude:
            nice = multiple * magnitude * 4
            return nice if nice >= 4 or value > 4 else 4
    return value  # pragma: no cover


def _date_label(day: str, interval: str) -> str:
    value = date.fromisoformat(day)
    if interval == "month":
        return value.strftime("%b %Y")
    return f"{value.day} {value.strftime('%b')}"


def _chart(
    *, id: str, kind: str, title: str, description: str, points: list[dict], interval: str, y_label: str, fmt: Callable[[float], str] = compact
) -> Chart:
    chart = Chart(
        id=id,
        title=title,
        description=description,
        kind=kind,
        x_label={"day": _("Day"), "week": _("Week starting"), "month": _("Month")}[interval],
        y_label=y_label,
    )
    top = _nice_max(max((p["value"] for p in points), default=0))
    plot_w, plot_h = chart.plot_right - chart.left, chart.baseline - chart.top
    for i in range(5):
        value = top * i / 4
        chart.y_ticks.append({"y": round(chart.baseline - plot_h * i / 4, 1), "label": fmt(value)})
    n = max(len(points), 1)
    slot = plot_w / n
    every = max(1, math.ceil(n / MAX_X_LABELS))
    coords = []
    for i, point in enumerate(points):
        label = _date_label(point["date"], interval)
        height = plot_h * point["value"] / top
        x_mid = chart.left + slot * (i + 0.5)
        mark = {"label": label, "value": fmt(point["value"]), "raw": point["value"]}
        if kind == "bar":
            width = max(min(slot * 0.7, 36), 1.5)
            mark.update(x=round(x_mid - width / 2, 1), y=round(chart.baseline - height, 1), w=round(width, 1), h=round(height, 1))
        else:
            mark.update(cx=round(x_mid, 1), cy=round(chart.baseline - height, 1))
            coords.append(f"{mark['cx']},{mark['cy']}")
        chart.marks.append(mark)
        chart.table.append({"label": label, "value": mark["value"]})
        if i % every == 0:
            chart.x_ticks.append({"x": round(x_mid, 1), "label": label})
    if coords:
        chart.path = "M" + " L".join(coords)
    return chart


def bar_chart(*, id: str, title: str, series: dict, interval: str, y_label: str) -> Chart:
    description = _("%(title)s: %(total)s in the period.") % {"title": title, "total": f"{series['total']:,}"}
    return _chart(id=id, kind="bar", title=title, description=description, points=series["points"], interval=interval, y_label=y_label)


def money_chart(*, id: str, title: str, series: dict, interval: str) -> Chart:
    """A line chart of one currency's amounts (never two currencies on one axis)."""
    fmt = money_formatter(series["currency"])
    description = _("%(title)s in %(currency)s: %(amount)s in the period.") % {"title": title, "currency": series["currency"], "amount": series["display"]}
    return _chart(
        id=id,
        kind="line",
        title=f"{title} ({series['currency']})",
        description=description,
        points=series["points"],
        interval=interval,
        y_label=series["currency"],
        fmt=fmt,
    )
