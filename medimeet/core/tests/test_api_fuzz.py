"""Schemathesis against the OpenAPI schema, in-process over WSGI, as every kind of user.

Where test_bad_input.py posts a fixed list of garbage to every route, this generates requests from
the schema itself (valid and invalid bodies, query strings, headers and path parameters) and
checks each answer: never a 5xx, and the status code, content type and body are the ones the
schema documents for that operation.

- The people and their data are seeded once for the test; each generated request runs in a
  savepoint that is rolled back, so one example (a logout, a cancellation) never changes what
  the next one sees.
- Requests go round the cast (anonymous, the patient, the doctor, staff of each role), each with a
  bearer token of its own (issued fresh for every request: access tokens live minutes). Half of
  them use the seeded objects' ids in the path, so operations reach real rows, not only 404s.
- ``FUZZ_MAX_EXAMPLES`` sets the examples per operation (``scripts/fuzz-api`` raises it); the
  normal suite keeps it small and derandomized so CI is stable.
"""

from __future__ import annotations

import os
from datetime import time, timedelta
from itertools import count

import pytest
import schemathesis
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation.modes import GenerationMode

from accounts.models import ApiSession
from accounts.tests.factories import UserFactory, staff_member
from accounts.tokens import tokens_issue
from appointments.models import Appointment, DoctorSchedule, WeeklyHours
from consultations.services import consultation_ensure
from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
from medimeet.core.roles import ROLES
from records.prescriptions import prescription_issue
from records.services import entry_create

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "6"))

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# Not fuzzed, and why. Everything else in the schema is.
EXCLUDED = {
    # Gateway webhooks are authenticated by the provider's signature over the raw body: without a
    # real gateway call every generated request is (rightly) refused before the handler runs;
    # payments/tests cover signed and unsigned deliveries.
    ("POST", "/api/v1/payments/webhooks/{gateway}/"),
    # The SMS provider's delivery reports, likewise signed by the provider (NTF_005).
    ("POST", "/api/v1/notifications/sms/status/"),
    # File downloads and streams: binary bodies (PDF, ICS, media) that the schema describes as
    # files, streamed from storage; their own tests check content and access.
    ("GET", "/api/v1/recordings/{recording_id}/download/"),
    ("GET", "/api/v1/records/documents/{document_id}/download/"),
    ("GET", "/api/v1/records/prescriptions/{prescription_id}/pdf/"),
    ("GET", "/api/v1/payments/{payment_id}/receipt/"),
    ("GET", "/api/v1/appointments/{appointment_id}/calendar.ics"),
    ("GET", "/api/v1/records/export/"),
    ("GET", "/api/v1/records/audit-export/"),
    # Raw recording chunks (application/octet-stream, up to megabytes each) are a stream upload
    # into object storage; consultations/tests/test_recording*.py drive it chunk by chunk.
    ("PUT", "/api/v1/consultations/{room}/recordings/{recording_id}/chunks/{seq}/"),
}
# Websockets (consultation signaling, notifications) are not HTTP operations and are not in the
# OpenAPI schema at all; consultations/tests/test_consumer*.py cover them.


@pytest.fixture
def fuzz_world(db):
    """The seeded cast: a patient with a confirmed appointment (and its room), a completed visit
    with a prescription and a record entry, a doctor with a schedule and a service, and one staff
    member in each role; a bearer token for each."""
    doctor = DoctorProfileFactory(user__timezone="Asia/Kolkata")
    schedule = DoctorSchedule.objects.create(doctor=doctor, timezone="Asia/Kolkata", min_notice_minutes=60, max_days_ahead=30)
    WeeklyHours.objects.bulk_create([WeeklyHours(schedule=schedule, weekday=d, start_time=time(9), end_time=time(17)) for d in range(7)])
    service = ServiceFactory(doctor=doctor, duration_minutes=20)
    patient = UserFactory()
    start = (timezone.now() + timedelta(days=2)).replace(microsecond=0, second=0)
    appointment = Appointment.objects.create(
        doctor=doctor, patient=patient, service=service, start=start, end=start + timedelta(minutes=20),
        blocked_start=start, blocked_end=start + timedelta(minutes=20), status="confirmed",
        price_minor=service.price_minor, currency=service.currency,
    )  # fmt: skip
    consultation = consultation_ensure(appointment=appointment)
    visit_start = start - timedelta(days=4)  # a completed visit two days ago, with its prescription
    visit = Appointment.objects.create(
        doctor=doctor, patient=patient, service=service, start=visit_start, end=visit_start + timedelta(minutes=20),
        blocked_start=visit_start, blocked_end=visit_start + timedelta(minutes=20), status="completed",
        price_minor=service.price_minor, currency=service.currency,
    )  # fmt: skip
    prescription = prescription_issue(appointment=visit, by=doctor.user, content={"medicines": [{"name": "Paracetamol", "dose": "500 mg", "route": "oral", "frequency": "twice a day", "duration": "3 days"}]})
    entry = entry_create(by=patient, patient=patient, category="allergy", payload={"substance": "Penicillin", "severity": "severe"})
    people = {"patient": patient, "doctor": doctor.user} | {f"staff:{role}": staff_member(role) for role in ROLES}
    sessions = [ApiSession.objects.create(user=user, device_name="fuzz", expires_at=timezone.now() + timedelta(days=1)) for user in people.values()]
    path_ids = {
        "appointment_id": str(appointment.public_id),
        "room": consultation.room,
        "slug": doctor.slug,
        "service_id": str(service.public_id),
        "patient_id": str(patient.public_id),
        "user_id": str(patient.public_id),
        "doctor_id": str(doctor.public_id),
        "prescription_id": str(prescription.public_id),
        "entry_id": str(entry.public_id),
    }
    return {"sessions": [None, *sessions], "path_ids": path_ids}


@pytest.fixture
def wsgi_app():
    """Django's WSGI handler, minus the per-request connection clean-up: the test's transaction
    must survive each request (Django's own test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(wsgi_app, fuzz_world):
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", wsgi_app)
    excluded = [f"{method} {path}" for method, path in EXCLUDED]
    return schema.exclude(func=lambda ctx: f"{ctx.operation.method.upper()} {ctx.operation.path}" in excluded)


FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the same examples on every run, so CI is stable
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_api_answers_every_generated_request_as_documented(api_schema, fuzz_world):
    # schemathesis' own pytest integration (from_fixture + parametrize) needs a pytest older than
    # 9.2 (it sets Function._nodeid), so each operation gets a Hypothesis test of its own here,
    # over valid and invalid data, and the failures of every operation are reported together.
    turns = count()
    failures: list[str] = []

    def send(case) -> None:
        turn = next(turns)
        session = fuzz_world["sessions"][turn % len(fuzz_world["sessions"])]
        # A fresh access token each time: they live minutes, a long run (scripts/fuzz-api) longer.
        headers = {"Authorization": f"Bearer {tokens_issue(session=session)['access']}"} if session else {}
        if case.path_parameters and turn % 2 == 0:
            for name in case.path_parameters:
                if name in fuzz_world["path_ids"]:
                    case.path_parameters[name] = fuzz_world["path_ids"][name]
        cache.clear()  # throttles and lockouts from earlier examples would hide the handler's own answer
        with transaction.atomic():
            try:
                response = case.call(headers=headers)
            finally:
                transaction.set_rollback(True)
        case.validate_response(response, checks=CHECKS, headers=headers)

    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 100
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = FUZZ_SETTINGS(given(case=operation.as_strategy(generation_mode=mode))(send))
            try:
                run()
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE, operation.label  # nothing in it can be invalid (no parameters, no body)
            except (Exception, BaseExceptionGroup) as exc:  # collected, reported together below
                failures.append(f"{operation.label} ({mode}):\n{str(exc)[:2000]}")
    assert not failures, f"{len(failures)} failing operation(s):\n\n" + "\n\n".join(failures)
