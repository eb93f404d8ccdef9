"""Container health check: GET /health/ on the local gunicorn as the proxy would send it (an
allowed host, X-Forwarded-Proto https so SECURE_SSL_REDIRECT does not answer 301). Exit 0 when
it answers 200."""

import os
import sys
import urllib.request

host = (os.environ.get("ALLOWED_HOSTS", "localhost").split(",")[0].strip() or "localhost").lstrip(".")
port = os.environ.get("PORT", "8000")
request = urllib.request.Request(f"http://127.0.0.1:{port}/health/", headers={"Host": host, "X-Forwarded-Proto": "https"})
try:
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (a fixed local URL)
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # noqa: BLE001 (any failure is "unhealthy")
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
