"""Django-side helpers of the benchmark harness, run by bench/run.py in a subprocess.

They need the project's settings (the same environment as the server under test), so they
run with Django set up, while the load generator in run.py stays a light httpx process.

    python bench/setup_data.py seed --users 200 --password ... --out var/bench-seed.json
    python bench/setup_data.py probe --out var/bench-probe.json

``seed``  creates N verified patients (User + allauth EmailAddress + PatientProfile with some
          encrypted PHI) and one API session with an access token per user. The password is
          hashed once with the default hasher and the same encoded hash is given to every user:
          hashing N passwords at about 5 hashes/s would dominate the setup, and the cost of
          *checking* a password does not depend on its salt.
``probe`` measures the ceiling of the login endpoint (default-hasher hashes/s on one core, in
          a tight loop) and counts the SQL queries of one login and one ``GET /me/`` with the
          test client.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

# The project tree under test: bench/run.py sets it (the working tree or an export of --ref).
PROJECT = Path(os.environ.get("BENCH_PROJECT_DIR") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medimeet.settings.local")

import django  # noqa: E402

django.setup()

from allauth.account.models import EmailAddress  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import get_hasher, make_password  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework_simplejwt.settings import api_settings as jwt_settings  # noqa: E402

from accounts.models import ApiSession, PatientProfile, User  # noqa: E402
from accounts.tokens import tokens_issue  # noqa: E402

EMAIL_DOMAIN = "bench.medimeet.local"


def bench_email(i: int) -> str:
    return f"bench-patient-{i:05d}@{EMAIL_DOMAIN}"


def seed(users: int, password: str) -> dict:
    encoded = make_password(password)  # one hash with the default hasher (see module docstring)
    now = timezone.now()
    with transaction.atomic():
        User.objects.filter(email__endswith="@" + EMAIL_DOMAIN).delete()
        created = User.objects.bulk_create(
            [
                User(
                    email=bench_email(i),
                    password=encoded,
                    first_name="Bench",
                    last_name=f"Patient {i}",
                    role=User.Role.PATIENT,
                    timezone="Europe/London",
                    date_joined=now,
                )
                for i in range(users)
            ],
            batch_size=500,
        )
        EmailAddress.objects.bulk_create(
            [EmailAddress(user=u, email=u.email, verified=True, primary=True) for u in created], batch_size=500
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
                for i, u in enumerate(created)
            ],
            batch_size=500,
        )
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
        "hasher": get_hasher("default").algorithm,
        "access_token_lifetime_s": int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
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
        "iterations": getattr(hasher, "iterations", None),
        "hashes": n,
        "seconds": wall,
        "per_second": n / wall,
        "cpu_per_hash_ms": 1000 * cpu / n,
    }


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
    p_probe.add_argument("--out", required=True)
    args = parser.parse_args()

    if connection.vendor != "postgresql":
        sys.exit(f"bench/setup_data.py: expected PostgreSQL, got {connection.vendor} (is DATABASE_URL set?)")
    if args.command == "seed":
        data = seed(args.users, args.password)
    else:
        data = {"hash_rate": hash_rate(args.hash_seconds), "queries": query_counts(args.email, args.password)}
        data["settings"] = {"conn_max_age": settings.DATABASES["default"].get("CONN_MAX_AGE")}
    Path(args.out).write_text(json.dumps(data))


if __name__ == "__main__":
    main()
