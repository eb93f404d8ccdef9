"""Entry pages: the patient (and a doctor who may write) adds, edits (a new version, never an
overwrite) and deletes (soft, with a reason) structured entries on server-rendered pages, with the
same validation as the API; everyone else is refused and nothing changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from allauth.mfa.models import Authenticator
from django.test import Client

from medimeet.core.models import AuditEvent
from records import selectors, services
from records.models import RecordEntry, RecordEntryVersion

from .conftest import NOW

pytestmark = pytest.mark.django_db

PENICILLIN = {"substance": "Penicillin", "reaction": "Hives", "severity": "moderate"}


@pytest.fixture
def allergy(cast):
    return services.entry_create(by=cast["patient"], patient=cast["patient"], category="allergy", payload=PENICILLIN)


def edit_url(entry) -> str:
    return f"/records/entries/{entry.public_id}/edit/"


def delete_url(entry) -> str:
    return f"/records/entries/{entry.public_id}/delete/"


def payloads(entry) -> list[dict]:
    return [selectors.entry_payload(v) for v in selectors.entry_versions(entry)]


def test_the_patient_edits_an_entry_and_a_new_version_is_written(client, cast, allergy):
    client.force_login(cast["patient"])

    form = client.get(edit_url(allergy))
    answer = client.post(edit_url(allergy), {"allergy-substance": "Penicillin", "allergy-reaction": "Anaphylaxis", "allergy-severity": "severe"}, follow=True)

    assert form.status_code == 200
    assert 'value="Hives"' in form.content.decode() and "Saving adds version 2" in form.content.decode()
    assert answer.redirect_chain == [("/records/#timeline", 302)]
    assert "Saved as version 2. The earlier versions stay in the history." in answer.content.decode()
    assert payloads(allergy) == [PENICILLIN, {"substance": "Penicillin", "reaction": "Anaphylaxis", "severity": "severe"}]
    assert AuditEvent.objects.filter(action="record.entry_updated", actor=cast["patient"]).count() == 1


def test_clearing_an_optional_field_removes_it_from_the_next_version(client, cast, allergy):
    client.force_login(cast["patient"])

    client.post(edit_url(allergy), {"allergy-substance": "Penicillin", "allergy-reaction": "", "allergy-severity": "moderate"})

    assert payloads(allergy)[-1] == {"substance": "Penicillin", "severity": "moderate"}
    history = client.get(f"/records/entries/{allergy.public_id}/history/").content.decode().replace("\n", "")
    assert '<th scope="row">Reaction</th><td class="mm-version-before">Hives</td><td class="mm-version-after">—</td>' in history


def test_the_edit_form_shows_the_services_errors_next_to_the_fields_and_writes_nothing(client, cast):
    patient = cast["patient"]
    entry = services.entry_create(by=patient, patient=patient, category="medication", payload={"name": "Amlodipine", "started_on": "2026-10-01"})
    client.force_login(patient)

    # The form knows each field; the rule between two fields lives only in records.payloads.
    answer = client.post(edit_url(entry), {"medication-name": "Amlodipine", "medication-started_on": "2026-10-01", "medication-stopped_on": "2026-09-01"})
    required = client.post(edit_url(entry), {"medication-name": ""})

    assert answer.status_code == 400
    page = answer.content.decode()
    assert 'id="id_medication-stopped_on_error"' in page and "A medication cannot stop before it started." in page
    assert required.status_code == 400 and "This field is required." in required.content.decode()
    assert RecordEntryVersion.objects.filter(entry=entry).count() == 1


def test_a_vital_is_shown_for_editing_with_its_measurement_time(client, cast):
    patient = cast["patient"]
    entry = services.entry_create(by=patient, patient=patient, category="vital", payload={"kind": "heart_rate", "value": "72", "unit": "bpm", "measured_at": "2026-11-01T08:30:00Z"})
    client.force_login(patient)

    page = client.get(edit_url(entry)).content.decode()
    client.post(edit_url(entry), {"vital-kind": "heart_rate", "vital-value": "68", "vital-unit": "bpm", "vital-measured_at": "2026-11-01T08:30"})

    assert 'value="2026-11-01T08:30"' in page
    assert payloads(entry)[-1]["value"] == "68" and payloads(entry)[-1]["measured_at"].startswith("2026-11-01T08:30:00")


def test_the_patient_deletes_an_entry_with_a_reason_and_its_history_stays(client, cast, allergy):
    client.force_login(cast["patient"])

    confirm = client.get(delete_url(allergy))
    answer = client.post(delete_url(allergy), {"reason": "Entered by mistake"}, follow=True)

    assert confirm.status_code == 200 and "Delete “Penicillin”?" in confirm.content.decode()
    assert answer.redirect_chain == [("/records/#timeline", 302)]
    allergy.refresh_from_db()
    assert (allergy.deletion_reason, allergy.deleted_by, allergy.version_count, allergy.current_version.change) == ("Entered by mistake", cast["patient"], 2, "deleted")
    assert "Penicillin" not in answer.content.decode().split('id="timeline"')[1].split("</section>")[0]
    assert client.get(f"/records/entries/{allergy.public_id}/history/").status_code == 200
    assert client.get(edit_url(allergy)).status_code == 404  # only the history of a deleted entry remains
    assert client.get(delete_url(allergy)).status_code == 404


def test_deleting_without_a_reason_is_refused_on_the_form(client, cast, allergy):
    client.force_login(cast["patient"])

    answer = client.post(delete_url(allergy), {"reason": "  "})

    assert answer.status_code == 400
    assert "This field is required." in answer.content.decode()
    allergy.refresh_from_db()
    assert (allergy.deleted_at, allergy.version_count) == (None, 1)


def test_the_timeline_offers_edit_and_delete_only_to_who_may_write(client, cast, allergy):
    services.grant_create(patient=cast["patient"], doctor=cast["other_doctor"], whole_record=True, expires_at=NOW + timedelta(days=1))

    client.force_login(cast["patient"])
    own = client.get("/records/").content.decode()
    client.force_login(cast["other_doctor"])
    granted = client.get(f"/records/patients/{cast['patient'].public_id}/").content.decode()

    assert edit_url(allergy) in own and delete_url(allergy) in own
    assert "Penicillin" in granted and edit_url(allergy) not in granted and delete_url(allergy) not in granted
    assert 'name="form" value="entry:allergy"' not in granted


@pytest.mark.parametrize("who", ["other_patient", "other_doctor", "staff"])
def test_people_without_access_get_404_and_nothing_changes(client, cast, allergy, who):
    if who == "staff":  # staff pages need a second factor first; with one, the record is still not theirs
        Authenticator.objects.create(user=cast["staff"], type=Authenticator.Type.TOTP, data={"secret": "unused"})
    client.force_login(cast[who])
    audit_before = AuditEvent.objects.count()

    answers = [
        client.get(edit_url(allergy)),
        client.post(edit_url(allergy), {"allergy-substance": "Latex"}),
        client.get(delete_url(allergy)),
        client.post(delete_url(allergy), {"reason": "Not mine"}),
    ]

    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    allergy.refresh_from_db()
    assert (allergy.version_count, allergy.deleted_at, payloads(allergy)) == (1, None, [PENICILLIN])
    assert AuditEvent.objects.count() == audit_before


def test_anonymous_visitors_are_sent_to_log_in(client, allergy):
    assert client.get(edit_url(allergy))["Location"].startswith("/accounts/login/")
    assert client.post(delete_url(allergy), {"reason": "x"})["Location"].startswith("/accounts/login/")
    assert RecordEntryVersion.objects.count() == 1


def test_a_doctor_with_read_only_access_gets_403_and_nothing_changes(client, cast, allergy):
    services.grant_create(patient=cast["patient"], doctor=cast["other_doctor"], whole_record=True, expires_at=NOW + timedelta(days=1))
    client.force_login(cast["other_doctor"])

    answers = [
        client.get(edit_url(allergy)),
        client.post(edit_url(allergy), {"allergy-substance": "Latex"}),
        client.post(delete_url(allergy), {"reason": "Not relevant"}),
        client.post(f"/records/patients/{cast['patient'].public_id}/", {"form": "entry:allergy", "allergy-substance": "Latex"}),
    ]

    assert [a.status_code for a in answers] == [403, 403, 403, 403]
    assert RecordEntry.objects.count() == 1 and RecordEntryVersion.objects.count() == 1


def test_a_doctor_outside_the_granted_categories_gets_403(client, cast, allergy):
    services.grant_create(patient=cast["patient"], doctor=cast["other_doctor"], whole_record=False, categories=["medication"], expires_at=NOW + timedelta(days=1))
    client.force_login(cast["other_doctor"])

    assert client.get(edit_url(allergy)).status_code == 403


def test_the_patients_doctor_adds_edits_and_deletes_on_the_record_page(client, cast, allergy):
    doctor, patient = cast["doctor"], cast["patient"]
    client.force_login(doctor)
    record = f"/records/patients/{patient.public_id}/"

    page = client.get(record).content.decode()
    added = client.post(record, {"form": "entry:condition", "condition-name": "Hypertension", "condition-status": "active"}, follow=True)
    client.post(edit_url(allergy), {"allergy-substance": "Penicillin", "allergy-reaction": "Hives", "allergy-severity": "severe"})
    client.post(delete_url(allergy), {"reason": "Duplicate of the clinic's entry"})

    assert 'name="form" value="entry:allergy"' in page and edit_url(allergy) in page
    assert added.redirect_chain == [(record + "#timeline", 302)]
    assert "Added to the patient&#x27;s record." in added.content.decode() and "Hypertension" in added.content.decode()
    condition = RecordEntry.objects.get(category="condition")
    assert (condition.patient, condition.created_by, condition.current_version.author_role) == (patient, doctor, "doctor")
    allergy.refresh_from_db()
    assert [v.author for v in selectors.entry_versions(allergy)] == [patient, doctor, doctor]
    assert allergy.deletion_reason == "Duplicate of the clinic's entry"


def test_an_invalid_entry_on_the_doctors_page_shows_the_error(client, cast):
    client.force_login(cast["doctor"])

    answer = client.post(f"/records/patients/{cast['patient'].public_id}/", {"form": "entry:immunization", "immunization-vaccine": "Hepatitis B"})

    assert answer.status_code == 400
    assert 'id="id_immunization-given_on_error"' in answer.content.decode()
    assert RecordEntry.objects.count() == 0


def test_the_forms_need_the_csrf_token(cast, allergy):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast["patient"])

    assert client.post(edit_url(allergy), {"allergy-substance": "Latex"}).status_code == 403
    assert client.post(delete_url(allergy), {"reason": "x"}).status_code == 403
    assert RecordEntryVersion.objects.count() == 1


def test_the_entry_pages_make_a_bounded_number_of_queries(client, cast, django_assert_max_num_queries):
    patient = cast["patient"]
    entries = [services.entry_create(by=patient, patient=patient, category="allergy", payload={"substance": f"Substance {i}"}) for i in range(5)]
    for entry in entries:
        services.entry_update(by=cast["doctor"], entry=entry, payload={"substance": "Changed"})
    client.force_login(cast["doctor"])

    # 15: the layout reads the platform settings (banner, support contact) once, from the database
    # when the cache is cold (constance)
    with django_assert_max_num_queries(15):
        assert client.get(edit_url(entries[0])).status_code == 200
    with django_assert_max_num_queries(15):
        assert client.get(delete_url(entries[0])).status_code == 200
    with django_assert_max_num_queries(20):
        assert client.post(edit_url(entries[0]), {"allergy-substance": "Latex"}).status_code == 302
    with django_assert_max_num_queries(15):  # the doctor's record page with five edited entries, as with one
        assert client.get(f"/records/patients/{patient.public_id}/").status_code == 200
