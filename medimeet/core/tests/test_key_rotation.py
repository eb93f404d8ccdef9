"""Field-key rotation (manage.py rotate_field_keys): every Fernet-encrypted value in every app is
re-encrypted under the newest key without loss, idempotently; an undecryptable value is reported
and left as it was."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import PatientProfile
from accounts.tests.factories import UserFactory
from consultations.models import RecordingChunk
from medimeet.core.key_rotation import encrypted_columns
from records import selectors, services
from records.models import RecordEntry

pytestmark = pytest.mark.django_db

KEY_A = "bWVkaW1lZXQtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE="
KEY_B = "bmV3LW1lZGltZWV0LWtleS0zMi1ieXRlcy1sb25nISE="
PENICILLIN = {"substance": "Penicillin", "reaction": "Hives", "severity": "moderate"}


def raw(table: str, column: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE {column} <> ''")  # noqa: S608 - test constants
        return sorted(row[0] for row in cursor.fetchall())


def under(key: str, token: str | bytes) -> bool:
    try:
        Fernet(key.encode()).decrypt(token.encode() if isinstance(token, str) else token)
    except InvalidToken:
        return False
    return True


def rotate(*args) -> str:
    out = io.StringIO()
    call_command("rotate_field_keys", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def written_under_a(settings):
    """A patient's profile and a record entry with two versions, all encrypted under key A alone."""
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    patient = UserFactory()
    profile = patient.patient_profile
    profile.allergies, profile.address = "Penicillin", "12 MG Road, Pune"
    profile.save()
    entry = services.entry_create(by=patient, patient=patient, category="allergy", payload=PENICILLIN)
    services.entry_update(by=patient, entry=entry, payload={**PENICILLIN, "severity": "severe"})
    return patient


def test_encrypted_columns_are_found_in_every_app():
    labels = {f"{model._meta.label}.{f.name}" for model, fields in encrypted_columns() for f in fields}

    assert {"records.RecordEntryVersion.payload", "records.Document.text", "accounts.PatientProfile.address", "accounts.PatientProfile.phone"} <= labels
    assert any(label.startswith("appointments.") for label in labels)


def test_rotation_moves_every_value_to_the_new_key_and_the_old_key_can_go(settings, written_under_a):
    patient = written_under_a
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]

    output = rotate("--batch-size", "1")  # one row per transaction: the batching is exercised

    assert "records.RecordEntryVersion.payload: 2 re-encrypted" in output
    assert "accounts.PatientProfile.allergies: 1 re-encrypted" in output
    for table, column in (("records_recordentryversion", "payload"), ("accounts_patientprofile", "allergies"), ("accounts_patientprofile", "address")):
        tokens = raw(table, column)
        assert tokens and all(under(KEY_B, t) and not under(KEY_A, t) for t in tokens)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]  # key A removed
    profile = PatientProfile.objects.get(user=patient)
    assert (profile.allergies, profile.address) == ("Penicillin", "12 MG Road, Pune")
    entry = RecordEntry.objects.get()
    assert [selectors.entry_payload(v) for v in selectors.entry_versions(entry)] == [PENICILLIN, {**PENICILLIN, "severity": "severe"}]


def test_rotating_again_changes_nothing(settings, written_under_a):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    rotate()
    before = raw("records_recordentryversion", "payload") + raw("accounts_patientprofile", "allergies")

    output = rotate()

    assert "Re-encrypted 0 value(s)" in output
    assert "records.RecordEntryVersion.payload: 0 re-encrypted, 2 already under the newest key" in output
    assert raw("records_recordentryversion", "payload") + raw("accounts_patientprofile", "allergies") == before


def test_an_undecryptable_value_is_reported_and_left_as_it_was(settings, written_under_a):
    foreign = Fernet(Fernet.generate_key()).encrypt(b"written under a key nobody configured").decode()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_patientprofile SET address = %s", [foreign])
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    errors = io.StringIO()

    with pytest.raises(CommandError, match="1 value"):
        call_command("rotate_field_keys", stdout=io.StringIO(), stderr=errors)

    profile_pk = PatientProfile.objects.filter(user=written_under_a).values_list("pk", flat=True).get()
    assert f"accounts.PatientProfile.address pk={profile_pk}: no configured key decrypts it; left unchanged" in errors.getvalue()
    assert raw("accounts_patientprofile", "address") == [foreign]
    assert all(under(KEY_B, t) for t in raw("records_recordentryversion", "payload"))  # the rest was still rotated


def test_recording_chunk_files_are_re_encrypted_and_the_old_file_removed(settings):
    from consultations.tests.test_recordings import EBML, Room

    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    recording = Room().recorded(EBML + b"cluster zero")
    old_name = RecordingChunk.objects.get(recording=recording).file.name
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]

    output = rotate()

    new_name = RecordingChunk.objects.get(recording=recording).file.name
    assert "consultations.RecordingChunk.file: 1 re-encrypted" in output
    assert new_name != old_name and not default_storage.exists(old_name)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]
    with default_storage.open(new_name, "rb") as stored:
        assert Fernet(KEY_B.encode()).decrypt(stored.read()) == EBML + b"cluster zero"


def test_an_interrupted_rotation_keeps_what_it_committed_and_a_second_run_finishes(settings, written_under_a, monkeypatch):
    from medimeet.core import key_rotation

    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    real, calls = key_rotation.token_rotate, []

    def dies_after_the_profile(token):
        calls.append(token)
        if len(calls) == 3:  # the profile's row (address, allergies) is one batch; then the versions
            raise KeyboardInterrupt  # the operator's Ctrl-C, or the process killed
        return real(token)

    monkeypatch.setattr(key_rotation, "token_rotate", dies_after_the_profile)
    with pytest.raises(KeyboardInterrupt):
        rotate("--batch-size", "1")
    monkeypatch.setattr(key_rotation, "token_rotate", real)

    profile = raw("accounts_patientprofile", "allergies") + raw("accounts_patientprofile", "address")
    assert all(under(KEY_B, t) for t in profile)  # committed before the interruption
    assert not any(under(KEY_B, t) for t in raw("records_recordentryversion", "payload"))
    output = rotate()
    assert "accounts.PatientProfile.allergies: 0 re-encrypted, 1 already under the newest key" in output
    assert "records.RecordEntryVersion.payload: 2 re-encrypted" in output
    assert all(under(KEY_B, t) for t in raw("records_recordentryversion", "payload"))
