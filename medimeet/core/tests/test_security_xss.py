"""XSS: text people write is escaped wherever a page shows it, and the pages' Content-Security-
Policy forbids inline scripts (the nonce'd ones aside), so a missed escape would still not run.

The payload is stored straight in the database (as a bug in any input path could let it through)
in names, a doctor's bio, a reason for the visit, a clinical note, a review and its reply, a
record entry, a chat message and an announcement; then every page that shows them is rendered
for the person who sees it.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from appointments.models import Appointment
from consultations.models import Participation
from consultations.services import chat_post
from doctors.models import DoctorProfile
from medimeet.core.models import Announcement
from records.services import entry_create
from reviews.models import Review

from .security import victim_world

pytestmark = pytest.mark.django_db

PAYLOAD = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
RAW = ("<script>alert(1)", "<img src=x onerror", "onerror=alert(1)>")
ESCAPED = ("&lt;script&gt;alert(1)&lt;/script&gt;", "\\u003Cscript\\u003Ealert(1)")


@pytest.fixture
def poisoned():
    world = victim_world()
    patient, doctor = world["patient"], world["doctor"]
    User.objects.filter(pk__in=[patient.pk, doctor.user_id]).update(first_name=PAYLOAD)
    DoctorProfile.objects.filter(pk=doctor.pk).update(bio=PAYLOAD)
    Appointment.objects.filter(pk__in=[world["upcoming"].pk, world["visit"].pk]).update(reason=PAYLOAD)
    Review.objects.filter(pk=world["review"].pk).update(text=PAYLOAD, reply_text=PAYLOAD, replied_at=timezone.now())
    note = world["visit"].clinical_note
    note.text = PAYLOAD
    note.save()
    entry_create(by=patient, patient=patient, category="allergy", payload={"substance": PAYLOAD, "severity": "mild", "reaction": PAYLOAD})
    chat_post(participation=Participation.objects.get(consultation=world["consultation"], user=patient), body=PAYLOAD)
    Announcement.objects.create(kind="service", title=PAYLOAD, body=PAYLOAD, starts_at=timezone.now())
    return world


def pages(world):
    """(who, url, whether the payload must be shown there): the pages that show each text."""
    patient, doctor = world["patient"], world["doctor"].user
    return [
        (world["patient_b"], reverse("doctors:detail", kwargs={"slug": world["doctor"].slug}), True),  # name, bio, review, reply
        (world["patient_b"], reverse("doctors:search") if _has("doctors:search") else "/doctors/", True),  # search card: name
        (patient, reverse("appointments:detail", kwargs={"appointment_id": world["upcoming"].public_id}), True),
        (doctor, reverse("appointments:detail", kwargs={"appointment_id": world["upcoming"].public_id}), True),  # patient's name, reason
        (patient, reverse("appointments:list"), True),
        (doctor, reverse("appointments:detail", kwargs={"appointment_id": world["visit"].public_id}), True),  # clinical note
        (patient, reverse("records:mine"), True),
        (doctor, reverse("records:patient", kwargs={"patient_id": patient.public_id}), True),
        (patient, reverse("consultations:room", kwargs={"room": world["consultation"].room}), True),
        (patient, reverse("home"), True),  # the announcement banner
        (patient, reverse("notifications:history"), False),
    ]


def _has(name: str) -> bool:
    from django.urls import NoReverseMatch

    try:
        reverse(name)
    except NoReverseMatch:
        return False
    return True


def test_user_text_is_escaped_on_every_page_that_shows_it(poisoned):
    problems = []
    for who, url, shown in pages(poisoned):
        client = Client()
        client.force_login(who)
        response = client.get(url, follow=True)
        html = response.content.decode()
        if response.status_code != 200:
            problems.append(f"{url}: {response.status_code}")
            continue
        if raw := [r for r in RAW if r in html]:
            problems.append(f"{url}: raw {raw}")
        if shown and not any(e in html for e in ESCAPED):
            problems.append(f"{url}: the text is not shown at all (the test would prove nothing)")
    assert problems == [], "\n".join(problems)


def test_the_pages_content_security_policy_forbids_inline_scripts(poisoned):
    for who, url, _ in pages(poisoned):
        client = Client()
        client.force_login(who)
        response = client.get(url, follow=True)
        policy = response["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]+)", policy).group(1).split()
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, (url, policy)
        assert "'self'" in script_src, (url, policy)
        # django-csp adds the nonce to the header only on pages that use it.
        nonce = next((s[len("'nonce-") : -1] for s in script_src if s.startswith("'nonce-")), None)
        for tag in re.findall(r"<script\b[^>]*>", response.content.decode()):
            assert "src=" in tag or (nonce and f'nonce="{nonce}"' in tag), (url, tag)
        assert "object-src 'none'" in policy and "base-uri 'self'" in policy and "frame-ancestors 'none'" in policy
