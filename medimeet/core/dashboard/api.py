"""``GET /api/v1/admin/dashboard/`` and ``GET /api/v1/admin/reports/``: the dashboard's numbers
and the custom reports as JSON (or CSV), for staff with ``core.view_dashboard``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from medimeet.core.api import error_responses, staff_permission
from medimeet.core.errors import ApplicationError

from . import selectors
from .periods import INTERVALS, PERIODS, period_resolve, staff_zone
from .views import PERMISSION, report_csv_response

TAGS = ["admin"]


CanViewDashboard = staff_permission(PERMISSION)


PERIOD_PARAMETERS = [
    OpenApiParameter(
        "period", str, enum=list(PERIODS), description="today, the last 7/30/90 days (ending today) or custom (default 30d), in the staff member's time zone"
    ),
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day of a custom period (YYYY-MM-DD)"),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last day of a custom period, included (at most 731 days)"),
    OpenApiParameter("interval", str, enum=list(INTERVALS), description="Buckets of the series (default: day up to 31 days, week up to 180, else month)"),
]


def _period(request):
    params = request.query_params
    return period_resolve(
        name=params.get("period"), zone=staff_zone(request.user), first=params.get("from"), last=params.get("to"), interval=params.get("interval")
    )


# --- Output serializers (documentation of the answers) ---------------------------------------


class DashPeriodOutput(serializers.Serializer):
    name = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="Exclusive")
    interval = serializers.CharField()
    time_zone = serializers.CharField()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField()
        fields["to"] = serializers.DateField()
        return fields


class DashPointOutput(serializers.Serializer):
    date = serializers.DateField(help_text="First local day of the bucket")
    value = serializers.IntegerField()


class DashSeriesOutput(serializers.Serializer):
    total = serializers.IntegerField()
    points = DashPointOutput(many=True)


class DashMoneySeriesOutput(serializers.Serializer):
    currency = serializers.CharField()
    count = serializers.IntegerField()
    amount_minor = serializers.IntegerField()
    display = serializers.CharField()
    points = DashPointOutput(many=True, help_text="Amounts in minor units")


class DashSignedInOutput(serializers.Serializer):
    web = serializers.IntegerField()
    api = serializers.IntegerField()
    total = serializers.IntegerField(help_text="People, each counted once")


class DashQueueOutput(serializers.Serializer):
    queue = serializers.CharField()
    messages = serializers.IntegerField(allow_null=True, help_text="null when the broker could not be read")


class DashFailuresOutput(serializers.Serializer):
    tasks = serializers.IntegerField()
    notifications = serializers.IntegerField()


class DashRealTimeOutput(serializers.Serializer):
    active_consultations = serializers.IntegerField()
    signed_in_users = DashSignedInOutput()
    queues = DashQueueOutput(many=True)
    failed_last_24h = DashFailuresOutput()
    webhook_failures = serializers.IntegerField()


class DashUsageOutput(serializers.Serializer):
    signups = DashSeriesOutput()
    bookings = DashSeriesOutput()
    consultations = DashSeriesOutput()
    cancellations = DashSeriesOutput()


class DashNoShowOutput(serializers.Serializer):
    no_shows = serializers.IntegerField()
    completed = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)


class DashRatingOutput(serializers.Serializer):
    reviews = serializers.IntegerField()
    average = serializers.FloatField(allow_null=True)


class DashWaitOutput(serializers.Serializer):
    doctors = serializers.IntegerField()
    average_seconds = serializers.IntegerField(allow_null=True)


class DashPerformanceOutput(serializers.Serializer):
    searches = serializers.IntegerField()
    search_to_booking = serializers.FloatField(allow_null=True, help_text="Bookings ÷ searches of the period")
    no_shows = DashNoShowOutput()
    rating = DashRatingOutput()
    wait_to_next_slot = DashWaitOutput()
    revenue = DashMoneySeriesOutput(many=True)
    refunds = DashMoneySeriesOutput(many=True)


class DashboardOutput(serializers.Serializer):
    period = DashPeriodOutput()
    generated_at = serializers.DateTimeField()
    real_time = DashRealTimeOutput()
    usage = DashUsageOutput()
    performance = DashPerformanceOutput()


class DashReportOutput(serializers.Serializer):
    metric = serializers.CharField()
    group_by = serializers.CharField()
    period = DashPeriodOutput()
    columns = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.DictField(), help_text="One object per group (and currency, for money), keyed by the columns")


# --- Views ------------------------------------------------------------------------------------


class DashboardView(APIView):
    permission_classes = [CanViewDashboard]

    @extend_schema(tags=TAGS, parameters=PERIOD_PARAMETERS, responses={200: DashboardOutput, **error_responses(400, 401, 403)})
    def get(self, request):
        """Staff with core.view_dashboard: real-time metrics, usage series and performance indicators."""
        return Response(selectors.dashboard(_period(request)))


class FormatIsOurs(DefaultContentNegotiation):
    """``format`` is the report's own parameter (csv or json), not DRF's renderer override
    (which would answer 404 for csv)."""

    class settings:
        URL_FORMAT_OVERRIDE = None


class ReportView(APIView):
    permission_classes = [CanViewDashboard]
    content_negotiation_class = FormatIsOurs

    @extend_schema(
        tags=TAGS,
        parameters=[
            OpenApiParameter("metric", str, required=True, enum=list(selectors.METRICS)),
            OpenApiParameter(
                "group_by",
                str,
                required=True,
                enum=list(selectors.GROUPINGS),
                description="doctor, specialization, city, gateway (money only) or day/week/month",
            ),
            OpenApiParameter("format", str, enum=list(selectors.FORMATS), description="json (default) or csv"),
            *PERIOD_PARAMETERS,
        ],
        responses={200: DashReportOutput, (200, "text/csv"): OpenApiTypes.STR, **error_responses(400, 401, 403)},
    )
    def get(self, request):
        """Staff with core.view_dashboard: one metric per doctor, specialization, city, gateway or period; CSV with format=csv."""
        params = request.query_params
        output = params.get("format") or "json"
        if output not in selectors.FORMATS:
            raise ApplicationError("DASH_007", fields={"format": ["Choose csv or json."]})
        selectors.report_check(metric=params.get("metric", ""), group_by=params.get("group_by", ""))
        report = selectors.report(metric=params["metric"], group_by=params["group_by"], period=_period(request))
        if output == "csv":
            return report_csv_response(report, request=request)
        return Response(report.as_dict())
