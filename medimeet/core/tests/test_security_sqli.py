"""SQL injection through the API's query parameters: every GET operation of the OpenAPI schema,
every query parameter it documents (search, filters, ordering, dates, pages), with classic
payloads. Each answer is a 200 with no more rows than the payload's words alone find (quotes,
comment dashes and operators add nothing), or a clean 4xx in the error envelope; never a 5xx; and the tables are intact afterwards.

Run on PostgreSQL too (DATABASE_URL=...): the doctor search and record search use its full-text
search there.
"""

from __future__ import annotations

import re

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import staff_member
from doctors.models import DoctorProfile
from medimeet.core.roles import ROLES
from records.models import RecordEntry

from .security import victim_world

pytestmark = pytest.mark.django_db

PAYLOADS = [
    "' OR 1=1--",
    "' OR '1'='1",
    "1;DROP TABLE accounts_user",
    "%' --",
    "1' UNION SELECT email, password FROM accounts_user--",
    '") OR ("a"="a',
    "\\'; SELECT pg_sleep(5)--",
    "* NEAR/2 OR",  # full-text query syntax (SQLite FTS5, PostgreSQL tsquery)
    "a & | ! :* <->",
]
NOTHING = "zzqx-matches-nothing"
# Binary downloads and exports: their parameters are checked by their own tests.
SKIP = {"/api/v1/records/export/", "/api/v1/records/audit-export/"}


def get_operations():
    schema = SchemaGenerator(api_version="v1").get_schema(request=None, public=True)
    for path, item in schema["paths"].items():
        operation = item.get("get")
        if not operation or path in SKIP:
            continue
        params = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
        if params:
            yield path, params


def rows(response) -> int | None:
    if response.status_code != 200 or "json" not in response.get("Content-Type", ""):
        return None
    body = response.json()
    if isinstance(body, dict) and "results" in body:
        return len(body["results"])
    if isinstance(body, list):
        return len(body)
    return None


@pytest.mark.parametrize("who", ["patient", "doctor", "staff"])
def test_injection_payloads_in_every_query_parameter_get_a_clean_answer(who):
    world = victim_world()
    user = {"patient": world["patient"], "doctor": world["doctor"].user, "staff": staff_member(*ROLES)}[who]
    api = APIClient()
    api.force_authenticate(user)
    path_values = {"patient_id": world["patient"].public_id, "slug": world["doctor"].slug, "room": world["consultation"].room}
    tables_before = (User.objects.count(), DoctorProfile.objects.count(), RecordEntry.objects.count())
    problems = []
    for path, params in get_operations():
        url = re.sub(r"\{(\w+)\}", lambda m: str(path_values.get(m.group(1), "00000000-0000-0000-0000-000000000000")), path)
        for param in params:
            baseline = rows(api.get(url, {param: NOTHING}))
            for payload in PAYLOADS:
                response = api.get(url, {param: payload})
                if response.status_code >= 500:
                    problems.append(f"{url}?{param}={payload!r}: {response.status_code}")
                elif response.status_code >= 400 and "json" in response.get("Content-Type", "") and "error" not in response.json():
                    problems.append(f"{url}?{param}={payload!r}: {response.status_code} without the envelope")
                elif (found := rows(response)) is not None and baseline is not None:
                    # A search may match the payload's words ("a", "OR") or, with no word left,
                    # list everything; the quotes, dashes and operators must add nothing to that.
                    words_only = rows(api.get(url, {param: " ".join(re.findall(r"[^\W_]+", payload))}))
                    if found > max(baseline, words_only or 0):
                        problems.append(f"{url}?{param}={payload!r}: {found} rows; {words_only} for its words alone")
    assert problems == [], "\n".join(problems)
    assert (User.objects.count(), DoctorProfile.objects.count(), RecordEntry.objects.count()) == tables_before
