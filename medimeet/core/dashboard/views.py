"""The staff dashboard page inside the admin site (``/admin/dashboard/``), with the custom
report and its CSV download on the same page. Staff with ``core.view_dashboard`` only."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from medimeet.core.audit import audit_record
from medimeet.core.errors import ApplicationError, form_add_service_errors
from medimeet.core.spreadsheets import csv_lines

from . import charts, selectors
from .periods import INTERVALS, period_resolve, staff_zone

PERMISSION = "core.view_dashboard"
REPORT_TABLE_ROWS = 200  # the page shows the first rows; the CSV has them all

PERIOD_CHOICES = [("today", _("Today")), ("7d", _("Last 7 days")), ("30d", _("Last 30 days")), ("90d", _("Last 90 days")), ("custom", _("Custom dates"))]
METRIC_CHOICES = [("", _("Choose a metric"))] + [(key, _(source.label)) for key, source in selectors.SOURCES.items()]
GROUP_CHOICES = [
    ("doctor", _("Doctor")),
    ("specialization", _("Specialization")),
    ("city", _("City")),
    ("gateway", _("Payment gateway")),
    ("day", _("Day")),
    ("week", _("Week")),
    ("month", _("Month")),
]


class DashboardForm(forms.Form):
    period = forms.ChoiceField(label=_("Period"), choices=PERIOD_CHOICES, required=False, initial="30d")
    interval = forms.ChoiceField(label=_("Chart by"), choices=[("", _("Automatic"))] + [(i, _(i.capitalize())) for i in INTERVALS], required=False)
    metric = forms.ChoiceField(label=_("Metric"), choices=METRIC_CHOICES, required=False)
    group_by = forms.ChoiceField(label=_("Group by"), choices=GROUP_CHOICES, required=False)


# "from" and "to" are the API's names too; they are Python keywords, so not class attributes.
DashboardForm.base_fields["from"] = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
DashboardForm.base_fields["to"] = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))


def report_csv_response(report: selectors.Report, *, request: HttpRequest) -> StreamingHttpResponse:
    """The report as CSV (header row, formula-looking cells defused), its download audited."""
    audit_record(
        action="dashboard.report_export",
        actor=request.user,
        request=request,
        metadata={"metric": report.metric, "group_by": report.group_by, **report.period.as_dict()},
    )
    period = report.period
    filename = f"medimeet-{report.metric}-by-{report.group_by}-{period.first_day}-{period.last_day}.csv"
    return StreamingHttpResponse(
        csv_lines([report.columns, *report.table()]),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def dashboard_charts(data: dict, interval: str) -> dict:
    usage = data["usage"]
    performance = data["performance"]
    return {
        "usage": [
            charts.bar_chart(id="chart-signups", title=_("Sign-ups"), series=usage["signups"], interval=interval, y_label=_("Accounts")),
            charts.bar_chart(id="chart-bookings", title=_("Bookings"), series=usage["bookings"], interval=interval, y_label=_("Bookings")),
            charts.bar_chart(id="chart-consultations", title=_("Consultations"), series=usage["consultations"], interval=interval, y_label=_("Consultations")),
            charts.bar_chart(id="chart-cancellations", title=_("Cancellations"), series=usage["cancellations"], interval=interval, y_label=_("Cancellations")),
        ],
        "revenue": [
            charts.money_chart(id=f"chart-revenue-{s['currency'].lower()}", title=_("Revenue"), series=s, interval=interval) for s in performance["revenue"]
        ],
    }


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _wait(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    hours = seconds / 3600
    return _("%(n).1f days") % {"n": hours / 24} if hours >= 48 else _("%(n).1f hours") % {"n": hours}


def dashboard_figures(data: dict) -> dict:
    """The headline numbers of the page, formatted (the API gives the raw ones)."""
    real_time, performance = data["real_time"], data["performance"]
    return {
        "conversion": _percent(performance["search_to_booking"]),
        "no_show_rate": _percent(performance["no_shows"]["rate"]),
        "rating": "—" if performance["rating"]["average"] is None else f"{performance['rating']['average']:.2f}",
        "wait": _wait(performance["wait_to_next_slot"]["average_seconds"]),
        "queued": sum(q["messages"] or 0 for q in real_time["queues"]),
        "queue_unknown": any(q["messages"] is None for q in real_time["queues"]),
        "failures": real_time["failed_last_24h"]["tasks"] + real_time["failed_last_24h"]["notifications"],
    }


def dashboard(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    form = DashboardForm(request.GET or None)
    context = {**admin.site.each_context(request), "title": _("Dashboard"), "form": form, "report": None}
    if form.is_bound and not form.is_valid():
        return render(request, "admin/dashboard/index.html", context, status=400)
    data_in = form.cleaned_data if form.is_bound else {}
    try:
        period = period_resolve(
            name=data_in.get("period"), zone=staff_zone(request.user), first=data_in.get("from"), last=data_in.get("to"), interval=data_in.get("interval")
        )
        report = None
        if data_in.get("metric"):
            report = selectors.report(metric=data_in["metric"], group_by=data_in.get("group_by") or "doctor", period=period)
    except ApplicationError as exc:
        form_add_service_errors(form, exc)
        return render(request, "admin/dashboard/index.html", context, status=400)
    if report is not None and request.GET.get("format") == "csv":
        return report_csv_response(report, request=request)
    data = selectors.dashboard(period)
    context.update(
        period=period,
        data=data,
        charts=dashboard_charts(data, period.interval),
        figures=dashboard_figures(data),
        report=report,
        report_rows=report.table()[:REPORT_TABLE_ROWS] if report else [],
        report_truncated=report is not None and len(report.rows) > REPORT_TABLE_ROWS,
        csv_query=_with(request, format="csv"),
    )
    return render(request, "admin/dashboard/index.html", context)


def _with(request: HttpRequest, **params) -> str:
    query = request.GET.copy()
    for key, value in params.items():
        query[key] = value
    return query.urlencode()


dashboard_page = admin.site.admin_view(dashboard)
