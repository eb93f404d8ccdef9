"""/api/v1/records/...: the security cast over every endpoint, the error envelope, the audit
trail of every access."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from medimeet.core.models import AuditEvent
from records import services
from records.models import AccessGrant, Document, RecordEntry

from . import samples
from .conftest import NOW, as_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def record(cast):
    patient = cast["patient"]
    entry = services.entry_create(by=patient, patient=patient, category="allergy", payload={"substance": "Penicillin", "severity": "severe"})
    services.entry_update(by=patient, entry=entry, payload={"substance": "Penicillin", "severity": "moderate"})
    data = samples.pdf("Cholesterol 5.2 mmol/L")
    document = services.document_upload(by=patient, patient=patient, file=SimpleUploadedFile("lipids.pdf", data), size=len(data), title="Lipid panel")
    services.document_index(document_id=document.pk)
    return {"entry": entry, "document": document, "data": data}


def urls(cast, record) -> dict[str, str]:
    p, e, d = cast["patient"].public_id, record["entry"].public_id, record["document"].public_id
    return {
        "record": f"/api/v1/records/patients/{p}/",
        "entries": f"/api/v1/records/patients/{p}/entries/",
        "documents": f"/api/v1/records/patients/{p}/documents/",
        "search": f"/api/v1/records/patients/{p}/search/?q=cholesterol",
        "entry": f"/api/v1/records/entries/{e}/",
        "history": f"/api/v1/records/entries/{e}/history/",
        "document": f"/api/v1/records/documents/{d}/",
        "download": f"/api/v1/records/documents/{d}/download/",
    }


def test_the_patient_reads_their_record_and_every_read_is_audited(cast, record):
    client = as_user(cast["patient"])
    before = AuditEvent.objects.count()

    answers = {name: client.get(url) for name, url in urls(cast, record).items()}

    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(answers, 200)
    assert answers["record"].json()["access"] == "owner"
    assert [e["payload"] for e in answers["entries"].json()] == [{"substance": "Penicillin", "severity": "moderate"}]
    assert answers["history"].json()[1]["changes"] == [{"field": "severity", "before": "severe", "after": "moderate"}]
    assert [d["title"] for d in answers["search"].json()] == ["Lipid panel"]
    assert b"".join(answers["download"].streaming_content) == record["data"]
    assert answers["download"]["Cache-Control"] == "private, no-store"
    actions = sorted(AuditEvent.objects.order_by("created_at").values_list("action", flat=True)[before:])
    assert actions == sorted(["record.read", "record.read", "record.read", "record.search", "record.entry_read", "record.history_read", "record.document_read", "record.document_downloaded"])


@pytest.mark.parametrize("who", ["other_patient", "other_doctor", "staff"])
def test_nobody_else_reads_lists_downloads_or_searches_the_record(cast, record, who):
    client = as_user(cast[who])
    before = AuditEvent.objects.count()

    answers = {name: client.get(url) for name, url in urls(cast, record).items()}

    assert {name: (a.status_code, a.json()["error"]["code"]) for name, a in answers.items()} == dict.fromkeys(answers, (404, "REC_001"))
    assert AuditEvent.objects.count() == before


def test_anonymous_gets_401_everywhere(cast, record):
    answers = {name: as_user().get(url) for name, url in urls(cast, record).items()}

    assert {a.status_code for a in answers.values()} == {401}


def test_guessing_ids_finds_nothing(cast, record):
    import uuid

    client = as_user(cast["other_patient"])

    for url in (f"/api/v1/records/patients/{uuid.uuid4()}/", f"/api/v1/records/entries/{uuid.uuid4()}/", f"/api/v1/records/documents/{uuid.uuid4()}/download/"):
        assert client.get(url).json()["error"]["code"] == "REC_001"


def test_patient_b_does_not_see_patient_a_in_their_own_search_or_access_log(cast, record):
    other = cast["other_patient"]
    client = as_user(other)

    search = client.get(f"/api/v1/records/patients/{other.public_id}/search/?q=cholesterol")
    log = client.get("/api/v1/records/access-log/")

    assert search.json() == []
    assert [e["action"] for e in log.json()] == ["record.search"]


def test_nobody_else_writes_or_deletes(cast, record):
    client = as_user(cast["other_doctor"])
    p, e, d = cast["patient"].public_id, record["entry"].public_id, record["document"].public_id
    before = (AuditEvent.objects.count(), RecordEntry.objects.count(), Document.objects.filter(deleted_at__isnull=True).count())

    answers = [
        client.post(f"/api/v1/records/patients/{p}/entries/", {"category": "allergy", "payload": {"substance": "Latex"}}, format="json"),
        client.put(f"/api/v1/records/entries/{e}/", {"payload": {"substance": "Latex"}}, format="json"),
        client.delete(f"/api/v1/records/entries/{e}/", {"reason": "x"}, format="json"),
        client.delete(f"/api/v1/records/documents/{d}/", {"reason": "x"}, format="json"),
        client.post(f"/api/v1/records/patients/{p}/documents/", {"file": SimpleUploadedFile("a.pdf", samples.pdf())}, format="multipart"),
    ]

    assert [a.status_code for a in answers] == [404] * 5
    assert (AuditEvent.objects.count(), RecordEntry.objects.count(), Document.objects.filter(deleted_at__isnull=True).count()) == before


def test_a_documents_only_grant_opens_documents_and_nothing_else_until_revoked(cast, record):
    patient, doctor = cast["patient"], cast["other_doctor"]
    grant = as_user(patient).post("/api/v1/records/grants/", {"doctor": str(doctor.public_id), "categories": ["documents"], "expires_at": (NOW + timedelta(days=1)).isoformat()}, format="json")
    assert grant.status_code == 201, grant.json()
    client, u = as_user(doctor), urls(cast, record)

    assert client.get(u["download"]).status_code == 200
    assert client.get(u["entry"]).json()["error"]["code"] == "REC_002"
    assert client.get(u["record"]).json()["entries"] == []

    revoke = as_user(patient).post(f"/api/v1/records/grants/{grant.json()['id']}/revoke/")

    assert revoke.json()["active"] is False
    assert client.get(u["download"]).json()["error"]["code"] == "REC_001"
    assert client.get(u["document"]).status_code == 404


def test_an_expired_grant_stops_working_at_once(cast, record, frozen_time):
    services.grant_create(patient=cast["patient"], doctor=cast["other_doctor"], whole_record=True, expires_at=NOW + timedelta(hours=1))
    client, u = as_user(cast["other_doctor"]), urls(cast, record)
    assert client.get(u["record"]).status_code == 200

    frozen_time.move_to(NOW + timedelta(hours=1))

    assert client.get(u["record"]).status_code == 404


def test_a_signed_link_works_for_its_user_only_and_not_after_it_expires(cast, record, frozen_time):
    link = as_user(cast["patient"]).post(f"/api/v1/records/documents/{record['document'].public_id}/links/")
    url = link.json()["url"].removeprefix("http://testserver")
    from django.test import Client

    mine, other, anonymous = Client(), Client(), Client()
    mine.force_login(cast["patient"])
    other.force_login(cast["other_patient"])

    assert b"".join(mine.get(url).streaming_content) == record["data"]
    assert other.get(url).status_code == 404
    assert anonymous.get(url).status_code == 404
    frozen_time.move_to(NOW + timedelta(minutes=5, seconds=1))
    expired = mine.get(url)
    assert expired.status_code == 410
    assert "This download link has expired." in expired.content.decode()


def test_a_refused_upload_answers_with_the_error_envelope_and_stores_nothing(cast, settings):
    patient = cast["patient"]

    answer = as_user(patient).post(f"/api/v1/records/patients/{patient.public_id}/documents/", {"file": SimpleUploadedFile("report.pdf", samples.EICAR)}, format="multipart")

    assert answer.status_code == 400
    assert answer.json() == {"error": {"code": "REC_013", "message": "The file contains a virus test signature (EICAR).", "fields": {"file": ["The file contains a virus test signature (EICAR)."]}}}
    assert Document.objects.count() == 0


def test_break_glass_through_the_api(cast, record, django_capture_on_commit_callbacks):
    doctor, patient = cast["other_doctor"], cast["patient"]
    client = as_user(doctor)
    assert client.get(urls(cast, record)["record"]).status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(f"/api/v1/records/patients/{patient.public_id}/emergency-access/", {"reason": "Collapsed in clinic"}, format="json")

    assert started.status_code == 201
    assert client.get(urls(cast, record)["record"]).json()["access"] == "emergency"
    log = as_user(patient).get("/api/v1/records/access-log/").json()
    assert {(e["action"], e["basis"], e["reason"]) for e in log if e["who"] == doctor.doctor_profile.display_name} == {("record.emergency_access", "", "Collapsed in clinic"), ("record.read", "emergency", "")}


def test_patients_grants_list_is_theirs_only(cast, record):
    services.grant_create(patient=cast["patient"], doctor=cast["other_doctor"], whole_record=True, expires_at=NOW + timedelta(days=1))

    assert len(as_user(cast["patient"]).get("/api/v1/records/grants/").json()) == 1
    assert as_user(cast["other_patient"]).get("/api/v1/records/grants/").json() == []
    grant = AccessGrant.objects.get()
    assert as_user(cast["other_patient"]).post(f"/api/v1/records/grants/{grant.public_id}/revoke/").status_code == 404


def test_staff_with_the_permission_export_the_audit_log_without_clinical_content(cast, record):
    from django.contrib.auth.models import Permission

    assert as_user(cast["staff"]).get("/api/v1/records/audit-export/").status_code == 403
    cast["staff"].user_permissions.add(Permission.objects.get(codename="export_record_audit"))
    staff = type(cast["staff"]).objects.get(pk=cast["staff"].pk)

    answer = as_user(staff).get("/api/v1/records/audit-export/")

    body = b"".join(answer.streaming_content).decode()
    lines = body.strip().splitlines()
    assert lines[0] == "created_at,action,actor,actor_role,patient,target_type,target_id,ip_address,basis,reason,request_id"
    assert len(lines) == 1 + AuditEvent.objects.filter(action__startswith="record.").count()  # the export itself included
    assert "Penicillin" not in body and "Cholesterol" not in body and "Lipid" not in body
    assert AuditEvent.objects.filter(action="record.audit_exported", actor=staff).count() == 1


def test_listing_entries_takes_the_same_queries_for_one_or_twenty(cast, django_assert_num_queries):
    patient = cast["patient"]
    client = as_user(patient)
    url = f"/api/v1/records/patients/{patient.public_id}/entries/"
    services.entry_create(by=patient, patient=patient, category="allergy", payload={"substance": "Latex"})
    with django_assert_num_queries(3) as one:  # the patient, the entries with their versions and authors, the audit entry
        client.get(url)
    for n in range(19):
        services.entry_create(by=patient, patient=patient, category="allergy", payload={"substance": f"Substance {n}"})

    with django_assert_num_queries(len(one.captured_queries)):
        answer = client.get(url)

    assert len(answer.json()) == 20


def test_record_search_refuses_a_nul_character_with_a_400(cast):
    # API fuzzing on PostgreSQL found "?q=...\x00..." answered with a 500 (PostgreSQL takes no NUL).
    patient = cast["patient"]

    response = as_user(patient).get(f"/api/v1/records/patients/{patient.public_id}/search/", {"q": "chole\x00sterol"})
    ok = as_user(patient).get(f"/api/v1/records/patients/{patient.public_id}/search/", {"q": "cholesterol"})

    assert (response.status_code, response.json()["error"]["code"]) == (400, "REQ_001") and "q" in response.json()["error"]["fields"]
    assert ok.status_code == 200
