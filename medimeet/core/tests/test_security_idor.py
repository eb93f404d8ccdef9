"""IDOR: every URL that names an object (id, slug, token, code) refuses another person.

`OWNED` maps each such pattern to how A's object is named in it (from `victim_world()`); the walk
requests each one as patient B and as doctor B with GET and every unsafe method, and asserts a
403 or 404 (405 where the method does not exist), no marker of A's data in the body, and none of
A's rows changed. A new pattern with a kwarg that is in neither `OWNED` nor `NOT_OWNED` fails
`test_every_pattern_with_an_object_in_its_url_is_walked`: add it to one of them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse

from .security import leaked_markers, project_routes, victim_world

pytestmark = pytest.mark.django_db


OWNED = {
    # accounts
    "api-v1:auth:session-detail": lambda w: {"session_id": str(w["session"].pk)},
    "accounts:device-revoke": lambda w: {"session_id": str(w["session"].pk)},
    "api-v1:admin-users:detail": lambda w: {"user_id": str(w["patient"].public_id)},
    "api-v1:admin-users:resend-verification": lambda w: {"user_id": str(w["patient"].public_id)},
    "api-v1:admin-users:force-logout": lambda w: {"user_id": str(w["patient"].public_id)},
    "api-v1:admin-users:block": lambda w: {"user_id": str(w["patient"].public_id)},
    "api-v1:admin-users:unblock": lambda w: {"user_id": str(w["patient"].public_id)},
    # doctors
    "api-v1:doctors:doctor-me-service": lambda w: {"service_id": str(w["service"].public_id)},
    "doctors:portal-service-edit": lambda w: {"service_id": str(w["service"].public_id)},
    "doctors:document": lambda w: {"pk": w["doctor_document"].pk},
    "api-v1:doctors:admin-doctor": lambda w: {"doctor_id": str(w["doctor"].public_id)},
    "api-v1:doctors:admin-doctor-transition": lambda w: {"doctor_id": str(w["doctor"].public_id)},
    "api-v1:doctors:admin-doctor-invitation": lambda w: {"doctor_id": str(w["doctor"].public_id)},
    # appointments
    "api-v1:appointments:waitlist-entry": lambda w: {"entry_id": w["waitlist"].pk},
    **{
        name: (lambda w: {"appointment_id": str(w["upcoming"].public_id)})
        for name in (
            "api-v1:appointments:appointment", "api-v1:appointments:appointment-confirm", "api-v1:appointments:appointment-cancellation",
            "api-v1:appointments:appointment-cancel", "api-v1:appointments:appointment-reschedule", "api-v1:appointments:appointment-status",
            "api-v1:appointments:appointment-calendar", "api-v1:appointments:appointment-rebooking",
            "appointments:detail", "appointments:cancel", "appointments:reschedule", "appointments:status", "appointments:rebooking",
            "payments:pay",
        )
    },  # fmt: skip
    **{
        name: (lambda w: {"appointment_id": str(w["visit"].public_id)})
        for name in (
            "api-v1:appointments:appointment-notes", "api-v1:appointments:appointment-follow-up", "api-v1:appointments:appointment-follow-up-book",
            "appointments:notes", "appointments:follow-up", "appointments:follow-up-book", "reviews:write",
            "records:prescribe", "api-v1:records:prescriptions",
        )
    },  # fmt: skip
    # payments
    "api-v1:payments:saved-card": lambda w: {"card_id": str(w["card"].public_id)},
    **{
        name: (lambda w: {"payment_id": str(w["payment"].public_id)})
        for name in ("api-v1:payments:payment", "api-v1:payments:payment-verify", "api-v1:payments:payment-receipt", "api-v1:payments:payment-refunds", "payments:receipt", "payments:return")
    },
    "payments:sandbox": lambda w: {"reference": w["payment"].gateway_reference},
    "api-v1:payments:refund-approve": lambda w: {"refund_id": str(w["refund"].public_id)},
    **{
        name: (lambda w: {"subscription_id": str(w["subscription"].public_id)})
        for name in (
            "api-v1:payments:subscription", "api-v1:payments:subscription-verify", "api-v1:payments:subscription-cancel",
            "api-v1:payments:subscription-resume", "api-v1:payments:subscription-change", "payments:plan-return", "payments:plan-cancel",
        )
    },  # fmt: skip
    "payments:plan-sandbox": lambda w: {"reference": w["plan_reference"]},
    "api-v1:payments:refund-reject": lambda w: {"refund_id": str(w["refund"].public_id)},
    # consultations
    **{
        name: (lambda w: {"room": w["consultation"].room})
        for name in (
            "api-v1:consultations:consultation", "api-v1:consultations:consultation-chat", "api-v1:consultations:consultation-guests",
            "api-v1:consultations:recordings", "consultations:room", "consultations:check",
        )
    },  # fmt: skip
    "api-v1:consultations:consultation-guest": lambda w: {"room": w["consultation"].room, "invite_id": str(w["invite"].public_id)},
    "api-v1:consultations:recording-chunk": lambda w: {"room": w["consultation"].room, "recording_id": str(w["recording"].public_id), "seq": 0},
    "api-v1:consultations:recording-finish": lambda w: {"room": w["consultation"].room, "recording_id": str(w["recording"].public_id)},
    "api-v1:consultations:recording-download": lambda w: {"recording_id": str(w["recording"].public_id)},
    "api-v1:consultations:recording-links": lambda w: {"recording_id": str(w["recording"].public_id)},
    # reviews: reading a published review is public (below); these act as its author or its doctor
    "api-v1:reviews:review": lambda w: {"review_id": str(w["review"].public_id)},
    "api-v1:reviews:review-appeal": lambda w: {"review_id": str(w["review"].public_id)},
    "api-v1:reviews:review-reply": lambda w: {"review_id": str(w["review"].public_id)},
    "reviews:appeal": lambda w: {"review_id": str(w["review"].public_id)},
    "reviews:reply": lambda w: {"review_id": str(w["review"].public_id)},
    # records
    **{
        name: (lambda w: {"patient_id": str(w["patient"].public_id)})
        for name in (
            "api-v1:records:record", "api-v1:records:entries", "api-v1:records:documents", "api-v1:records:search",
            "records:patient",
        )
    },  # fmt: skip
    **{name: (lambda w: {"entry_id": str(w["entry"].public_id)}) for name in ("api-v1:records:entry", "api-v1:records:entry-history", "records:entry-history", "records:entry-edit", "records:entry-delete")},
    **{name: (lambda w: {"document_id": str(w["document"].public_id)}) for name in ("api-v1:records:document", "api-v1:records:document-download", "api-v1:records:document-links", "records:document-download")},
    "records:document-link": lambda w: {"token": w["document_link"]},
    "api-v1:records:grant-revoke": lambda w: {"grant_id": str(w["grant"].public_id)},
    "records:grant-revoke": lambda w: {"grant_id": str(w["grant"].public_id)},
    **{
        name: (lambda w: {"prescription_id": str(w["prescription"].public_id)})
        for name in ("api-v1:records:prescription", "api-v1:records:prescription-supersede", "api-v1:records:prescription-pdf", "records:prescription-pdf")
    },
    # notifications: the staff outbox (any name: neither attacker is staff)
    "notifications:outbox-message": lambda w: {"name": "message.eml"},
}

# Patterns with an object in the URL that another person may legitimately reach, and why.
NOT_OWNED = {
    # Public pages and API: listed doctors, their free slots and booking/waitlist forms for oneself.
    "api-v1:doctors:doctor-detail": "a listed doctor's public profile",
    "doctors:detail": "a listed doctor's public profile",
    "api-v1:appointments:doctor-slots": "a listed doctor's free slots are public",
    "appointments:book": "booking a listed doctor, for oneself",
    "appointments:waitlist-join": "joining a listed doctor's waitlist, for oneself",
    "payments:plan-subscribe": "subscribing to an offered care plan, for oneself",
    "payments:plan-change": "switching one's own care plan to an offered plan",
    "api-v1:cms:cms-post": "published articles are public",
    "api-v1:cms:cms-page": "published pages are public",
    "cms:category": "public blog listing",
    "cms:tag": "public blog listing",
    "cms:post": "published articles are public",
    "cms:page": "published pages are public",
    # Reviews are public once published; flagging and voting are open to any signed-in person.
    "api-v1:reviews:review-flag": "any signed-in person may report a review",
    "api-v1:reviews:review-helpful": "any signed-in person may vote a review helpful",
    "reviews:flag": "any signed-in person may report a review",
    "reviews:helpful": "any signed-in person may vote a review helpful",
    "reviews:photo": "photos of published reviews are public (a review's photos are shown with it)",
    # Verification pages: the code printed on the document is the capability (rate limited).
    "payments:verify-receipt": "public receipt verification by printed code",
    "records:verify-prescription": "public prescription verification by printed code",
    # Tokens that are themselves the credential, sent to their holder (signed, expiring); forged
    # or other people's tokens are refused: test_a_forged_token_is_refused below.
    "appointments:calendar-feed": "the secret feed token is the credential (calendar apps cannot sign in)",
    "doctors:invitation": "the signed invitation token is the credential",
    "consultations:guest-invitation": "the guest's secret token is the credential",
    "consultations:guest-room": "a guest's room: the redeemed invitation in the guest's session is the credential",
    "consultations:recording-shared": "a signed, expiring share link made by a participant is the credential",
    "notifications:unsubscribe": "the signed unsubscribe token is the credential (one-click from an email)",
    "account_confirm_email": "allauth: the emailed key is the credential",
    "account_reset_password_from_key": "allauth: the emailed key is the credential",
    "api-v1:records:emergency-access": "break-glass: any doctor may open a record with a stated reason, audited and reviewed by compliance (records/tests/test_access.py)",
    # Not object ids.
    "api-v1:payments:webhook": "the gateway name; deliveries are authenticated by the gateway's signature",
    "appointments:override-remove": "a date, not an object: only ever the signed-in doctor's own schedule",
    "notifications:announcement-dismiss": "announcements are shown to everyone; dismissing one hides it for oneself only",
    "api-v1:notifications:announcement-dismiss": "announcements are shown to everyone; dismissing one hides it for oneself only",
}

TOKEN_ROUTES = {
    "appointments:calendar-feed": {"token": "forged-token"},
    "doctors:invitation": {"token": "forged-token"},
    "consultations:guest-invitation": {"token": "forged-token"},
    "consultations:recording-shared": {"token": "forged-token"},
    "notifications:unsubscribe": {"token": "forged-token"},
    "records:document-link": {"token": "forged-token"},
    "payments:verify-receipt": {"code": "ABCDEF0123456789"},
    "records:verify-prescription": {"code": "ABCDEF0123456789"},
}

# Bodies the owner would send, where a view checks the body before the object: with an empty body
# those answer 400 to anyone, which proves nothing about who may act.
MEDICINES = [{"name": "Cetirizine", "dose": "10 mg", "route": "oral", "frequency": "once a day", "duration": "5 days"}]
BODIES = {
    ("api-v1:records:entries", "post"): {"category": "allergy", "payload": {"substance": "Dust", "severity": "mild"}},
    ("api-v1:records:entry", "put"): {"payload": {"substance": "Dust", "severity": "mild"}},
    ("api-v1:records:entry", "delete"): {"reason": "Entered twice"},
    ("api-v1:records:document", "delete"): {"reason": "Wrong file"},
    ("api-v1:records:documents", "post"): "multipart-pdf",
    ("api-v1:records:prescriptions", "post"): {"medicines": MEDICINES},
    ("api-v1:records:prescription-supersede", "post"): {"medicines": MEDICINES},
    ("api-v1:reviews:review", "patch"): {"scores": {"overall": 1}, "text": "Changed by someone else entirely, which must never happen."},
    ("api-v1:reviews:review-appeal", "post"): {"statement": "This review was removed unfairly."},
    ("api-v1:reviews:review-reply", "put"): {"text": "A reply from someone who is not the doctor."},
    ("api-v1:payments:payment-refunds", "post"): {"reason": "Refund to me please"},
    ("api-v1:consultations:recordings", "post"): {"mime_type": "video/webm"},
}
# Reading a published review is public (the doctor's profile lists it); acting on it is not.
PUBLIC_READS = {"api-v1:reviews:review"}

# Operations that need input besides the URL (the quote's ?plan=): they find the object first,
# so for its owner a 400 about the missing input shows the URL reached a real object.
NEEDS_INPUT = {"api-v1:payments:subscription-change"}

STAFF_ONLY = {name for name in OWNED if ":admin-" in name or name.startswith("api-v1:payments:refund-")} | {"notifications:outbox-message"}

UNSAFE = ("post", "put", "patch", "delete")
REFUSED = {403, 404, 405}


def send(client, method, url, body):
    """One request; JSON bodies for the API's unsafe methods, multipart where a file is sent."""
    if body == "multipart-pdf":
        from django.core.files.uploadedfile import SimpleUploadedFile

        from records.tests.samples import pdf

        return client.post(url, {"file": SimpleUploadedFile("x.pdf", pdf(), content_type="application/pdf"), "title": "Not mine"})
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, body or {}, content_type="application/json")


def refused(route, response, url) -> bool:
    """403/404 (405 for a method the view lacks). A server-rendered page may instead redirect
    (sign-in or role gate, or back with an error message) as long as nothing changed and the
    redirect does not lead to the object."""
    if response.status_code in REFUSED:
        return True
    return not route.is_api and response.status_code in (302, 303) and urlsplit(response["Location"]).path != url


def routes_with_objects():
    return [r for r in project_routes() if r.kwargs]


def snapshot(world) -> dict:
    """Every row of A's world as the database has it now."""
    rows = {}
    for key, obj in world.items():
        if hasattr(obj, "_meta") and obj.pk is not None:
            model = apps.get_model(obj._meta.label)
            rows[key] = list(model.objects.filter(pk=obj.pk).values())
    return rows


def test_every_pattern_with_an_object_in_its_url_is_walked():
    names = {r.name for r in routes_with_objects()}
    unknown = sorted(names - set(OWNED) - set(NOT_OWNED))
    assert unknown == [], f"add these URL patterns to OWNED (how to build A's object) or NOT_OWNED (why it is public): {unknown}"
    assert sorted(set(OWNED) - names) == [], "OWNED names a pattern that no longer exists"


@pytest.mark.parametrize("attacker", ["patient_b", "doctor_b"])
def test_another_person_cannot_reach_any_object_of_someone_else(attacker):
    world = victim_world()
    client = Client()
    client.force_login(world[attacker])
    before = snapshot(world)
    failures = []
    for route in sorted(routes_with_objects(), key=lambda r: r.name):
        if route.name not in OWNED:
            continue
        url = reverse(route.name, kwargs=OWNED[route.name](world))
        for method in ("get", *UNSAFE):
            if method == "get" and route.name in PUBLIC_READS:
                continue
            response = send(client, method, url, BODIES.get((route.name, method)))
            body = b"".join(response.streaming_content) if response.streaming else response.content
            problem = []
            if not refused(route, response, url):
                problem.append(f"status {response.status_code} {response.get('Location', '')}")
            if leaked := leaked_markers(body):
                problem.append(f"leaks {leaked}")
            if method != "get" and snapshot(world) != before:
                problem.append("changed A's data")
                before = snapshot(world)
            if problem:
                failures.append(f"{method.upper()} {url} ({route.name}): {', '.join(problem)}")
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("name", sorted(TOKEN_ROUTES))
def test_a_forged_token_or_code_is_refused(name):
    world = victim_world()
    client = Client()
    client.force_login(world["patient_b"])
    response = client.get(reverse(name, kwargs=TOKEN_ROUTES[name]))
    assert response.status_code in (400, 403, 404, 410) or (response.status_code == 200 and not leaked_markers(response.content))
    assert not leaked_markers(response.content)


def test_a_document_link_made_for_the_owner_does_not_open_for_anyone_else():
    world = victim_world()
    client = Client()
    client.force_login(world["doctor"].user)  # even A's own doctor, who may read the record
    response = client.get(reverse("records:document-link", kwargs={"token": world["document_link"]}))
    assert response.status_code == 404


def test_the_walked_urls_reach_real_objects_for_their_owner():
    """The walk proves something only if A's URLs work for A: every walked URL that answers GET
    is 2xx/3xx for the patient or the doctor who own it (staff-only URLs aside)."""
    world = victim_world()
    owners = [Client(), Client()]
    owners[0].force_login(world["patient"])
    owners[1].force_login(world["doctor"].user)
    unreachable = []
    for route in sorted(routes_with_objects(), key=lambda r: r.name):
        if route.name not in OWNED or route.name in STAFF_ONLY:
            continue
        url = reverse(route.name, kwargs=OWNED[route.name](world))
        statuses = [owner.get(url).status_code for owner in owners]
        if 405 not in statuses and min(statuses) >= 400 and not (route.name in NEEDS_INPUT and 400 in statuses):
            unreachable.append(f"{url} ({route.name}): {statuses}")
    assert unreachable == [], "\n".join(unreachable)
