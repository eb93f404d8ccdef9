"""Recording with consent: start only with both consents in a live consultation, chunks stored
once and encrypted, downloads and signed links for the right people only (all audited), and the
retention policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import StaffFactory, UserFactory, staff_member
from consultations import services
from consultations.models import Consultation, Participation, Recording, RecordingChunk, RecordingConsent
from consultations.services import consultation_start_if_ready, participant_admit, participant_connect, recording_consent_set
from consultations.tests.test_consumer import booked
from medimeet.core import roles
from medimeet.core.crypto import decrypt_bytes
from medimeet.core.models import AuditEvent

pytestmark = pytest.mark.django_db

WEBM = "video/webm;codecs=vp8,opus"
EBML = b"\x1a\x45\xdf\xa3"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


class Room:
    """A live consultation: the doctor and the patient connected and admitted."""

    def __init__(self, *, consent: tuple[bool, bool] = (True, True)):
        self.appointment = booked()
        self.consultation = self.appointment.consultation
        self.doctor_user, self.patient_user = self.appointment.doctor.user, self.appointment.patient
        self.doctor = participant_connect(consultation=self.consultation, user=self.doctor_user, role="doctor")
        patient = participant_connect(consultation=self.consultation, user=self.patient_user, role="patient")
        self.patient = participant_admit(consultation=self.consultation, by=self.doctor, participant_id=str(patient.public_id))
        consultation_start_if_ready(consultation=self.consultation)
        for participation, given in ((self.doctor, consent[0]), (self.patient, consent[1])):
            if given:
                recording_consent_set(participation=participation, consent=True)

    @property
    def base(self) -> str:
        return f"/api/v1/consultations/{self.consultation.room}/recordings/"

    def start(self, user=None):
        return api(user or self.doctor_user).post(self.base, {"mime_type": WEBM}, format="json")

    def put(self, recording_id, seq: int, data: bytes, user=None):
        return api(user or self.doctor_user).put(f"{self.base}{recording_id}/chunks/{seq}/", data, content_type="video/webm")

    def finish(self, recording_id, user=None):
        return api(user or self.doctor_user).post(f"{self.base}{recording_id}/finish/")

    def recorded(self, *chunks: bytes) -> Recording:
        """A finished recording holding ``chunks`` in order."""
        recording_id = self.start().json()["id"]
        for seq, data in enumerate(chunks):
            assert self.put(recording_id, seq, data).status_code == 201
        assert self.finish(recording_id).status_code == 200
        return Recording.objects.get(public_id=recording_id)


def stored_files(recording_id) -> list[str]:
    directory = f"consultation-recordings/{recording_id}"
    return sorted(default_storage.listdir(directory)[1]) if default_storage.exists(directory) else []


def audit_actions(recording: Recording | None = None) -> list[str]:
    events = AuditEvent.objects.filter(action__startswith="recording.")
    if recording is not None:
        events = events.filter(target_type="consultations.recording", target_id=str(recording.pk))
    return list(events.order_by("created_at").values_list("action", flat=True))


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


# --- Starting -------------------------------------------------------------------------------


def test_start_is_refused_until_both_consent_and_nothing_is_written(django_capture_on_commit_callbacks):
    room = Room(consent=(True, False))
    audits_before = AuditEvent.objects.count()

    with django_capture_on_commit_callbacks() as callbacks:
        refused = room.start()

    assert error(refused) == (409, "CONS_012")
    assert Recording.objects.count() == 0
    assert AuditEvent.objects.count() == audits_before
    assert callbacks == []


def test_start_is_refused_before_the_consultation_is_live_and_after_it_ended():
    room = Room()
    Consultation.objects.filter(pk=room.consultation.pk).update(status=Consultation.Status.SCHEDULED)
    not_yet = room.start()
    Consultation.objects.filter(pk=room.consultation.pk).update(status=Consultation.Status.ENDED, ended_at=timezone.now())
    over = room.start()

    assert error(not_yet) == (409, "CONS_013")
    assert error(over) == (409, "CONS_013")
    assert Recording.objects.count() == 0


def test_with_both_consents_the_doctor_starts_and_the_room_is_told(monkeypatch):
    room = Room()
    sent = []
    monkeypatch.setattr(services, "group_send_on_commit", lambda group, event: sent.append((group, event())))

    response = room.start()

    body = response.json()
    recording = Recording.objects.get()
    assert response.status_code == 201
    assert body["id"] == str(recording.public_id) and body["status"] == "recording" and body["started_by"] == "doctor"
    assert body["mime_type"] == WEBM and body["bytes"] == 0 and body["chunks"] == 0 and body["download_url"] is None
    assert recording.started_by == room.doctor
    assert sent == [
        (
            f"consultation.{room.consultation.room}",
            {
                "type": "room.recording",
                "state": {
                    "consents": {"doctor": True, "patient": True},
                    "active": str(recording.public_id),
                    "started_by": str(room.doctor.public_id),
                    "started_at": recording.started_at.isoformat(),
                },
            },
        )
    ]
    assert audit_actions(recording) == ["recording.started"]


def test_only_one_recording_runs_at_a_time():
    room = Room()
    first = room.start()

    second = room.start(room.patient_user)

    assert error(second) == (409, "CONS_014")
    assert second.json()["error"]["recording"] == first.json()["id"]
    assert Recording.objects.count() == 1


@pytest.mark.parametrize(
    ("who", "expected"),
    [("other_patient", (404, "CONS_001")), ("other_doctor", (404, "CONS_001")), ("staff", (403, "CONS_011"))],
)
def test_people_outside_the_call_cannot_start_a_recording(who, expected):
    room = Room()
    outsider = {"other_patient": UserFactory, "other_doctor": lambda: booked().doctor.user, "staff": lambda: staff_member(roles.SUPPORT)}[who]()

    assert error(room.start(outsider)) == expected
    assert Recording.objects.count() == 0


def test_a_bad_media_type_is_refused_with_the_field():
    room = Room()

    response = api(room.doctor_user).post(room.base, {"mime_type": "text/html"}, format="json")

    assert error(response) == (400, "CONS_017")
    assert response.json()["error"]["fields"] == {"mime_type": ["Not a supported media type."]}
    assert Recording.objects.count() == 0


# --- Consent --------------------------------------------------------------------------------


def test_every_consent_change_is_kept_and_withdrawing_stops_the_recording():
    room = Room()
    recording_id = room.start().json()["id"]
    assert room.put(recording_id, 0, EBML + b"first").status_code == 201

    recording_consent_set(participation=room.patient, consent=False)
    late = room.put(recording_id, 1, b"after the withdrawal")

    recording = Recording.objects.get()
    assert recording.status == Recording.Status.STOPPED and recording.ended_at is not None
    assert error(late) == (409, "CONS_015")
    assert list(RecordingChunk.objects.values_list("seq", flat=True)) == [0]
    assert list(RecordingConsent.objects.values_list("role", "consent", "source")) == [
        ("doctor", True, "room"),
        ("patient", True, "room"),
        ("patient", False, "room"),
    ]
    times = list(RecordingConsent.objects.values_list("at", flat=True))
    assert times == sorted(times) and all(times)
    assert audit_actions(recording) == ["recording.started", "recording.stopped"]


def test_repeating_the_current_answer_stores_nothing():
    room = Room()

    again = recording_consent_set(participation=room.doctor, consent=True)

    assert again is None
    assert RecordingConsent.objects.count() == 2


def test_guests_and_waiting_patients_cannot_consent():
    room = Room(consent=(False, False))
    invite, _ = services.guest_invite_create(consultation=room.consultation, by=room.consultation.appointment.patient, name="Asha Rao", relationship="interpreter")
    guest = Participation.objects.create(consultation=room.consultation, guest=invite, role="guest", admitted_at=timezone.now())
    Participation.objects.filter(pk=room.patient.pk).update(admitted_at=None)
    room.patient.refresh_from_db()

    for participation in (guest, room.patient):
        with pytest.raises(services.ApplicationError) as refused:
            recording_consent_set(participation=participation, consent=True)
        assert refused.value.code == "CONS_011"
    assert RecordingConsent.objects.count() == 0


def test_hanging_up_withdraws_that_persons_consent():
    room = Room()
    room.start()

    services.recording_participant_left(participation=room.doctor)

    assert Recording.objects.get().status == Recording.Status.STOPPED
    assert list(RecordingConsent.objects.filter(role="doctor").values_list("consent", "source")) == [(True, "room"), (False, "left")]


# --- Chunks -----------------------------------------------------------------------------------


def test_the_same_chunk_twice_is_stored_once():
    room = Room()
    recording_id = room.start().json()["id"]

    first = room.put(recording_id, 0, EBML + b"cluster zero")
    again = room.put(recording_id, 0, EBML + b"cluster zero")

    recording = Recording.objects.get()
    assert (first.status_code, first.json()) == (201, {"seq": 0, "size": 16, "stored": True})
    assert (again.status_code, again.json()) == (200, {"seq": 0, "size": 16, "stored": False})
    assert RecordingChunk.objects.count() == 1
    assert (recording.bytes, recording.chunk_count) == (16, 1)
    assert len(stored_files(recording_id)) == 1


def test_different_bytes_under_a_stored_number_are_refused():
    room = Room()
    recording_id = room.start().json()["id"]
    room.put(recording_id, 0, b"original")

    response = room.put(recording_id, 0, b"replaced")

    assert error(response) == (409, "CONS_018")
    assert decrypt_bytes(default_storage.open(RecordingChunk.objects.get().file.name).read()) == b"original"
    assert len(stored_files(recording_id)) == 1


def test_chunks_above_the_limits_get_413_and_leave_nothing(settings):
    settings.CONSULTATION_RECORDING_MAX_CHUNK_BYTES = 10
    settings.CONSULTATION_RECORDING_MAX_BYTES = 15
    room = Room()
    recording_id = room.start().json()["id"]

    too_big = room.put(recording_id, 0, b"x" * 11)
    first = room.put(recording_id, 0, b"y" * 10)
    over_total = room.put(recording_id, 1, b"z" * 10)

    recording = Recording.objects.get()
    assert error(too_big) == (413, "CONS_016")
    assert first.status_code == 201
    assert error(over_total) == (413, "CONS_016")
    assert (recording.bytes, recording.chunk_count) == (10, 1)
    assert len(stored_files(recording_id)) == 1


def test_empty_and_out_of_range_chunks_are_refused():
    room = Room()
    recording_id = room.start().json()["id"]

    empty = room.put(recording_id, 0, b"")
    far = room.put(recording_id, 100_001, b"data")

    assert error(empty) == (400, "CONS_017")
    assert error(far) == (400, "CONS_017")
    assert RecordingChunk.objects.count() == 0 and stored_files(recording_id) == []


def test_only_the_participant_who_started_uploads_and_finishes():
    room = Room()
    recording_id = room.start().json()["id"]
    other_doctor = booked().doctor.user

    by_patient = room.put(recording_id, 0, b"data", user=room.patient_user)
    finish_by_patient = room.finish(recording_id, user=room.patient_user)
    by_stranger = room.put(recording_id, 0, b"data", user=other_doctor)
    unknown = room.put("6f1c2d9e-0000-4000-8000-000000000000", 0, b"data")

    assert error(by_patient) == (403, "CONS_021")
    assert error(finish_by_patient) == (403, "CONS_021")
    assert error(by_stranger) == (404, "CONS_001")
    assert error(unknown) == (404, "CONS_010")
    assert RecordingChunk.objects.count() == 0
    assert Recording.objects.get().status == Recording.Status.RECORDING


def test_a_finished_recording_accepts_no_more_chunks_and_finishing_again_changes_nothing():
    room = Room()
    recording = room.recorded(EBML + b"one")

    late = room.put(recording.public_id, 1, b"two")
    again = room.finish(recording.public_id)

    recording.refresh_from_db()
    assert error(late) == (409, "CONS_015")
    assert again.status_code == 200 and again.json()["status"] == "complete"
    assert recording.status == Recording.Status.COMPLETE and recording.chunk_count == 1
    assert audit_actions(recording) == ["recording.started", "recording.finished"]


def test_the_web_page_uploads_with_its_session_and_csrf_token():
    room = Room()
    recording_id = room.start().json()["id"]
    client = Client(enforce_csrf_checks=True)
    client.force_login(room.doctor_user)
    client.get(f"/consultations/{room.consultation.room}/")
    token = client.cookies["csrftoken"].value
    url = f"{room.base}{recording_id}/chunks/0/"

    without = client.put(url, b"data", content_type="video/webm")
    with_token = client.put(url, b"data", content_type="video/webm", headers={"X-CSRFToken": token})

    assert without.status_code == 403
    assert with_token.status_code == 201


def test_chunks_are_encrypted_at_rest():
    room = Room()
    plaintext = EBML + b"the patient's face and voice " * 20
    recording = room.recorded(plaintext)

    raw = default_storage.open(RecordingChunk.objects.get(recording=recording).file.name).read()

    assert raw != plaintext and b"the patient's face" not in raw and not raw.startswith(EBML)
    assert decrypt_bytes(raw) == plaintext


# --- Download ---------------------------------------------------------------------------------


def test_the_download_streams_the_exact_bytes_in_order_and_is_audited():
    room = Room()
    recording_id = room.start().json()["id"]
    room.put(recording_id, 1, b"-second")  # uploaded out of order
    room.put(recording_id, 0, EBML + b"first")
    room.put(recording_id, 2, b"-third")
    room.finish(recording_id)
    recording = Recording.objects.get()

    response = api(room.patient_user).get(f"/api/v1/recordings/{recording_id}/download/")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == EBML + b"first-second-third"
    assert response["Content-Type"] == WEBM
    assert response["Content-Length"] == str(len(EBML + b"first-second-third"))
    assert response["Content-Disposition"] == f'attachment; filename="consultation-recording-{recording.started_at:%Y%m%d-%H%M}.webm"'
    event = AuditEvent.objects.get(action="recording.downloaded")
    assert (event.actor, event.subject_user, event.target_id) == (room.patient_user, room.patient_user, str(recording.pk))


@pytest.mark.parametrize(
    ("who", "status"),
    [("doctor", 200), ("patient", 200), ("staff_with_permission", 200), ("staff", 404), ("other_patient", 404), ("other_doctor", 404)],
)
def test_who_may_download(who, status):
    room = Room()
    recording = room.recorded(EBML + b"media")
    staff_with_permission = StaffFactory()
    staff_with_permission.user_permissions.add(Permission.objects.get(codename="view_recording"))
    user = {
        "doctor": room.doctor_user,
        "patient": room.patient_user,
        "staff_with_permission": staff_with_permission,
        "staff": StaffFactory(),
        "other_patient": UserFactory(),
        "other_doctor": booked().doctor.user,
    }[who]

    response = api(user).get(f"/api/v1/recordings/{recording.public_id}/download/")

    assert response.status_code == status
    if status == 404:
        assert response.json()["error"]["code"] == "CONS_010"
        assert audit_actions(recording) == ["recording.started", "recording.finished"]
    else:
        assert b"".join(response.streaming_content) == EBML + b"media"


def test_anonymous_downloads_need_authentication():
    room = Room()
    recording = room.recorded(EBML + b"media")

    response = APIClient().get(f"/api/v1/recordings/{recording.public_id}/download/")

    assert error(response) == (401, "AUTH_001")


def test_a_running_recording_cannot_be_downloaded_yet():
    room = Room()
    recording_id = room.start().json()["id"]
    room.put(recording_id, 0, EBML)

    response = api(room.doctor_user).get(f"/api/v1/recordings/{recording_id}/download/")

    assert error(response) == (409, "CONS_019")
    assert "recording.downloaded" not in audit_actions()


# --- Signed links -------------------------------------------------------------------------------


def test_a_signed_link_downloads_without_signing_in_until_it_expires():
    room = Room()
    recording = room.recorded(EBML + b"shared media")
    created_at = timezone.now()

    with time_machine.travel(created_at, tick=False):
        link = api(room.doctor_user).post(f"/api/v1/recordings/{recording.public_id}/links/", {"minutes": 30}, format="json")
    url = link.json()["url"]
    path = url.removeprefix("http://testserver")
    with time_machine.travel(created_at + timedelta(minutes=29), tick=False):
        used = Client().get(path)
    with time_machine.travel(created_at + timedelta(minutes=31), tick=False):
        expired = Client().get(path)

    assert link.status_code == 201 and url.startswith("http://testserver/recordings/shared/")
    assert link.json()["minutes"] == 30
    assert str(recording.public_id) not in url and room.patient_user.last_name not in url
    assert used.status_code == 200 and b"".join(used.streaming_content) == EBML + b"shared media"
    assert expired.status_code == 410
    assert "This link has expired" in expired.content.decode()
    created, used_event = AuditEvent.objects.filter(action__in=["recording.link_created", "recording.link_used"]).order_by("created_at")
    assert (created.action, created.actor, created.metadata["minutes"]) == ("recording.link_created", room.doctor_user, 30)
    assert (used_event.action, used_event.actor, used_event.metadata) == ("recording.link_used", None, {"link": created.metadata["link"]})
    assert audit_actions(recording).count("recording.link_used") == 1


def test_a_tampered_link_does_not_work_and_is_not_audited():
    room = Room()
    recording = room.recorded(EBML + b"media")
    url = api(room.doctor_user).post(f"/api/v1/recordings/{recording.public_id}/links/", {}, format="json").json()["url"]

    response = Client().get(url.removeprefix("http://testserver").replace("/shared/", "/shared/x"))

    assert response.status_code == 404
    assert "This link does not work" in response.content.decode()
    assert "recording.link_used" not in audit_actions()


def test_links_are_for_people_who_may_download_and_have_a_bounded_lifetime(settings):
    settings.CONSULTATION_RECORDING_LINK_MAX_MINUTES = 60
    room = Room()
    recording = room.recorded(EBML + b"media")
    url = f"/api/v1/recordings/{recording.public_id}/links/"

    stranger = api(UserFactory()).post(url, {"minutes": 10}, format="json")
    too_long = api(room.patient_user).post(url, {"minutes": 61}, format="json")

    assert error(stranger) == (404, "CONS_010")
    assert error(too_long) == (400, "REQ_001") and list(too_long.json()["error"]["fields"]) == ["minutes"]
    assert "recording.link_created" not in audit_actions()


# --- Listing --------------------------------------------------------------------------------------


def test_the_doctor_and_patient_list_recordings_in_a_bounded_number_of_queries(django_assert_max_num_queries):
    room = Room()
    for _ in range(3):
        room.recorded(EBML + b"media")
    Recording.objects.filter(pk=Recording.objects.order_by("pk").first().pk).update(status=Recording.Status.DELETED, deleted_at=timezone.now())

    with django_assert_max_num_queries(4):
        mine = api(room.patient_user).get(room.base)
    for _ in range(5):
        room.recorded(EBML + b"more")
    with django_assert_max_num_queries(4):
        more = api(room.patient_user).get(room.base)
    stranger = api(UserFactory()).get(room.base)
    staff = api(staff_member(roles.SUPPORT)).get(room.base)

    body = mine.json()
    assert [r["status"] for r in body] == ["deleted", "complete", "complete"]
    assert body[0]["download_url"] is None
    assert body[1]["download_url"] == f"/api/v1/recordings/{body[1]['id']}/download/"
    assert body[1]["bytes"] == 9 and body[1]["chunks"] == 1 and body[1]["started_by"] == "doctor"
    assert len(more.json()) == 8
    assert error(stranger) == (404, "CONS_001")
    assert error(staff) == (403, "AUTH_010")


# --- Retention ------------------------------------------------------------------------------------


def test_retention_deletes_old_and_stale_recordings_once(settings):
    settings.CONSULTATION_RECORDING_RETENTION_DAYS = 30
    room = Room()
    old = room.recorded(EBML + b"old")
    recent = room.recorded(EBML + b"recent")
    stale_id = room.start().json()["id"]
    room.put(stale_id, 0, EBML + b"never finished")
    Recording.objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(days=31, hours=1), ended_at=timezone.now() - timedelta(days=31))
    two_days_ago = timezone.now() - timedelta(days=2)
    Consultation.objects.filter(pk=room.consultation.pk).update(status=Consultation.Status.ENDED, started_at=two_days_ago, ended_at=two_days_ago)
    from consultations.tasks import purge_recordings

    first = purge_recordings.delay().get()
    audits = AuditEvent.objects.count()
    second = purge_recordings.delay().get()

    statuses = dict(Recording.objects.values_list("public_id", "status"))
    assert first == 2 and second == 0
    assert AuditEvent.objects.count() == audits
    assert statuses == {old.public_id: "deleted", recent.public_id: "complete", Recording.objects.get(public_id=stale_id).public_id: "deleted"}
    assert stored_files(old.public_id) == [] and stored_files(stale_id) == []
    assert len(stored_files(recent.public_id)) == 1
    assert list(RecordingChunk.objects.values_list("recording__public_id", flat=True)) == [recent.public_id]
    deleted = Recording.objects.get(pk=old.pk)
    assert deleted.deleted_at is not None and (deleted.bytes, deleted.chunk_count) == (len(EBML + b"old"), 1)
    assert error(api(room.patient_user).get(f"/api/v1/recordings/{old.public_id}/download/")) == (410, "CONS_020")
