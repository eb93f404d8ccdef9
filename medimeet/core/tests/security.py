"""Shared pieces of the security tests (test_security_*.py): walking the URL patterns, and the
world of person A's objects that person B attacks.

`victim_world()` builds one of everything a patient and a doctor own: appointments, payments,
refunds, invoices, records entries, documents and grants, prescriptions, consultations with their
guests, chat and recordings, reviews with photos, notes, waitlist entries, rebooking offers, saved
cards, calendar feeds, sessions, doctor documents. Every text the owner wrote carries a marker
(`MARKERS`) so a test can tell when another person's answer leaks it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from PIL import Image

MARKERS = ("Zorawar", "Quillfeather", "zorawar.quill@example.com", "Xanthe", "Quillwort", "Quillnote", "Quillchat")


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name" as reverse() takes it
    route: str  # the pattern, e.g. "api/v1/appointments/<uuid:appointment_id>/"
    kwargs: tuple[str, ...]
    callback: object
    pattern: object = None

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/")


def url_routes(resolver=None, prefix: str = "", namespace: str = ""):
    """Every URL pattern of the project with its full route, reverse() name and kwargs."""
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from url_routes(entry, route, namespace + (f"{entry.namespace}:" if entry.namespace else ""))
        elif isinstance(entry, URLPattern):
            kwargs = tuple(entry.pattern.regex.groupindex)
            yield Route(name=namespace + (entry.name or ""), route=route, kwargs=kwargs, callback=entry.callback, pattern=entry.pattern)


def project_routes() -> list[Route]:
    """Our routes: the admin's own (Django's ModelAdmin URLs, staff-only and CSRF-protected by
    Django) and allauth's are walked by their own tests."""
    return [r for r in url_routes() if not r.route.startswith("admin/") or r.name in ("admin-dashboard", "system-health")]


DUMMY_BY_CONVERTER = {"UUIDConverter": "8a3c4c2e-2f59-4d59-9f53-0c3c8e1f0b6a", "IntConverter": "7", "SlugConverter": "some-slug", "StringConverter": "abc"}


def any_url(route: Route) -> str:
    """A URL of ``route`` with made-up values for its kwargs (enough to reach middleware and
    the view's own checks; the object need not exist)."""
    converters = getattr(route.pattern, "converters", {})
    kwargs = {name: DUMMY_BY_CONVERTER.get(type(converters[name]).__name__, "abc") if name in converters else "abc" for name in route.kwargs}
    if route.name and not route.name.endswith(":"):
        return reverse(route.name, kwargs=kwargs)
    return "/" + route.route.replace("^", "").replace("$", "")


def jpeg_bytes(size=(32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 108, 116)).save(buffer, format="JPEG")
    return buffer.getvalue()


def victim_world():
    """Person A's objects (a patient and their doctor), and two attackers who have their own:
    patient B and doctor B."""
    from accounts.models import ApiSession
    from accounts.tests.factories import UserFactory
    from appointments.models import Appointment, RebookingOffer, WaitlistEntry
    from appointments.services import calendar_feed_get, clinical_note_write, override_set
    from appointments.tests.test_booking import open_all_week
    from consultations.models import Recording
    from consultations.services import chat_post, consultation_ensure, guest_invite_create, participant_connect, recording_chunk_store
    from doctors.models import DoctorDocument
    from doctors.tests.factories import DoctorProfileFactory, ServiceFactory
    from payments.models import Payment, Plan, Refund, SavedCard
    from payments.services import invoice_issue
    from payments.subscriptions import plan_subscribe
    from records.prescriptions import prescription_issue
    from records.selectors import RecordAccess
    from records.services import document_link_create, document_upload, entry_create, grant_create
    from records.tests.samples import pdf
    from reviews.models import Review, ReviewPhoto

    now = timezone.now().replace(microsecond=0, second=0)
    patient = UserFactory(first_name="Zorawar", last_name="Quillfeather", email="zorawar.quill@example.com")
    doctor = DoctorProfileFactory(user__first_name="Xanthe", user__last_name="Quillfeather", country="IN")
    open_all_week(doctor)
    service = ServiceFactory(doctor=doctor, duration_minutes=30, price_minor=50000, currency="INR")

    def appointment(start, status):
        return Appointment.objects.create(
            doctor=doctor, patient=patient, service=service, start=start, end=start + timedelta(minutes=30), blocked_start=start,
            blocked_end=start + timedelta(minutes=30), status=status, price_minor=50000, currency="INR", reason="Quillwort rash on both arms",
        )  # fmt: skip

    upcoming = appointment((now + timedelta(days=3)).replace(hour=9, minute=0), "confirmed")
    visit = appointment((now - timedelta(days=2)).replace(hour=9, minute=0), "completed")
    consultation = consultation_ensure(appointment=upcoming)
    participation = participant_connect(consultation=consultation, role="patient", user=patient)
    chat_post(participation=participation, body="Quillchat: the rash is itchy")
    invite, _ = guest_invite_create(consultation=consultation, by=patient, name="Quillfeather Senior", relationship="family")
    recording = Recording.objects.create(consultation=consultation, started_by=participation, mime_type="video/webm", started_at=now - timedelta(minutes=5))
    recording_chunk_store(recording=recording, user=patient, seq=0, data=b"\x1a\x45\xdf\xa3 Quillchat media")
    Recording.objects.filter(pk=recording.pk).update(status=Recording.Status.COMPLETE, ended_at=now)
    recording.refresh_from_db()
    payment = Payment.objects.create(
        appointment=upcoming, patient=patient, doctor=doctor, gateway="sandbox", status=Payment.Status.SUCCEEDED, amount_minor=50000,
        currency="INR", gateway_reference="sandbox-ref-zorawar", paid_at=now, amount_received_minor=50000,
    )  # fmt: skip
    invoice_issue(payment=payment)
    refund = Refund.objects.create(payment=payment, amount_minor=1000, reason="Quillwort refund", source=Refund.Source.PATIENT, requested_by=patient)
    card = SavedCard.objects.create(user=patient, gateway="stripe", token="pm_zorawar", brand="visa", last4="4242")
    waitlist = WaitlistEntry.objects.create(patient=patient, doctor=doctor, service=service, first_day=now.date() + timedelta(days=5), last_day=now.date() + timedelta(days=9))
    offer = RebookingOffer.objects.create(appointment=upcoming, original_start=upcoming.start, expires_at=now + timedelta(days=1))
    clinical_note_write(appointment=visit, by=doctor.user, text="Quillnote: review in two weeks")
    entry = entry_create(by=patient, patient=patient, category="allergy", payload={"substance": "Quillwort pollen", "severity": "severe"})
    content = pdf("Quillwort allergy panel")
    document = document_upload(by=patient, patient=patient, file=io.BytesIO(content), size=len(content), title="Quillwort panel", original_name="quillwort.pdf")
    document_link, _ = document_link_create(document=document, access=RecordAccess(user=patient, patient=patient, basis="owner"))
    grant = grant_create(patient=patient, doctor=doctor.user, expires_at=now + timedelta(days=30), whole_record=True)
    prescription = prescription_issue(
        appointment=visit, by=doctor.user,
        content={"medicines": [{"name": "Quillwort cream", "dose": "thin layer", "route": "topical", "frequency": "twice a day", "duration": "7 days"}]},
    )  # fmt: skip
    review = Review.objects.create(
        appointment=visit, doctor=doctor, author=patient, overall=5, text="Quillfeather review: Dr. Xanthe was thorough and kind.",
        status=Review.Status.PUBLISHED, published_at=now,
    )  # fmt: skip
    photo = ReviewPhoto.objects.create(review=review, image=SimpleUploadedFile("a.jpg", jpeg_bytes(), content_type="image/jpeg"), width=32, height=24)
    document_of_doctor = DoctorDocument.objects.create(
        doctor=doctor, kind="licence", file=SimpleUploadedFile("licence.pdf", content), original_name="quillfeather-licence.pdf",
        content_type="application/pdf", size=len(content),
    )  # fmt: skip
    override_set(doctor=doctor, day=now.date() + timedelta(days=6), ranges=None, note="Quillnote day off", by=doctor.user)
    session = ApiSession.objects.create(user=patient, device_name="Zorawar's phone", expires_at=now + timedelta(days=1))
    plan = Plan.objects.create(name="Quillwort care", price_minor=200000, currency="INR", period="month", credits_per_period=4)
    subscription, plan_checkout = plan_subscribe(patient=patient, plan=plan)  # waiting for its first payment on the sandbox card page

    patient_b = UserFactory(first_name="Bhavin", last_name="Other")
    doctor_b = DoctorProfileFactory(user__first_name="Dinesh", user__last_name="Other")
    open_all_week(doctor_b)
    ServiceFactory(doctor=doctor_b)
    return {
        "patient": patient, "doctor": doctor, "service": service, "upcoming": upcoming, "visit": visit, "consultation": consultation,
        "invite": invite, "recording": recording, "payment": payment, "refund": refund, "card": card, "waitlist": waitlist,
        "offer": offer, "entry": entry, "document": document, "document_link": document_link, "grant": grant,
        "prescription": prescription, "review": review, "photo": photo, "doctor_document": document_of_doctor,
        "calendar_token": calendar_feed_get(user=patient).token, "session": session,
        "plan": plan, "subscription": subscription, "plan_reference": plan_checkout.reference,
        "patient_b": patient_b, "doctor_b": doctor_b.user,
    }  # fmt: skip


def leaked_markers(content: bytes) -> list[str]:
    text = content.decode("utf-8", "replace")
    return [marker for marker in MARKERS if re.search(re.escape(marker), text, re.IGNORECASE)]
