"""Django-side helpers of the benchmark harness, run by bench/run.py in a subprocess.

They need the project's settings (the same environment as the server under test), so they
run with Django set up, while the load generator in run.py stays a light httpx process.

    python bench/setup_data.py dataset --size full --out var/bench-dataset.json
    python bench/setup_data.py seed --users 200 --password ... [--targets ...] --out var/bench-seed.json
    python bench/setup_data.py probe [--search-combos JSON] --out var/bench-probe.json
    python bench/setup_data.py verify --out var/bench-verify.json

``dataset`` makes the large data set of the search, slots and booking areas exist (see
          bench/dataset.py): 20,000 doctors (``--size full``; 2,000 with ``quick``), 2,000
          schedules, 500,000 appointments. Reused when already there; prints timings.
``seed``  makes N verified patients exist (User + allauth EmailAddress + PatientProfile with
          some encrypted PHI), removes what earlier runs booked for them, and opens one API
          session with an access token per user. The password is hashed once with the default
          hasher and the same encoded hash is given to every user: hashing N passwords at
          about 5 hashes/s would dominate the setup, and the cost of *checking* a password
          does not depend on its salt. Patients are kept across runs (the audit log, which
          refers to them, is append-only). With ``--targets`` it also writes what the slots
          and booking scenarios ask for (free slots computed from the data).
``probe`` measures the ceiling of the login endpoint (default-hasher hashes/s on one core, in
          a tight loop) and counts the SQL queries of one login and one ``GET /me/`` with the
          test client; with ``--search-combos`` also captures the SQL of one search request per
          filter combination, one slots request and one booking (rolled back), and
          runs ``EXPLAIN (ANALYZE, BUFFERS)`` on their SELECTs.
``verify`` counts double bookings after the booking runs (see dataset.verify).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
import time
from pathlib import Path

# The project tree under test: bench/run.py sets it (the working tree or an export of --ref).
PROJECT = Path(os.environ.get("BENCH_PROJECT_DIR") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medimeet.settings.local")

import django  # noqa: E402

django.setup()

import dataset  # noqa: E402
from allauth.account.models import EmailAddress  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import get_hasher, make_password  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework_simplejwt.settings import api_settings as jwt_settings  # noqa: E402

from accounts.models import ApiSession, PatientProfile, User  # noqa: E402
from accounts.tokens import tokens_issue  # noqa: E402
from appointments.models import Appointment  # noqa: E402

# Not "@bench.medimeet.local": doctors/demo.py bulk_doctors counts every user of that domain as
# an existing bench doctor.
EMAIL_DOMAIN = "patients.bench.medimeet.local"


def bench_email(i: int) -> str:
    return f"bench-patient-{i:05d}@{EMAIL_DOMAIN}"


def seed(users: int, password: str) -> dict:
    encoded = make_password(password)  # one hash with the default hasher (see module docstring)
    now = timezone.now()
    emails = [bench_email(i) for i in range(users)]
    with transaction.atomic():
        existing = {u.email: u for u in User.objects.filter(email__in=emails)}
        new = User.objects.bulk_create(
            [
                User(
                    email=email,
                    password=encoded,
                    first_name="Bench",
                    last_name=f"Patient {i}",
                    role=User.Role.PATIENT,
                    timezone="Europe/London",
                    date_joined=now,
                )
                for i, email in enumerate(emails)
                if email not in existing
            ],
            batch_size=500,
        )
        EmailAddress.objects.bulk_create(
            [EmailAddress(user=u, email=u.email, verified=True, primary=True) for u in new], batch_size=500
        )
        # A realistic profile: GET /me/ decrypts these fields (Fernet) on every request.
        PatientProfile.objects.bulk_create(
            [
                PatientProfile(
                    user=u,
                    date_of_birth=datetime.date(1960, 1, 1) + datetime.timedelta(days=37 * i % 15000),
                    sex=PatientProfile.Sex.UNDISCLOSED,
                    phone="+44 20 7946 0958",
                    address=f"{i} Example Street, London",
                    allergies="Penicillin",
                    chronic_conditions="",
                    emergency_contact_name="Alex Example",
                    emergency_contact_phone="+44 20 7946 0000",
                )
                for i, u in enumerate(new)
            ],
            batch_size=500,
        )
        existing.update({u.email: u for u in new})
        created = [existing[email] for email in emails]
        # Same state on every run: the password, the same lockout-free account, no bookings or
        # sessions left over from an earlier run.
        User.objects.filter(pk__in=[u.pk for u in created]).update(password=encoded, is_active=True, status="active")
        # Paid bookings (the mix area) hold payments, their invoices and refunds, and a
        # consultation room: protected references, removed first (plain SQL: invoices refuse the
        # ORM's delete, they are tax documents, but these are the bench's own).
        ids = [u.pk for u in created]
        with connection.cursor() as cursor:
            for table in ("payments_refund", "payments_invoice"):
                cursor.execute(f"DELETE FROM {table} WHERE payment_id IN (SELECT id FROM payments_payment WHERE patient_id = ANY(%s))", [ids])
            cursor.execute("DELETE FROM payments_payment WHERE patient_id = ANY(%s)", [ids])
        from consultations.models import Consultation

        Consultation.objects.filter(appointment__patient__in=created).delete()
        # The ORM's delete follows whatever refers to appointments (events, waitlist, ...).
        removed = Appointment.objects.filter(patient__in=created).delete()[1].get("appointments.Appointment", 0)
        ApiSession.objects.filter(user__in=created).delete()
        # One API session per user, tokens issued by the same code path as a real login
        # (accounts.tokens.tokens_issue), without paying a password hash per user.
        tokens = []
        for u in created:
            session = ApiSession.objects.create(
                user=u,
                device_name="bench",
                user_agent="medimeet-bench",
                ip_address="127.0.0.1",
                expires_at=now + jwt_settings.REFRESH_TOKEN_LIFETIME,
            )
            tokens.append(tokens_issue(session=session)["access"])
    return {
        "users": [u.email for u in created],
        "tokens": tokens,
        "patient_ids": [str(u.public_id) for u in created],
        "hasher": get_hasher("default").algorithm,
        "access_token_lifetime_s": int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
        "removed_appointments": removed,
    }


def hash_rate(min_seconds: float = 2.0, min_hashes: int = 5) -> dict:
    """Default-hasher encodes per second in one thread: the per-core ceiling of password login."""
    hasher = get_hasher("default")
    hasher.encode("medimeet-bench-warmup", hasher.salt())
    n = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    while n < min_hashes or time.perf_counter() - start < min_seconds:
        hasher.encode("medimeet-bench-password", hasher.salt())
        n += 1
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    return {
        "algorithm": hasher.algorithm,
        "params": hasher_params(hasher),
        "hashes": n,
        "seconds": wall,
        "per_second": n / wall,
        "cpu_per_hash_ms": 1000 * cpu / n,
    }


def hasher_params(hasher) -> str:
    """What sets the hasher's cost, in words: PBKDF2's iterations or Argon2's time/memory/lanes."""
    if hasattr(hasher, "iterations"):
        return f"{hasher.iterations:,} iterations"
    if hasattr(hasher, "memory_cost"):
        return f"time cost {hasher.time_cost}, memory {hasher.memory_cost:,} KiB, parallelism {hasher.parallelism}"
    return "default parameters"


def query_counts(email: str, password: str) -> dict:
    """SQL queries of one API login and one GET /me/, counted with the test client."""
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    result: dict = {}
    with CaptureQueriesContext(connection) as ctx:
        response = client.post(
            "/api/v1/auth/login/",
            {"email": email, "password": password, "device_name": "bench-probe"},
            content_type="application/json",
        )
    result["login"] = {"status": response.status_code, "queries": [q["sql"] for q in ctx.captured_queries]}
    access = response.json().get("access") if response.status_code == 200 else None
    if access:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer {access}")
        result["me"] = {"status": response.status_code, "queries": [q["sql"] for q in ctx.captured_queries]}
    return result


# --- EXPLAIN of the queries of one request ----------------------------------------------


def _plan_nodes(node: dict, out: list[dict]) -> None:
    out.append(node)
    for child in node.get("Plans", []):
        _plan_nodes(child, out)


def _label(sql: str) -> str:
    low = sql.lower()
    table = low.split(" from ", 1)[1].split()[0].strip('"') if " from " in low else low.split()[0]
    if low.startswith('select 1 as "a"'):
        return f"exists {table}"
    if " for update" in low:
        return f"{table} for update"
    if low.startswith("select count(*)"):
        return "count"
    if "doctors_doctorprofile_languages" in low and "in (" in low:
        return "prefetch languages"
    if table == "doctors_doctorservice" and "in (" in low:
        return "prefetch services"
    if table == "doctors_specialization":
        return "specialization lookup"
    limits = re.findall(r" limit (\d+)", low)  # the last one is the outer query's (EXISTS subqueries say LIMIT 1)
    if table == "doctors_doctorprofile" and limits and int(limits[-1]) > 1:
        return "page"
    return table


def explain(sql: str) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) of one captured SELECT, summarised."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
        raw = cursor.fetchone()[0]
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        text = "\n".join(row[0] for row in cursor.fetchall())
    doc = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    nodes: list[dict] = []
    _plan_nodes(doc["Plan"], nodes)
    scans = []
    for n in nodes:
        kind = n["Node Type"]
        if "Scan" in kind and n.get("Relation Name") or n.get("Index Name"):
            what = f"{kind} {n.get('Index Name') or n.get('Relation Name')}"
            if n.get("Relation Name") and n.get("Index Name"):
                what += f" on {n['Relation Name']}"
            rows = n.get("Actual Rows", 0) * n.get("Actual Loops", 1)
            scans.append(f"{what} ({rows:,} rows)")
    top = doc["Plan"]
    return {
        "planning_ms": round(doc.get("Planning Time", 0.0), 3),
        "execution_ms": round(doc.get("Execution Time", 0.0), 3),
        "rows": top.get("Actual Rows"),
        "shared_hit": top.get("Shared Hit Blocks", 0),
        "shared_read": top.get("Shared Read Blocks", 0),
        "top": top["Node Type"],
        "sort": sorted({n.get("Sort Method", "") for n in nodes if n.get("Sort Method")}),
        "scans": scans,
        "text": text,
    }


def capture(method: str, path: str, *, token: str = "", data: dict | None = None, rollback: bool = False) -> dict:
    """Run one request through the test client; its status, time and SQL (with EXPLAIN of
    each SELECT, run after the request)."""
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    client.get(path, **headers) if method == "GET" else None  # warm caches (the first request imports and loads)
    t0 = time.perf_counter()
    with CaptureQueriesContext(connection) as ctx:
        if rollback:
            with transaction.atomic():
                response = _send(client, method, path, data, headers)
                steps = [response]
                if response.status_code == 201 and response.json().get("status") == "held":  # a hold: confirm it too
                    appointment = response.json()["id"]
                    steps.append(_send(client, "POST", f"/api/v1/appointments/{appointment}/confirm/", {"reason": "Bench probe"}, headers))
                transaction.set_rollback(True)
        else:
            response = _send(client, method, path, data, headers)
            steps = [response]
    elapsed = time.perf_counter() - t0
    queries = [q["sql"] for q in ctx.captured_queries]
    statements = [q for q in queries if not q.upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))]
    explained = []
    for sql in statements:
        if sql.lstrip().upper().startswith("SELECT"):
            explained.append({"label": _label(sql), "sql": sql, **explain(sql)})
    return {
        "status": [r.status_code for r in steps],
        "ms": round(1000 * elapsed, 1),
        "queries": len(statements),
        "statements": [q[:160] for q in statements],
        "explain": explained,
        "body": steps[0].content[:300].decode(errors="replace") if steps[0].status_code >= 400 else "",
        "count": _json_count(steps[0]),
    }


def _json_count(response) -> int | None:
    try:
        value = response.json().get("count")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def _send(client, method: str, path: str, data: dict | None, headers: dict):
    if method == "GET":
        return client.get(path, **headers)
    return client.post(path, data or {}, content_type="application/json", **headers)


def probe_requests(combos: dict[str, str], slots_target: list | None, hold_target: list | None, token: str) -> dict:
    out: dict = {"search": {}, "slots": None, "hold": None}
    for name, query in combos.items():
        out["search"][name] = capture("GET", f"/api/v1/doctors/?{query}")
    if slots_target:
        out["slots"] = [
            capture("GET", f"/api/v1/doctors/{slug}/slots/?service={service}&start_date={start_date}&end_date={end_date}&timezone={tz}")
            for slug, service, start_date, end_date, tz in slots_target
        ]
    if hold_target and token:
        service, start = hold_target
        # One booking as the `book` scenario makes it: one request with the reason.
        out["hold"] = capture("POST", "/api/v1/appointments/", token=token, data={"service": service, "start": start, "reason": "Bench probe"}, rollback=True)
    return out


def web_sessions(emails: list[str]) -> list[str]:
    """A signed-in browser session (the ``sessionid`` cookie) per user, made by Django's own login
    (the test client's force_login): the sandbox gateway's card page is a web page, not the API."""
    from django.test import Client

    cookies = []
    for user in User.objects.filter(email__in=emails).order_by("email"):
        client = Client()
        client.force_login(user)
        cookies.append((user.email, client.cookies[settings.SESSION_COOKIE_NAME].value))
    by_email = dict(cookies)
    return [by_email[e] for e in emails]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_seed = sub.add_parser("seed")
    p_seed.add_argument("--users", type=int, required=True)
    p_seed.add_argument("--password", required=True)
    p_seed.add_argument("--out", required=True)
    p_probe = sub.add_parser("probe")
    p_probe.add_argument("--email", required=True)
    p_probe.add_argument("--password", required=True)
    p_probe.add_argument("--hash-seconds", type=float, default=2.0)
    p_probe.add_argument("--search-combos", help="JSON {name: query string}: capture and EXPLAIN one search request each")
    p_probe.add_argument("--slots-target", help="JSON [[slug, service, start_date, end_date, timezone], ...]")
    p_probe.add_argument("--hold-target", help="JSON [service, start]: one booking (one request with the reason), rolled back")
    p_probe.add_argument("--token", default="", help="access token of the patient for --hold-target")
    p_probe.add_argument("--out", required=True)
    p_seed.add_argument("--targets", action="store_true", help="also write the slots and booking targets (needs the data set)")
    p_seed.add_argument("--booking-workers", type=int, default=0)
    p_seed.add_argument("--per-worker", type=int, default=500)
    p_seed.add_argument("--contention-items", type=int, default=2000)
    p_seed.add_argument("--sessions", action="store_true", help="also a web session per user (sandbox card page of the booking+payment flow)")
    p_data = sub.add_parser("dataset")
    p_data.add_argument("--size", choices=["full", "quick"], default="full")
    p_data.add_argument("--out", required=True)
    p_verify = sub.add_parser("verify")
    p_verify.add_argument("--out", required=True)
    args = parser.parse_args()

    if connection.vendor != "postgresql":
        sys.exit(f"bench/setup_data.py: expected PostgreSQL, got {connection.vendor} (is DATABASE_URL set?)")
    if args.command == "dataset":
        data = dataset.ensure(dataset.FULL if args.size == "full" else dataset.QUICK, log=lambda m: print(m, file=sys.stderr, flush=True))
    elif args.command == "seed":
        data = seed(args.users, args.password)
        if args.sessions:
            data["sessions"] = web_sessions(data["users"])
        if args.targets:
            marker = dataset.marker_read()
            if marker is None:
                sys.exit("bench/setup_data.py seed --targets: no bench data set (run the dataset command first)")
            data["targets"] = dataset.targets(
                marker, booking_workers=args.booking_workers, per_worker=args.per_worker, contention_items=args.contention_items
            )
    elif args.command == "verify":
        marker = dataset.marker_read() or {}
        data = dataset.verify(EMAIL_DOMAIN, marker.get("contention", []))
    else:
        data = {"hash_rate": hash_rate(args.hash_seconds), "queries": query_counts(args.email, args.password)}
        data["settings"] = {"conn_max_age": settings.DATABASES["default"].get("CONN_MAX_AGE")}
        if args.search_combos or args.slots_target or args.hold_target:
            data["requests"] = probe_requests(
                json.loads(args.search_combos or "{}"),
                json.loads(args.slots_target) if args.slots_target else None,
                json.loads(args.hold_target) if args.hold_target else None,
                args.token,
            )
    Path(args.out).write_text(json.dumps(data))


if __name__ == "__main__":
    main()
