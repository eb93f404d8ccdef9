"""Check one API answer against the OpenAPI schema, as the fuzz test (test_api_fuzz.py) does:
status code documented for the operation, content type and body matching its schema.

    assert_documented(api.get(url), "GET", url)

Used by the regression tests of what the fuzzing found, beside each app."""

from __future__ import annotations

import functools

import schemathesis
from drf_spectacular.generators import SchemaGenerator
from schemathesis.checks import content_type_conformance, response_schema_conformance, status_code_conformance
from werkzeug.test import EnvironBuilder, TestResponse

CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@functools.cache
def openapi_schema():
    return schemathesis.openapi.from_dict(SchemaGenerator(api_version="v1").get_schema(request=None, public=True))


def documented_statuses(method: str, path: str) -> set[str]:
    operation = openapi_schema().find_operation_by_path(method, path)
    assert operation is not None, f"{method} {path} is not in the schema"
    return set(operation.definition.raw["responses"])


def assert_documented(response, method: str, path: str) -> None:
    """Raise (schemathesis' FailureGroup, with the reason) unless the schema documents ``response``."""
    __tracebackhide__ = True
    operation = openapi_schema().find_operation_by_path(method, path)
    assert operation is not None, f"{method} {path} is not in the schema"
    request = EnvironBuilder(method=method, path=path).get_request()
    answer = TestResponse(response.content, response.status_code, list(response.items()), request=request)
    operation.Case().validate_response(answer, checks=CHECKS, transport_kwargs={"base_url": "http://localhost"})
