"""Cross-cutting platform pieces: encryption at rest, audit log, error envelope, logs, schema."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from django.core.exceptions import PermissionDenied
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

from medimeet.core import crypto
from medimeet.core.audit import audit_record
from medimeet.core.logging import JsonFormatter, RequestIdFilter
from medimeet.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_encryption_round_trips_and_rotates_keys(settings):
    old_key = "bWVkaW1lZXQtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE="
    new_key = "bmV3LW1lZGltZWV0LWtleS0zMi1ieXRlcy1sb25nISE="
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    token = crypto.encrypt_text("Type 2 diabetes")

    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]

    assert crypto.decrypt_text(token) == "Type 2 diabetes"
    assert crypto.encrypt_text("x") != crypto.encrypt_text("x")  # randomised: equal values do not leak


def test_audit_entries_are_immutable():
    from accounts.tests.factories import UserFactory

    actor = UserFactory()
    event = audit_record(action="record.read", actor=actor, target=actor, subject_user=actor, metadata={"reason": "consultation"})

    event.action = "tampered"
    with pytest.raises(PermissionDenied):
        event.save()
    with pytest.raises(PermissionDenied):
        event.delete()
    with pytest.raises(PermissionDenied):
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
    with pytest.raises(PermissionDenied):
        AuditEvent.objects.all().delete()
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.action, stored.actor_id, stored.actor_role, stored.target_type) == ("record.read", actor.pk, "patient", "accounts.user")


def test_audit_admin_is_read_only(client):
    from allauth.mfa.models import Authenticator

    from accounts.tests.factories import StaffFactory

    staff = StaffFactory(is_superuser=True)
    Authenticator.objects.create(user=staff, type=Authenticator.Type.TOTP, data={"secret": "x"})
    client.force_login(staff)
    event = audit_record(action="record.read", actor=staff)

    add = client.get("/admin/core/auditevent/add/")
    delete = client.post(f"/admin/core/auditevent/{event.pk}/delete/", {"post": "yes"})

    assert add.status_code == 403
    assert delete.status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_json_logs_drop_extras_that_could_carry_phi():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("medimeet.test-logging")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("profile saved", extra={"user_id": 7, "allergies": "Penicillin", "phone": "+44 20 7946 0958"})
    finally:
        logger.removeHandler(handler)

    line = json.loads(stream.getvalue())
    assert line["message"] == "profile saved"
    assert line["user_id"] == 7
    assert "allergies" not in line and "phone" not in line
    assert "Penicillin" not in stream.getvalue()


def _api_paths(resolver=None, prefix="") -> set[str]:
    paths = set()
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            paths |= _api_paths(entry, route)
        elif isinstance(entry, URLPattern) and route.startswith("api/v1/") and "schema" not in route:
            paths.add(route)
    return paths


def test_every_api_endpoint_is_in_the_openapi_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    documented = {path.lstrip("/") for path in schema["paths"]}
    routed = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path) for path in _api_paths()}

    assert routed, "no API routes found"
    assert routed - documented == set()


def test_schema_endpoint_and_local_swagger_ui_are_served(client):
    schema = client.get("/api/v1/schema/")
    swagger = client.get("/api/v1/schema/swagger/")

    assert schema.status_code == 200
    assert b"/api/v1/auth/login/" in schema.content
    assert swagger.status_code == 200
    assert b"cdn" not in swagger.content.lower()
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/" in swagger.content


def test_security_headers_are_sent(client):
    response = client.get("/health/")

    assert response.status_code == 200
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert len(response["X-Request-ID"]) == 32


@override_settings(CORS_ALLOWED_ORIGINS=["https://app.medimeet.example"])
def test_cors_allows_only_listed_origins(client):
    allowed = client.options("/api/v1/auth/login/", HTTP_ORIGIN="https://app.medimeet.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    denied = client.options("/api/v1/auth/login/", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")

    assert allowed["Access-Control-Allow-Origin"] == "https://app.medimeet.example"
    assert "Access-Control-Allow-Origin" not in denied


def test_outbox_backend_writes_one_eml_per_message(tmp_path, settings, capsys):
    from django.core.mail import EmailMessage, get_connection

    settings.EMAIL_OUTBOX_DIR = tmp_path
    connection = get_connection("medimeet.core.mail.OutboxEmailBackend")

    sent = connection.send_messages([
        EmailMessage("Verify your email", "Open http://127.0.0.1:8000/accounts/confirm-email/abc/ now", to=["a@example.com"]),
        EmailMessage("Second", "No link here", to=["b@example.com"]),
    ])

    files = sorted(tmp_path.glob("*.eml"))
    assert sent == 2
    assert len(files) == 2
    assert b"Subject: Verify your email" in files[0].read_bytes() or b"Subject: Verify your email" in files[1].read_bytes()
    assert "link=http://127.0.0.1:8000/accounts/confirm-email/abc/" in capsys.readouterr().out


def test_unhandled_api_error_is_a_json_500_without_details(client, monkeypatch):
    from rest_framework.test import APIClient

    from accounts import api

    def explode(*args, **kwargs):
        raise RuntimeError("database on fire: patient 42")

    monkeypatch.setattr(api.services, "password_reset_request", explode)
    response = APIClient().post("/api/v1/auth/password/reset/", {"email": "a@example.com"}, format="json")

    assert response.status_code == 500
    assert response.json() == {"error": {"code": "SERVER_001", "message": "An unexpected error occurred. It has been logged.", "fields": {}}}


def test_redis_cache_instances_share_one_client_and_pool():
    from medimeet.core.cache import SharedPoolRedisCache

    first = SharedPoolRedisCache("redis://127.0.0.1:6379/15", {})
    second = SharedPoolRedisCache("redis://127.0.0.1:6379/15", {})  # as a new ASGI request would build
    other_db = SharedPoolRedisCache("redis://127.0.0.1:6379/14", {})

    assert first._cache is second._cache
    assert first._cache is not other_db._cache


def test_openapi_schema_generates_without_warnings_and_validates(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))

    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")


@pytest.mark.django_db
def test_output_serializers_build_their_fields_once_and_give_each_instance_its_own_copy():
    from rest_framework import serializers

    from accounts.models import User
    from accounts.tests.factories import UserFactory
    from medimeet.core.api import ModelOutputSerializer

    class Plain(serializers.ModelSerializer):
        class Meta:
            model = User
            fields = ["email", "role", "timezone", "date_joined"]

    class Cached(ModelOutputSerializer):
        class Meta(Plain.Meta):
            pass

    user = UserFactory(email="p@example.com")
    first, second = Cached(user), Cached(user)

    assert first.data == second.data == Plain(user).data
    assert first.fields["email"] is not second.fields["email"]
    assert first.fields["email"].parent is first and second.fields["email"].parent is second
    assert set(Cached.__dict__["_fields_template"]) == {"email", "role", "timezone", "date_joined"}


@pytest.mark.django_db
def test_represent_gives_data_without_rebuilding_fields_per_call_per_thread_and_nested():
    import threading

    from rest_framework import serializers

    from accounts.models import User
    from accounts.tests.factories import UserFactory
    from medimeet.core.api import ModelOutputSerializer

    class Shown(ModelOutputSerializer):
        viewer = serializers.SerializerMethodField()
        manager = serializers.SerializerMethodField()

        class Meta:
            model = User
            fields = ["email", "date_joined", "viewer", "manager"]

        def get_viewer(self, user) -> str:
            return self.context.get("viewer", "")

        def get_manager(self, user) -> dict | None:  # a nested call of the same class, mid-representation
            boss = self.context.get("boss")
            return Shown.represent(boss, {"viewer": "nested"}) if boss is not None else None

    alice, bob = UserFactory(email="alice@example.com"), UserFactory(email="bob@example.com")

    first = Shown.represent(alice, {"viewer": "v1", "boss": bob})
    assert first == Shown(alice, context={"viewer": "v1", "boss": bob}).data
    assert first["manager"] == {"email": "bob@example.com", "date_joined": Shown(bob).data["date_joined"], "viewer": "nested", "manager": None}
    assert Shown.represent(bob) == {**Shown(bob).data, "viewer": ""}  # no context left over from the last call
    assert type(Shown.represent(bob)) is dict

    built = []
    original = Shown.get_fields
    Shown.get_fields = lambda self: built.append(threading.get_ident()) or original(self)
    try:
        for _ in range(5):
            Shown.represent(alice)
        answers = {}
        worker = threading.Thread(target=lambda: answers.update(other=Shown.represent(bob, {"viewer": "thread"})))
        worker.start()
        worker.join()
    finally:
        Shown.get_fields = original
    assert len(built) == 1 and built[0] != threading.get_ident()  # this thread's serializer was reused; the other thread built its own
    assert answers["other"]["viewer"] == "thread" and answers["other"]["email"] == "bob@example.com"
