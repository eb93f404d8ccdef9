"""Shared DRF pieces: input validation, documented error responses, staff permission,
pagination and throttles that tell the client its limit."""

from __future__ import annotations

import copy
import functools
import threading
from types import SimpleNamespace

from django.core.exceptions import ImproperlyConfigured
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.functional import cached_property
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, throttling
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response


class ErrorSerializer(serializers.Serializer):
    """The error envelope every failing request returns."""

    class ErrorBody(serializers.Serializer):
        code = serializers.CharField(help_text="Stable machine-readable code, e.g. AUTH_002 (docs/api.md).")
        message = serializers.CharField()
        fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))

    error = ErrorBody()


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for the given error statuses, all with the error envelope."""
    return {code: OpenApiResponse(ErrorSerializer, description="Error envelope") for code in statuses}


class WallClockTimeFieldExtension(OpenApiSerializerFieldExtension):
    """Document DRF's TimeField as what it sends: a wall-clock time with no UTC offset
    ("09:30:00", in the doctor's own timezone). OpenAPI's ``format: time`` is RFC 3339's
    full-time, which requires the offset; clients validating against it rejected our answers."""

    target_class = "rest_framework.fields.TimeField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction) -> dict:
        return {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$", "example": "09:30:00"}


def document_generic_errors(result: dict, generator, request, public) -> dict:
    """drf-spectacular post-processing hook for the answers any view gives, whichever it is, so
    the schema says so once here instead of in each view's responses:

    - 415 (REQ_005) to a body in a media type the operation does not parse;
    - 401 (AUTH_003/AUTH_004) to an expired or revoked bearer token, on public operations too:
      a view that authenticates at all refuses a bad token rather than treating it as anonymous;
    - 404 (REQ_004) to a ``?page=`` past the last page of a paginated list.
    """
    envelope = {"description": "Error envelope", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    authenticating = {
        (path, method.lower())
        for path, _, method, view in generator.endpoints
        if getattr(view, "cls", None) is not None and view.cls().get_authenticators()
    }
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            if "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault("415", envelope)
            if (path, method) in authenticating:
                operation.setdefault("responses", {}).setdefault("401", envelope)
            if any(parameter.get("in") == "query" and parameter.get("name") == "page" for parameter in operation.get("parameters", [])):
                operation.setdefault("responses", {}).setdefault("404", envelope)
    return result


def valid_input(serializer_class: type[serializers.Serializer], data) -> dict:
    """Validate request data with an input serializer; a failure becomes REQ_001 with fields."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ModelOutputSerializer(serializers.ModelSerializer):
    """A ModelSerializer for answers that builds its fields from the model once per class, not
    once per instance (DRF inspects the model for every serializer it creates: about a third of
    a millisecond for a dozen fields); each instance gets a copy, as DRF does with declared
    fields. Only for serializers whose fields do not depend on the instance or its context."""

    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        template = cls.__dict__.get("_fields_template")
        if template is None:  # two threads may both build it: the same fields either way
            template = super().get_fields()
            cls._fields_template = template
        return copy.deepcopy(template)

    @classmethod
    def represent(cls, instance, context: dict | None = None) -> dict:
        """``cls(instance, context=context).data`` as a plain dict, without building and binding
        the fields again: each thread keeps one serializer of each class and serialises with it
        (DRF's deepcopy of the fields was most of an answer's cost). A call made while that
        serializer is busy in the same thread (a nested call) gets a fresh one."""
        serializers_of_thread = _represent_local.__dict__.setdefault("serializers", {})
        serializer = serializers_of_thread.pop(cls, None) or cls()
        serializer.instance, serializer._context = instance, context or {}
        try:
            return serializer.to_representation(instance)
        finally:
            serializer.instance, serializer._context = None, {}
            serializers_of_thread[cls] = serializer


_represent_local = threading.local()


def staff_permission(read: str, write: str | None = None) -> type[BasePermission]:
    """A DRF permission for staff endpoints that follows the admin's roles: reading needs the
    ``read`` Django permission, anything else ``write`` (default: the same one)."""
    from rest_framework.permissions import SAFE_METHODS

    from .roles import staff_can

    class StaffPermission(BasePermission):
        def has_permission(self, request, view) -> bool:
            return staff_can(request.user, read if request.method in SAFE_METHODS else (write or read))

    StaffPermission.__name__ = StaffPermission.__qualname__ = f"StaffPermission[{read}|{write or read}]"
    return StaffPermission


class StandardPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_paginated_response(self, data) -> Response:
        return Response(
            {
                "count": self.page.paginator.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["count", "results"],
            "properties": {
                "count": {"type": "integer", "example": 123},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }


class KnownCountPaginator(Paginator):
    """A Django paginator whose total comes from ``count`` (e.g. a cached count) instead of a
    COUNT(*) on every page; used by the API and the pages alike."""

    def __init__(self, object_list, per_page, *, count, **kwargs) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self._count_source = count

    @cached_property
    def count(self) -> int:
        return self._count_source()


class KnownCountPagination(StandardPagination):
    def __init__(self, count) -> None:
        self._count = count

    def django_paginator_class(self, object_list, per_page):
        return KnownCountPaginator(object_list, per_page, count=self._count)


class RateLimitHeadersMixin:
    """DRF's sliding-window throttles, counted atomically in Redis when the cache is Redis (one
    round trip per limit: SharedPoolRedisCache.sliding_window_hit) and with DRF's own history
    in the cache otherwise (the embedded default's local memory). Remembers the tightest limit
    seen on this request so the middleware can expose it as ``X-RateLimit-Limit``,
    ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` headers."""

    def get_rate(self) -> str | None:
        # Read the rates at request time (DRF binds them at import), so settings overrides apply.
        from rest_framework.settings import api_settings

        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]  # type: ignore[attr-defined]
        except KeyError as exc:
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}.") from exc  # type: ignore[attr-defined]

    def allow_request(self, request, view) -> bool:
        counter = getattr(self.cache, "sliding_window_hit", None)  # type: ignore[attr-defined]
        if counter is None:
            allowed = super().allow_request(request, view)  # type: ignore[misc]
            history = getattr(self, "history", [])
            self.count, self.oldest = len(history), (history[-1] if history else None)
        else:
            if not self.applies(view) or self.rate is None:  # type: ignore[attr-defined]
                return True
            self.key = self.get_cache_key(request, view)  # type: ignore[attr-defined]
            if self.key is None:
                return True
            self.now = self.timer()  # type: ignore[attr-defined]
            allowed, self.count, self.oldest = counter(self.key, now=self.now, window=self.duration, limit=self.num_requests)  # type: ignore[attr-defined]
        if self.rate is None or getattr(self, "key", None) is None:  # type: ignore[attr-defined]
            return allowed  # this throttle does not apply to the request (e.g. anon rate for a user)
        remaining = max(self.num_requests - self.count, 0)  # type: ignore[attr-defined]
        reset = int(self.duration - (self.now - self.oldest)) if self.oldest is not None else int(self.duration)  # type: ignore[attr-defined]
        info = (self.num_requests, remaining, max(reset, 0))  # type: ignore[attr-defined]
        django_request = getattr(request, "_request", request)
        current = getattr(django_request, "rate_limit", None)
        if current is None or info[1] < current[1]:
            django_request.rate_limit = info
        return allowed

    def applies(self, view) -> bool:
        """Whether this throttle limits the view (set up its rate first where the view decides it)."""
        return True

    def wait(self) -> float | None:
        """DRF's: the rest of the window spread over the requests that will be free by then."""
        remaining_duration = self.duration - (self.now - self.oldest) if self.oldest is not None else self.duration  # type: ignore[attr-defined]
        available_requests = self.num_requests - self.count + 1  # type: ignore[attr-defined]
        if available_requests <= 0:
            return None
        return remaining_duration / float(available_requests)


class AnonRateThrottle(RateLimitHeadersMixin, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(RateLimitHeadersMixin, throttling.UserRateThrottle):
    pass


class ScopedRateThrottle(RateLimitHeadersMixin, throttling.ScopedRateThrottle):
    """Per-view scope (``throttle_scope = "login"``), keyed by user or IP."""

    def applies(self, view) -> bool:
        # What DRF's ScopedRateThrottle.allow_request does before it counts.
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return False
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return True


class UnsafeMethodsThrottleMixin:
    """An API view whose ``throttle_scope`` limits its writes (POST...) only; reads keep the
    default anon/user rates."""

    def get_throttles(self):
        throttles = super().get_throttles()  # type: ignore[misc]
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):  # type: ignore[attr-defined]
            throttles.append(ScopedRateThrottle())
        return throttles


def page_throttled(scope: str, methods: tuple[str, ...] = ("GET", "POST")):
    """The API's scoped rate (``DEFAULT_THROTTLE_RATES[scope]``, keyed by user or client IP) on a
    server-rendered page: beyond it the page answers 429 with ``Retry-After``."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method in methods:
                throttle = ScopedRateThrottle()
                if not throttle.allow_request(request, SimpleNamespace(throttle_scope=scope)):
                    wait = max(int(throttle.wait() or 1), 1)
                    response = render(request, "429.html", {"retry_after": wait}, status=429)
                    response["Retry-After"] = str(wait)
                    return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
