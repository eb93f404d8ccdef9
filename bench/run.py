"""MediMeet benchmark harness (`make bench`).

Creates a throw-away PostgreSQL database, seeds users, starts the ASGI server (Daphne) as a
child process with the production password hasher and relaxed throttles, then drives it with
an asyncio + httpx closed-loop client: each of C workers sends one request, waits for the
answer, sends the next, for a fixed duration per concurrency level. Reports throughput,
latency percentiles, error rate and CPU use of the server, PostgreSQL, Redis and the client,
prints a markdown table and updates its section of docs/performance.md.

Step 1 scenarios:
  login   POST /api/v1/auth/login/ with rotating users (password check + session + tokens)
  me      GET  /api/v1/auth/me/ with pre-issued access tokens, rotating users
  health  GET  /health/: the middleware stack and `SELECT 1`, the floor under every request

    .venv/bin/python bench/run.py                 # full run (`make bench`), writes docs/performance.md
    .venv/bin/python bench/run.py --quick         # CI smoke, < 60 s (`make bench BENCH_ARGS=--quick`)
    .venv/bin/python bench/run.py --scenarios me --concurrency 1,8 --duration 5 --no-write
    .venv/bin/python bench/run.py --ref HEAD      # serve a clean export of a commit, not the work tree
    .venv/bin/python bench/run.py --server-env DB_POOL=false --no-write   # try a setting

Exit status: 0 when every response was 2xx, 1 when some were not, 2 when the run could not be
made (service down, server did not start), 130 when interrupted. The server is stopped in
every case.

Environment:
  BENCH_PG_ADMIN_URL  a superuser connection (default postgres://postgres@127.0.0.1:5432/postgres)
  BENCH_DATABASE_URL  what the server uses (default postgres://medimeet_bench@127.0.0.1:5432/medimeet_bench):
                      the database is dropped and re-created on every run, owned by that role, which is
                      created if missing as a non-superuser with a CONNECTION LIMIT (--pg-connection-limit),
                      so that a connection leak under load cannot starve other users of a shared PostgreSQL
  BENCH_REDIS_URL     default redis://127.0.0.1:6379/3, flushed on every run: a Redis database nothing
                      else uses
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
DOC = ROOT / "docs" / "performance.md"
SERVER_LOG = VAR / "bench-server.log"
VENV_BIN = ROOT / ".venv" / "bin"
# The project tree the server runs from: the working tree, or an export of --ref.
PROJECT = ROOT
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
DAPHNE = str(VENV_BIN / "daphne")
SETUP_SCRIPT = str(Path(__file__).resolve().parent / "setup_data.py")

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://medimeet_bench@127.0.0.1:5432/medimeet_bench")
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
PASSWORD = "medimeet-bench-2026"
UNLIMITED = "1000000/min"
SECTION = "auth"

START_HINT = {
    "postgres": "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "redis": 'start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
}

try:
    import httpx
except ImportError:  # pragma: no cover - depends on the interpreter used
    sys.exit(f"bench/run.py needs httpx: run it with the project's virtualenv ({PYTHON} bench/run.py).")


class BenchError(Exception):
    """A problem the user must fix (service down, server did not start): printed, exit 2."""


# --- Environment --------------------------------------------------------------------------


EXTRA_ENV: dict[str, str] = {}  # --server-env KEY=VALUE, for experiments (recorded in the report)


def server_env() -> dict[str, str]:
    """The environment of the server and of the Django-side helpers (same settings for both)."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "medimeet.settings.local",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "DEBUG": "false",
            "THROTTLE_LOGIN": UNLIMITED,
            "THROTTLE_ANON": UNLIMITED,
            "THROTTLE_USER": UNLIMITED,
            # Tokens are issued during setup and must outlive the run; the lifetime does not
            # change what a request costs.
            "JWT_ACCESS_TOKEN_LIFETIME_SECONDS": "86400",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env["BENCH_PROJECT_DIR"] = str(PROJECT)
    env.update(EXTRA_ENV)
    return env


ENV_SUMMARY = (
    "DJANGO_SETTINGS_MODULE=medimeet.settings.local DEBUG=false "
    "DATABASE_URL=postgres://medimeet_bench@…/medimeet_bench REDIS_URL=redis://…/3 "
    f"THROTTLE_LOGIN=THROTTLE_ANON=THROTTLE_USER={UNLIMITED} JWT_ACCESS_TOKEN_LIFETIME_SECONDS=86400"
)


def check_services() -> None:
    import psycopg
    import redis

    try:
        with psycopg.connect(admin_dsn(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise BenchError(f"PostgreSQL is not reachable at {redact(PG_ADMIN_URL)}: {exc}\n  {START_HINT['postgres']}") from exc
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis is not reachable at {REDIS_URL}: {exc}\n  {START_HINT['redis']}") from exc


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(":" + parts.password + "@", ":***@"))
    return urlunsplit(parts)


def db_name() -> str:
    return urlsplit(DATABASE_URL).path.lstrip("/")


def admin_dsn() -> str:
    return PG_ADMIN_URL


def db_role() -> str:
    return urlsplit(DATABASE_URL).username or "postgres"


def recreate_database(connection_limit: int) -> None:
    import psycopg
    from psycopg import sql

    name, role = db_name(), db_role()
    if not re.fullmatch(r"[A-Za-z0-9_]*bench[A-Za-z0-9_]*", name):
        raise BenchError(f"Refusing to drop database {name!r}: the bench database name must contain 'bench'.")
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if role != "postgres":
            row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role]).fetchone()
            if row is None:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            elif row[0]:
                raise BenchError(f"Role {role!r} is a superuser: its connection limit would not apply.")
            conn.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(sql.Identifier(role), sql.Literal(connection_limit)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(role)))


def pg_sessions() -> int | None:
    """Sessions (connections) established to the bench database so far (PostgreSQL >= 14)."""
    import psycopg

    try:
        with psycopg.connect(admin_dsn(), autocommit=True) as conn:
            row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", [db_name()]).fetchone()
        return int(row[0]) if row else None
    except (psycopg.Error, TypeError):
        return None


def redis_connections() -> int | None:
    """Connections the Redis server has accepted so far (all databases)."""
    import redis

    try:
        return int(redis.Redis.from_url(REDIS_URL).info("stats")["total_connections_received"])
    except (redis.RedisError, KeyError, ValueError):
        return None


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def run_checked(args: list[str], what: str, timeout: float = 600) -> str:
    proc = subprocess.run(args, cwd=PROJECT, env=server_env(), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise BenchError(f"{what} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def machine_info() -> dict[str, str]:
    import psycopg
    import redis

    with psycopg.connect(admin_dsn()) as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
    redis_version = redis.Redis.from_url(REDIS_URL).info("server").get("redis_version", "?")
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = subprocess.run(
        [PYTHON, "-c", "import django, daphne, twisted; print(django.get_version(), daphne.__version__, twisted.__version__)"],
        capture_output=True, text=True, cwd=ROOT,
    ).stdout.split()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "postgres": pg_version.split()[0],
        "redis": redis_version,
        "django": versions[0] if versions else "?",
        "daphne": versions[1] if len(versions) > 1 else "?",
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def git_commit(ref: str | None = None, sha: str | None = None) -> str:
    if ref:
        return f"{sha} (`--ref {ref}`: the server ran from a clean export of that commit)"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return commit + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# --- CPU accounting (Linux /proc) ---------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int | str) -> tuple[str, float, float] | None:
    """(comm, own CPU seconds, CPU seconds of waited-for children) of a process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return comm, (int(fields[11]) + int(fields[12])) / CLK_TCK, (int(fields[13]) + int(fields[14])) / CLK_TCK


def cpu_snapshot(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far by the server, all postgres processes, redis, and this client."""
    snap = {"server": 0.0, "postgres": 0.0, "redis": 0.0}
    s = _stat(server_pid)
    if s:
        snap["server"] = s[1]
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            s = _stat(entry.name)
            if s and s[0] == "postgres":
                # utime+stime+cutime+cstime: the postmaster's reaped children count too, so
                # backends that exited during the level (one connection per request) are included.
                snap["postgres"] += s[1] + s[2]
            elif s and s[0].startswith("redis-server"):
                snap["redis"] += s[1]
    t = os.times()
    snap["client"] = t.user + t.system
    try:  # all CPU time used on the machine (not idle, not iowait), to tell other load apart
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        snap["machine"] = (sum(values[:3]) + sum(values[5:8])) / CLK_TCK  # user nice system irq softirq steal
    except (OSError, ValueError):
        pass
    return snap


def machine_busy(seconds: float = 1.0) -> float:
    """Cores' worth of CPU the machine used over ``seconds`` (while this harness is idle)."""

    def busy() -> float:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return (sum(values[:3]) + sum(values[5:8])) / CLK_TCK

    try:
        before = busy()
        time.sleep(seconds)
        return (busy() - before) / seconds
    except (OSError, ValueError):
        return 0.0


def wait_for_quiet(max_wait: float, threshold: float = 0.35) -> float:
    """On a shared machine, wait (at most ``max_wait`` s) until others use < ``threshold`` cores."""
    waited = 0.0
    while waited < max_wait:
        load = machine_busy()
        if load < threshold:
            break
        if waited == 0:
            log(f"  the machine is busy ({load:.2f} cores used by others): waiting up to {max_wait:.0f} s")
        waited += 1.0
    return waited


def python_speed(seconds: float = 0.5) -> float:
    """Millions of iterations/s of a fixed pure-Python loop: the same number before and after a
    run means the (shared) machine did not get slower in between."""

    def chunk() -> int:
        d: dict[int, str] = {}
        for i in range(10_000):
            d[i & 255] = str(i)
        return len(d)

    chunk()
    rates = []
    for _ in range(5):  # best of five short samples: robust to a momentary interruption
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds / 5:
            chunk()
            n += 10_000
        rates.append(n / (time.perf_counter() - start) / 1e6)
    return max(rates)


# --- Server -------------------------------------------------------------------------------


def export_ref(ref: str) -> tuple[Path, str]:
    """A clean copy of the committed tree at ``ref`` (git archive; the repository is only read),
    and the commit it is, resolved once (HEAD may move while the benchmark runs)."""
    proc = subprocess.run(["git", "rev-parse", "--verify", "--short", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"--ref {ref}: not a commit ({proc.stderr.strip()})")
    sha = proc.stdout.strip()
    exports = VAR / "bench-tree"
    if exports.exists():  # only the latest export is kept
        subprocess.run(["rm", "-rf", "--", str(exports)], check=True)
    target = exports / sha
    target.mkdir(parents=True)
    archive = subprocess.Popen(["git", "archive", "--format=tar", sha], cwd=ROOT, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise BenchError(f"git archive {ref} failed")
    return target, sha


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.log = None
        self.cmd = [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "medimeet.asgi:application"]

    @property
    def display_cmd(self) -> str:
        return " ".join(shlex.quote(os.path.relpath(a, ROOT) if a.startswith(str(ROOT)) else a) for a in self.cmd)

    def start(self) -> None:
        VAR.mkdir(exist_ok=True)
        self.log = open(SERVER_LOG, "w")
        # Own session: stopping it cannot reach anything but the server and its children.
        self.proc = subprocess.Popen(self.cmd, cwd=PROJECT, env=server_env(), stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/health/"
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"The server exited with code {self.proc.returncode} during start-up.\n{self.log_tail()}")
            try:
                r = httpx.get(url, timeout=2)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.25)
        raise BenchError(f"The server did not answer {url} within {timeout:.0f} s (last: {last}).\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = SERVER_LOG.read_text().splitlines()[-lines:]
        except OSError:
            return ""
        return f"--- last lines of {SERVER_LOG.relative_to(ROOT)} ---\n" + "\n".join(text)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        if self.log is not None:
            self.log.close()
            self.log = None


# --- Load generation ----------------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)  # seconds, every completed request
    statuses: dict[str, int] = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)  # first response body of each failing status
    elapsed: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used during the level
    pg_connections: int | None = None  # PostgreSQL sessions opened during the level
    redis_connections: int | None = None  # Redis connections accepted during the level
    waited: float = 0.0  # seconds spent waiting for a quiet machine before the level

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if not status.startswith("2"))

    @property
    def rps(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
        return ordered[rank] * 1000

    def cpu_pct(self, who: str) -> float:
        return 100 * self.cpu.get(who, 0.0) / self.elapsed if self.elapsed else 0.0

    def server_ms_per_request(self) -> float:
        return 1000 * self.cpu.get("server", 0.0) / self.count if self.count else float("nan")

    @property
    def ok(self) -> int:
        return self.count - self.errors

    def connections_per_request(self, which: str = "pg") -> float:
        n = self.pg_connections if which == "pg" else self.redis_connections
        return n / self.count if self.count and n is not None else float("nan")


class Scenario:
    name = ""
    description = ""

    def __init__(self, seed: dict) -> None:
        self.users: list[str] = seed["users"]
        self.tokens: list[str] = seed["tokens"]
        self.counter = 0

    def next_index(self) -> int:
        self.counter += 1
        return self.counter % len(self.users)

    async def request(self, client: httpx.AsyncClient) -> tuple[str, httpx.Response]:
        """Send one request; return its status as a string ("200", "429", "200-no-token", ...)."""
        raise NotImplementedError


class LoginScenario(Scenario):
    name = "login"
    description = "POST /api/v1/auth/login/, a different user each request"

    async def request(self, client):
        email = self.users[self.next_index()]
        r = await client.post("/api/v1/auth/login/", json={"email": email, "password": PASSWORD, "device_name": "bench"})
        if r.status_code == 200 and "access" not in r.json():
            return "200-no-token", r  # e.g. mfa_required: not what this scenario measures
        return str(r.status_code), r


class MeScenario(Scenario):
    name = "me"
    description = "GET /api/v1/auth/me/ with a pre-issued access token, a different user each request"

    async def request(self, client):
        token = self.tokens[self.next_index()]
        r = await client.get("/api/v1/auth/me/", headers={"Authorization": f"Bearer {token}"})
        return str(r.status_code), r


class HealthScenario(Scenario):
    name = "health"
    description = "GET /health/: the whole middleware stack and `SELECT 1`, the floor under every request"

    async def request(self, client):
        r = await client.get("/health/")
        return str(r.status_code), r


SCENARIOS = {s.name: s for s in (LoginScenario, MeScenario, HealthScenario)}

# Source address of worker i when each worker is its own client (the default): 127.0.0.2 + i.
# Linux answers on the whole 127.0.0.0/8, and the server sees one client IP per worker, as it
# would with distinct users; per-IP limits (throttles, allauth's login-failure limit) then
# apply per worker instead of to the whole load.


def worker_ip(i: int) -> str:
    n = 2 + i
    return f"127.0.{n // 250}.{n % 250 + 2}" if n >= 250 else f"127.0.0.{n}"


def make_client(base_url: str, connections: int, local_address: str | None) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    transport = httpx.AsyncHTTPTransport(http1=True, http2=False, limits=limits, local_address=local_address)
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=httpx.Timeout(300.0))


async def run_level(
    base_url: str, scenario: Scenario, concurrency: int, duration: float, server_pid: int | None, single_ip: bool = False
) -> Result:
    result = Result(scenario.name, concurrency)
    if single_ip:  # one client, `concurrency` connections, all from 127.0.0.1
        shared = make_client(base_url, concurrency, None)
        clients = [shared] * concurrency
    else:  # one client (one keep-alive connection) per worker, each from its own address
        clients = [make_client(base_url, 1, worker_ip(i)) for i in range(concurrency)]
    try:
        # Open the connections before the clock starts.
        await asyncio.gather(*(c.get("/health/") for c in clients))
        before = cpu_snapshot(server_pid) if server_pid else {}
        sessions_before = pg_sessions() if server_pid else None
        redis_before = redis_connections() if server_pid else None
        start = time.perf_counter()
        deadline = start + duration

        async def worker(client: httpx.AsyncClient) -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                response = None
                try:
                    status, response = await scenario.request(client)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                result.latencies.append(time.perf_counter() - t0)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if not status.startswith("2") and status not in result.samples:
                    result.samples[status] = response.text[:300] if response is not None else status

        await asyncio.gather(*(worker(c) for c in clients))
        # Requests started before the deadline are waited for and counted: elapsed runs until
        # the last one answered, so req/s stays completed/elapsed even when a request takes
        # longer than the window (login at high concurrency).
        result.elapsed = time.perf_counter() - start
        if server_pid:
            after = cpu_snapshot(server_pid)
            result.cpu = {k: after[k] - before.get(k, 0.0) for k in after}
            if "machine" in result.cpu:
                ours = sum(result.cpu[k] for k in ("server", "postgres", "redis", "client"))
                result.cpu["other"] = max(result.cpu.pop("machine") - ours, 0.0)
            redis_after = redis_connections()
            if redis_before is not None and redis_after is not None:
                result.redis_connections = redis_after - redis_before - 1  # minus our own INFO connection
    finally:
        for c in dict.fromkeys(clients):
            await c.aclose()
    if sessions_before is not None:
        await asyncio.sleep(1.1)  # PostgreSQL flushes session statistics about once a second
        sessions_after = pg_sessions()
        if sessions_after is not None:
            result.pg_connections = sessions_after - sessions_before
    return result


# --- Report -------------------------------------------------------------------------------


def fmt_ms(x: float) -> str:
    if x != x:  # nan
        return "–"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def fmt_ratio(x: float) -> str:
    return "–" if x != x else f"{x:.2f}"


def table(results: list[Result]) -> str:
    head = (
        "| Scenario | Conc. | Requests | Req/s | p50 ms | p95 ms | p99 ms | Errors | Server CPU ms/req "
        "| CPU % server / pg / redis / client / other | New conns/req PG / Redis |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for r in results:
        err = f"{r.errors} ({100 * r.errors / r.count:.1f}%)" if r.count else "–"
        if r.errors:
            err += " " + ", ".join(f"{k}×{v}" for k, v in sorted(r.statuses.items()) if not k.startswith("2"))
        cpu = " / ".join(f"{r.cpu_pct(k):.0f}" if k in r.cpu else "–" for k in ("server", "postgres", "redis", "client", "other"))
        rows.append(
            f"| {r.scenario} | {r.concurrency} | {r.count:,} | {r.rps:,.1f} | {fmt_ms(r.pct(50))} | {fmt_ms(r.pct(95))} "
            f"| {fmt_ms(r.pct(99))} | {err} | {fmt_ms(r.server_ms_per_request())} | {cpu} "
            f"| {fmt_ratio(r.connections_per_request('pg'))} / {fmt_ratio(r.connections_per_request('redis'))} |"
        )
    return head + "\n".join(rows) + "\n"


ERROR_SIGNATURES = [
    "too many connections for role",
    "too many clients already",
    "remaining connection slots are reserved",
    "MaxConnectionsError",
    "Too many connections",
    "OperationalError",
    "TimeoutError",
    "Internal Server Error",
]


def log_signatures() -> dict[str, int]:
    """How often known failure messages appear in the server log of this run."""
    try:
        text = SERVER_LOG.read_text(errors="replace")
    except OSError:
        return {}
    counts = {sig: text.count(sig) for sig in ERROR_SIGNATURES}
    return {sig: n for sig, n in counts.items() if n}


def best(results: list[Result], scenario: str) -> Result | None:
    """The level with the highest throughput, among those with (almost) no errors if any."""
    rows = [r for r in results if r.scenario == scenario and r.count]
    clean = [r for r in rows if r.errors <= 0.01 * r.count]
    return max(clean or rows, key=lambda r: r.rps) if rows else None


def interpretation(results: list[Result], probe: dict) -> str:
    """Observations computed from this run's numbers (the wording only states what they show)."""
    hr = probe.get("hash_rate", {})
    rate = 1000 / hr["cpu_per_hash_ms"] if hr.get("cpu_per_hash_ms") else None  # per CPU-second: one core
    cores = os.cpu_count() or 1
    lines = []
    login, me, health = best(results, "login"), best(results, "me"), best(results, "health")
    if login and me:
        lines.append(
            f"- **me vs login:** the best `me` throughput ({me.rps:,.0f} req/s at concurrency {me.concurrency}) is "
            f"**{me.rps / login.rps:,.0f}×** the best `login` throughput ({login.rps:,.1f} req/s at concurrency "
            f"{login.concurrency}); one login costs the server as much CPU as "
            f"~{login.server_ms_per_request() / me.server_ms_per_request():,.0f} `me` requests."
        )
    if login and rate:
        hash_ms = hr["cpu_per_hash_ms"]
        share = 100 * min(hash_ms / login.server_ms_per_request(), 1)
        lines.append(
            f"- **Login is bounded by password hashing.** `{hr['algorithm']}` with {hr['iterations']:,} iterations "
            f"(Django's default, what production runs) does **{rate:.2f} hashes/s on one core** in a tight loop "
            f"({hash_ms:.0f} ms of CPU per hash; {hr['per_second']:.2f}/s of wall-clock time on this shared machine). A login costs the server {login.server_ms_per_request():.0f} ms of CPU, "
            f"so the hash is ~{share:.0f}% of it. Ceiling: {rate:.1f} logins/s per core, {rate * cores:.1f}/s for all "
            f"{cores} cores; the best measured rate, {login.rps:.1f}/s, is {100 * login.rps / (rate * cores):.0f}% of "
            f"the {cores}-core ceiling (the client and PostgreSQL share those cores)."
        )
        one = next((r for r in results if r.scenario == "login" and r.concurrency == 1 and r.count), None)
        top = max((r for r in results if r.scenario == "login" and r.count), key=lambda r: r.concurrency)
        if one and login.concurrency > 1:
            lines.append(
                f"- Concurrent logins do hash in parallel: Django's ASGI handler runs each request's synchronous "
                f"code in its own thread and `hashlib.pbkdf2_hmac` releases the GIL, so {login.concurrency} concurrent "
                f"logins reach {login.rps / one.rps:.1f}× the rate of one (server CPU {login.cpu_pct('server'):.0f}% "
                f"of a core)."
                + (
                    f" Beyond the cores they only queue: at concurrency {top.concurrency} the rate is "
                    f"{top.rps:.1f}/s and p50 is {fmt_ms(top.pct(50))} ms (≈ {top.concurrency} / {top.rps:.1f}/s), against "
                    f"{fmt_ms(one.pct(50))} ms alone."
                    if top.concurrency > login.concurrency else ""
                )
                + " A burst of logins takes the cores from every other request on the machine; the login throttle "
                "and lockout, not a cheaper hash, are the defence to keep."
            )
    if me:
        text = (
            f"- **me** costs the server {me.server_ms_per_request():.1f} ms of CPU per request at its best level "
            f"(server at {me.cpu_pct('server'):.0f}% of one core; a Python process is held to about one core by "
            f"the GIL, so one Daphne process tops out near {1000 / me.server_ms_per_request():,.0f} req/s)."
        )
        same = next((r for r in results if r.scenario == "health" and r.concurrency == me.concurrency and r.count), health)
        if same:
            text += (
                f" The floor under any request (`/health/`: middleware stack and `SELECT 1`, at the same concurrency) "
                f"is {same.server_ms_per_request():.1f} ms of server CPU, so ~"
                f"{100 * min(same.server_ms_per_request() / me.server_ms_per_request(), 1):.0f}% of `me` is the "
                "server stack rather than the view."
            )
        lines.append(text)
    def per_request(attr: str) -> dict[str, float]:
        """New connections per request, by scenario."""
        out = {}
        for name in dict.fromkeys(r.scenario for r in results):
            rows = [r for r in results if r.scenario == name and getattr(r, attr) is not None and r.count]
            if rows:
                out[name] = sum(getattr(r, attr) for r in rows) / sum(r.count for r in rows)
        return out

    def listing(values: dict[str, float]) -> str:
        return ", ".join(f"{name} {v:.2f}" for name, v in values.items())

    pg, rd = per_request("pg_connections"), per_request("redis_connections")
    if pg and max(pg.values()) >= 0.3:
        lines.append(
            f"- **A new PostgreSQL connection per request** (new connections per request: {listing(pg)}). Under "
            "ASGI, Django runs each request's synchronous code in a new thread and database connections are per "
            "thread, so the persistent connections of `CONN_MAX_AGE > 0` are never reused: each request pays a "
            "connection set-up (a PostgreSQL backend fork, visible in the pg CPU column) and leaves its "
            "connection open until the thread is garbage-collected, which can exhaust PostgreSQL's "
            "`max_connections` under load. `CONN_MAX_AGE=0` closes them at the end of the request; a connection "
            "pool (Django's `OPTIONS={\"pool\": ...}` with psycopg_pool) also removes the set-up."
        )
    elif pg:
        lines.append(f"- PostgreSQL connections are reused (new connections per request: {listing(pg)}).")
    if rd and max(rd.values()) >= 0.3:
        lines.append(
            f"- **A new Redis connection per request that uses the cache** (new connections per request: "
            f"{listing(rd)}; the throttles use the cache, `/health/` does not). Under ASGI the `caches` handler "
            "gives each request its own cache object and Django's `RedisCache` keeps its connection pool on that "
            "object, so the pool is never shared between requests. A cache backend that keeps the pools per "
            "process (a small `RedisCache` subclass) fixes it."
        )
    elif rd:
        lines.append(f"- Redis connections are reused (new connections per request: {listing(rd)}).")
    disturbed = [r for r in results if r.cpu_pct("other") > 25]
    if disturbed:
        lines.append(
            "- **Other load on the machine** during " + ", ".join(
                f"{r.scenario}@{r.concurrency} ({r.cpu_pct('other'):.0f}% of a core)" for r in disturbed)
            + ": those rows are pessimistic; re-run them to confirm."
        )
    if me and any(r.scenario == "me" for r in results):
        lines.append(
            f"- The client shares the cores (client CPU {me.cpu_pct('client'):.0f}% of a core at the best `me` level): "
            "absolute req/s understate a dedicated server; compare ratios within one run."
        )
    q = probe.get("queries", {})
    if q.get("me") and q.get("login"):
        lines.append(
            f"- SQL per request (test client, same settings, warm connection): login {len(q['login']['queries'])} "
            f"queries, me {len(q['me']['queries'])} queries."
        )
    errors = [r for r in results if r.errors]
    if errors:
        causes = ", ".join(f"`{sig}` ×{n}" for sig, n in log_signatures().items())
        samples: dict[str, str] = {}
        for r in errors:
            for status, body in r.samples.items():
                samples.setdefault(f"{r.scenario} {status}", " ".join(body.split())[:160])
        lines.append(
            "- **Errors seen:** " + "; ".join(f"{r.scenario}@{r.concurrency}: {r.errors}/{r.count}" for r in errors)
            + (f". Server log: {causes}" if causes else "")
            + f" (`{SERVER_LOG.relative_to(ROOT)}`). First response of each kind: "
            + "; ".join(f"{k}: `{v}`" for k, v in samples.items()) + "."
        )
        if any("AUTH_007" in body for r in errors if r.scenario == "login" for body in r.samples.values()):
            lines.append(
                "- **Correct logins refused with AUTH_007 (429, \"too many failed sign-in attempts\").** allauth's "
                "`login_failed` limit (`20/m/ip` in ACCOUNT_RATE_LIMITS) is *consumed before* the password check and "
                "refunded only after a success, so more than 20 logins in flight from one IP are refused even when "
                "every password is right; its cache lock also gives up after 1 s under contention and then counts "
                "as limited."
            )
    else:
        lines.append("- No errors: every response was 2xx.")
    return "\n".join(lines) + "\n"


DOC_HEADER = """# Performance

Benchmarks of MediMeet, one section per feature area. Every figure here was produced by the
harness in `bench/`; run it with:

    make bench                                   # full run: .venv/bin/python bench/run.py; rewrites its sections below
    make bench BENCH_ARGS="--quick --no-write"   # CI smoke, < 60 s, prints the table only
    .venv/bin/python bench/run.py --help         # --scenarios, --concurrency, --duration, --ref, --server-env, ...

The harness needs PostgreSQL and Redis running (it says how to start them if they are not).
It drops and re-creates the database `medimeet_bench`, owned by a non-superuser role
`medimeet_bench` limited to 50 connections (so that a connection leak under load cannot starve
other users of a shared PostgreSQL), flushes Redis database 3, seeds its own users, starts the
server itself (Daphne; its output goes to `var/bench-server.log`) and stops it at the end, also
on Ctrl-C or an error. `--ref HEAD` serves a clean `git archive` export of a commit instead of
the working tree.

Rules:

- **Figures come with the command that produced them**, with the commit, the date and the
  machine. A figure without its command is not kept.
- Performance figures live here, in benchmarks, never in timed tests.
- The load generator and the server share the machine (2 cores, shared with other work):
  absolute numbers are pessimistic and noisy, **ratios within one run are worth more than
  absolute times**. The `other` CPU column shows how much the rest of the machine used during
  each level; re-run rows where it is high.

Layout: each harness section sits between `<!-- bench:NAME:start -->` and
`<!-- bench:NAME:end -->` markers and is rewritten by its run; new areas (search, slots,
booking, ...) get their own NAME and are added above the marker line below. Hand-written notes
go in *History* at the end, each with its commit and command.

"""


def render_section(results, probe, info, command, server_cmd, started, commit, args, speed) -> str:
    hr = probe.get("hash_rate", {})
    scen = ", ".join(f"`{n}` ({SCENARIOS[n].description})" for n in args.scenarios)
    return (
        "## Auth: API login and `GET /api/v1/auth/me/` (Step 1)\n\n"
        f"- **Date:** {started:%Y-%m-%d %H:%M} UTC\n"
        f"- **Commit:** {commit}\n"
        f"- **Machine:** {info['nproc']} cores ({info['cpu']}), load average before the run {info['loadavg']}; "
        f"Python {info['python']}, PostgreSQL {info['postgres']}, Redis {info['redis']}, Django {info['django']}, "
        f"Daphne {info['daphne']}\n"
        f"- **Command:** `{command}`\n"
        f"- **Server:** one process, `{server_cmd}`, environment `{ENV_SUMMARY}`"
        + (" plus `" + " ".join(f"{k}={v}" for k, v in EXTRA_ENV.items()) + "`" if EXTRA_ENV else "")
        + "\n"
        "- **Load:** closed loop, asyncio + httpx (HTTP/1.1 keep-alive, one connection per worker, "
        + ("all workers from 127.0.0.1" if args.single_ip else "each worker its own client address 127.0.0.N")
        + "), "
        f"{args.duration:g} s per level after a {args.warmup:g} s warm-up, {args.users} seeded patients; scenarios: {scen}\n"
        f"- **Password hash ceiling (same run, before the server starts):** "
        f"{1000 / hr['cpu_per_hash_ms'] if hr.get('cpu_per_hash_ms') else float('nan'):.2f} "
        f"`{hr.get('algorithm', '?')}` hashes per CPU-second on one core ({hr.get('iterations', 0):,} iterations; "
        f"{hr.get('per_second', float('nan')):.2f}/s of wall-clock time)\n"
        + (
            f"- **Quiet machine:** before each level the harness waited up to {args.idle_wait:g} s for other load "
            f"to drop below a third of a core (waited {sum(r.waited for r in results):.0f} s in all"
            + (f"; gave up waiting before {', '.join(f'{r.scenario}@{r.concurrency}' for r in results if r.waited >= args.idle_wait)}"
               if any(r.waited >= args.idle_wait for r in results) else "")
            + ")\n"
            if args.idle_wait > 0 else ""
        )
        + f"- **Machine speed check:** a fixed pure-Python loop ran at {speed['before']:.2f} M iterations/s "
        f"before the run and {speed['after']:.2f} after"
        + (" — **the machine got slower or busier during the run: compare with care**"
           if min(speed.values()) < 0.85 * max(speed.values()) else "")
        + "\n\n"
        + table(results)
        + "\nErrors are non-2xx responses and transport errors. CPU % is of one core over the level "
        "(server = the Daphne process; pg = all postgres processes, including backends that exited; client = the "
        "load generator; other = everything else on the machine, i.e. disturbance from other load). New conns/req = connections the server opened to PostgreSQL (pg_stat_database.sessions) and "
        "to Redis (INFO total_connections_received) during the level, per request. "
        "Latency is measured in the client, so it includes client-side queueing on the shared cores.\n\n"
        "**Interpretation**\n\n"
        + interpretation(results, probe)
        + "\n**Setup notes.** Settings are `medimeet.settings.local` with `DEBUG=false`: `production.py` requires real "
        "secrets (SECRET_KEY, FIELD_ENCRYPTION_KEYS, ...) and adds HTTPS redirects/HSTS/secure cookies, which do not "
        "change the work these endpoints do; the field-encryption key is derived from SECRET_KEY instead of "
        "FIELD_ENCRYPTION_KEYS (same Fernet cost). The password hasher is Django's default PBKDF2, as in production. "
        "Throttles are raised so that the code is measured, not the limits; the access-token "
        "lifetime is raised because tokens are issued before the run. Seeded users share one password hash "
        "(hashing each user's password at ~5/s would dominate the setup; verifying costs the same). "
        "Each level starts with an empty Redis cache (throttle histories).\n"
    )


NEW_SECTIONS_ABOVE = "<!-- bench: new sections go above this line -->"


def update_doc(section: str) -> None:
    start, end = f"<!-- bench:{SECTION}:start -->", f"<!-- bench:{SECTION}:end -->"
    block = f"{start}\n{section}{end}"
    DOC.parent.mkdir(exist_ok=True)
    text = DOC.read_text() if DOC.exists() else DOC_HEADER
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    elif NEW_SECTIONS_ABOVE in text:  # keep hand-written parts (history) below the sections
        i = text.index(NEW_SECTIONS_ABOVE)
        text = text[:i] + block + "\n\n" + text[i:]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n\n" + NEW_SECTIONS_ABOVE + "\n"
    DOC.write_text(text)


# --- Main ---------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI smoke: short levels (2 s, concurrency 1,4), finishes in < 60 s")
    parser.add_argument("--duration", type=float, help="seconds per concurrency level (default 10; 2 with --quick)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per scenario (default 3; 0.5 with --quick)")
    parser.add_argument("--concurrency", help="comma-separated levels (default 1,4,16,32; 1,4 with --quick)")
    parser.add_argument("--scenarios", default="login,me,health", help=f"comma-separated, from {','.join(SCENARIOS)} (default: all)")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the server and setup (repeatable), e.g. DB_POOL=false")
    parser.add_argument("--users", type=int, help="seeded users (default 200; 50 with --quick)")
    parser.add_argument("--port", type=int, help="server port (default: a free one)")
    parser.add_argument("--pg-connection-limit", type=int, default=50,
                        help="CONNECTION LIMIT of the bench role (default 50, half of a default max_connections)")
    parser.add_argument("--idle-wait", type=float,
                        help="before each level wait up to this many seconds for other load on the (shared) "
                        "machine to drop below a third of a core (default 60; 0 with --quick)")
    parser.add_argument("--single-ip", action="store_true",
                        help="all workers share one client from 127.0.0.1 (default: each worker is a client with its "
                        "own source address 127.0.0.N, like distinct users; per-IP limits then apply per worker)")
    parser.add_argument("--ref", help="run the server from a clean export of this git commit (git archive) "
                        "instead of the working tree, e.g. HEAD")
    parser.add_argument("--no-write", action="store_true", help=f"print only; do not update {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    args.duration = args.duration if args.duration is not None else (2.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 3.0)
    args.users = args.users or (50 if args.quick else 200)
    args.idle_wait = args.idle_wait if args.idle_wait is not None else (0.0 if args.quick else 60.0)
    try:
        args.concurrency = [int(c) for c in (args.concurrency or ("1,4" if args.quick else "1,4,16,32")).split(",") if c.strip()]
    except ValueError:
        parser.error("--concurrency takes comma-separated integers, e.g. 1,4,16")
    if not args.concurrency or min(args.concurrency) < 1:
        parser.error("--concurrency levels must be >= 1")
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown or not args.scenarios:
        parser.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    for item in args.server_env:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            parser.error(f"--server-env takes KEY=VALUE, got {item!r}")
        EXTRA_ENV[key] = value
    if args.duration <= 0 or args.users < 1:
        parser.error("--duration and --users must be positive")
    return args


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


async def bench(args: argparse.Namespace, server: Server, seed: dict) -> list[Result]:
    base_url = f"http://127.0.0.1:{server.port}"
    results: list[Result] = []
    # Sanity: one request of each kind must succeed before anything is measured.
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for name in args.scenarios:
            status, response = await SCENARIOS[name](seed).request(client)
            if not status.startswith("2"):
                raise BenchError(f"Sanity request of scenario {name!r} answered {status}: {response.text[:300]}\n{server.log_tail()}")
    for name in args.scenarios:
        scenario = SCENARIOS[name](seed)
        if args.warmup > 0:
            log(f"{name}: warm-up {args.warmup:g} s")
            await run_level(base_url, scenario, min(4, max(args.concurrency)), args.warmup, None, args.single_ip)
        for c in args.concurrency:
            flush_redis()
            waited = wait_for_quiet(args.idle_wait) if args.idle_wait > 0 else 0.0
            log(f"{name}: concurrency {c}, {args.duration:g} s")
            r = await run_level(base_url, scenario, c, args.duration, server.proc.pid, args.single_ip)
            r.waited = waited
            log(f"  -> {r.count} requests, {r.rps:.1f} req/s, p50 {fmt_ms(r.pct(50))} ms, p99 {fmt_ms(r.pct(99))} ms, errors {r.errors}")
            results.append(r)
            if server.proc.poll() is not None:
                raise BenchError(f"The server died during {name}@{c}.\n{server.log_tail()}")
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = datetime.datetime.now(datetime.UTC)
    t0 = time.monotonic()
    py = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else "python"
    command = " ".join([py, "bench/run.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    server = Server(args.port or free_port())

    def on_signal(signum, frame):  # Ctrl-C or SIGTERM: let `finally` stop the server
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    global PROJECT
    ref_sha = None
    try:
        if args.ref:
            PROJECT, ref_sha = export_ref(args.ref)
            log(f"serving a clean export of {args.ref} ({ref_sha}) from {PROJECT.relative_to(ROOT)}")
        commit_label = git_commit(args.ref, ref_sha)  # now: the tree may change while we run
        speed = {"before": python_speed()}
        check_services()
        info = machine_info()
        log(f"recreating database {db_name()} and migrating")
        recreate_database(args.pg_connection_limit)
        flush_redis()
        run_checked([PYTHON, "manage.py", "migrate", "--noinput"], "manage.py migrate")
        VAR.mkdir(exist_ok=True)
        seed_file, probe_file = VAR / "bench-seed.json", VAR / "bench-probe.json"
        log(f"seeding {args.users} users")
        run_checked([PYTHON, SETUP_SCRIPT, "seed", "--users", str(args.users), "--password", PASSWORD, "--out", str(seed_file)], "seeding")
        seed = json.loads(seed_file.read_text())
        log("measuring password hashing (one core, idle server) and query counts")
        run_checked(
            [PYTHON, SETUP_SCRIPT, "probe", "--email", seed["users"][0], "--password", PASSWORD,
             "--hash-seconds", "1" if args.quick else "3", "--out", str(probe_file)],
            "probe",
        )
        probe = json.loads(probe_file.read_text())
        hr = probe["hash_rate"]
        log(f"  {hr['algorithm']} ({hr['iterations']:,} iterations): {hr['per_second']:.2f} hashes/s on one core")
        for name, q in probe["queries"].items():
            log(f"  {name}: HTTP {q['status']}, {len(q['queries'])} SQL queries")
        flush_redis()
        log(f"starting server: {server.display_cmd} (log: {SERVER_LOG.relative_to(ROOT)})")
        server.start()
        server.wait_ready()
        results = asyncio.run(bench(args, server, seed))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted, server stopped", file=sys.stderr)
        return 130
    finally:
        server.stop()
    speed["after"] = python_speed()

    print(table(results))
    print(interpretation(results, probe))
    if not args.no_write:
        update_doc(render_section(results, probe, info, command, server.display_cmd, started, commit_label, args, speed))
        log(f"updated {DOC.relative_to(ROOT)}")
    log(f"done in {time.monotonic() - t0:.0f} s")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
