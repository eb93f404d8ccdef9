"""MediMeet benchmark harness (`make bench`).

Sets up a PostgreSQL database of its own, seeds users (and, for the search, slots and booking
areas, 20,000 doctors and 500,000 appointments: bench/dataset.py), starts the server (Daphne by
default; `--server gunicorn --workers N` for the production recipe of several worker processes)
as a child process with the production password hasher and relaxed throttles, then
drives it with an asyncio + httpx closed-loop client: each of C workers sends one request,
waits for the answer, sends the next, for a fixed duration per concurrency level. Reports
throughput, latency percentiles, error rate and CPU use of the server, PostgreSQL, Redis and the
client, prints markdown tables and updates each area's section of docs/performance.md.

Areas and scenarios (`--scenarios` takes either):
  auth     login    POST /api/v1/auth/login/ with rotating users (password check + session + tokens)
           me       GET  /api/v1/auth/me/ with pre-issued access tokens, rotating users
           health   GET  /health/: the middleware stack and `SELECT 1`, the floor under every request
  search   search   GET  /api/v1/doctors/ cycling through typical filter combinations (SEARCH_COMBOS)
           search-<combination>   one combination each, at concurrency 1 and 8
  slots    slots    GET  /api/v1/doctors/<slug>/slots/, 30 days, a different scheduled doctor each time
           slots-popular          the same, doctors with 60% of their slots booked
  booking  book     bookings of distinct free slots, one request each (hold + reason), one patient
                    per worker (bookings/s)
           book-two-step          the same in two requests: hold, then confirm with the reason
           book-contention        all workers race for the same slots: one booking each, APPT_002
                                  for the rest; the database is checked for double bookings after
  Search, slots and booking also record EXPLAIN (ANALYZE, BUFFERS) of their queries (captured
  from one request each with the test client); full plans in var/bench-explain.txt.
  signaling signal-memory  websocket relay latency through the consultation consumer (patient's
                           offer in → doctor's socket out), 2 sockets per room, rooms added level
                           by level at 1 msg/s per room, and 50 rooms at 10/s; one Daphne process with
                           the in-memory channel layer (bench/signaling.py; always Daphne)
            signal-redis   the same with channels-redis (REDIS_URL set)
            signal-redis-2 channels-redis over two Daphne processes: each room's doctor on one and
                           its patient on the other, so every frame crosses processes (scale-out)
            --concurrency sets the room counts (at 1 msg/s per room) of these

    .venv/bin/python bench/run.py                 # full run (`make bench`), writes docs/performance.md
    .venv/bin/python bench/run.py --quick         # CI smoke, < 60 s (`make bench BENCH_ARGS=--quick`)
    .venv/bin/python bench/run.py --scenarios me --concurrency 1,8 --duration 5 --no-write
    .venv/bin/python bench/run.py --scenarios search,slots --ref HEAD   # two areas, from a clean export
    .venv/bin/python bench/run.py --server-env DB_POOL=false --no-write   # try a setting
    .venv/bin/python bench/run.py --scenarios booking --no-write --py-spy /path/to/py-spy   # where the CPU goes
    .venv/bin/python bench/run.py --scenarios booking --server gunicorn --workers 2   # several worker processes

Data: the first run seeds the data set (about 2 minutes for the full one: seed_demo for the
doctors, COPY for the appointments; timings are reported); later runs reuse the database when
it holds a complete data set and no migration the served tree lacks, and only reset what runs
change (the bench patients' bookings, sessions and tokens). `--fresh-data` starts over.

Exit status: 0 when every response was 2xx (or an expected answer: APPT_002 under contention)
and no double booking was found, 1 otherwise, 2 when the run could not be made (service down,
server did not start), 130 when interrupted. The server is stopped in every case.

Environment:
  BENCH_PG_ADMIN_URL  a superuser connection (default postgres://postgres@127.0.0.1:5432/postgres)
  BENCH_DATABASE_URL  what the server uses (default postgres://medimeet_bench@127.0.0.1:5432/medimeet_bench):
                      the database is re-created when it cannot be reused (see Data), owned by that role,
                      which is created if missing as a non-superuser with a CONNECTION LIMIT
                      (--pg-connection-limit), so that a connection leak under load cannot starve other
                      users of a shared PostgreSQL
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
UVICORN = str(VENV_BIN / "uvicorn")
GUNICORN = str(VENV_BIN / "gunicorn")
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
            "THROTTLE_BOOKING": UNLIMITED,  # 20/min per person in production: the booking areas book far more
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
    f"THROTTLE_LOGIN=THROTTLE_ANON=THROTTLE_USER=THROTTLE_BOOKING={UNLIMITED} JWT_ACCESS_TOKEN_LIFETIME_SECONDS=86400"
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


def recreate_database(connection_limit: int, *, drop: bool = True) -> None:
    """Drop and re-create the bench database (``drop=False``: keep it, only set up the role)."""
    import psycopg
    from psycopg import sql

    name, role = db_name(), db_role()
    if not re.fullmatch(r"[A-Za-z0-9_]*bench[A-Za-z0-9_]*", name):
        raise BenchError(f"Refusing to drop database {name!r}: the bench database name must contain 'bench'.")
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        if drop:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if role != "postgres":
            row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role]).fetchone()
            if row is None:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            elif row[0]:
                raise BenchError(f"Role {role!r} is a superuser: its connection limit would not apply.")
            conn.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(sql.Identifier(role), sql.Literal(connection_limit)))
        if drop:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(role)))


def project_migrations() -> dict[str, set[str]]:
    """Migration names on disk in the served tree, by app label (the directory name)."""
    found: dict[str, set[str]] = {}
    for top in PROJECT.iterdir():
        if top.is_dir() and not top.name.startswith(".") and top.name not in {"var", "node_modules", "static", "media"}:
            for path in top.glob("**/migrations/[0-9]*.py"):
                found.setdefault(path.parent.parent.name, set()).add(path.stem)
    return found


def database_state() -> dict:
    """Whether the bench database exists, the data set it holds (bench_dataset) and the
    project migrations it has applied that the served tree does not have (then it cannot be
    reused: e.g. benchmarking an older commit)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    state: dict = {"exists": False, "marker": None, "unknown_migrations": []}
    try:
        conn = psycopg.connect(make_conninfo(admin_dsn(), dbname=db_name()), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        return state
    with conn:
        state["exists"] = True
        if conn.execute("SELECT to_regclass('bench_dataset')").fetchone()[0]:
            row = conn.execute("SELECT value FROM bench_dataset WHERE key = 'dataset'").fetchone()
            state["marker"] = row[0] if row else None
        if conn.execute("SELECT to_regclass('django_migrations')").fetchone()[0]:
            disk = project_migrations()
            for app, name in conn.execute("SELECT app, name FROM django_migrations"):
                if app in disk and name not in disk[app]:
                    state["unknown_migrations"].append(f"{app}.{name}")
    return state


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


def run_checked(args: list[str], what: str, timeout: float = 600, stream: bool = False) -> str:
    """Run a helper in the served tree; ``stream``: its stderr (progress) goes to ours."""
    proc = subprocess.run(args, cwd=PROJECT, env=server_env(), stdout=subprocess.PIPE, stderr=None if stream else subprocess.PIPE,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise BenchError(f"{what} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{(proc.stderr or '')[-3000:]}")
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
    servers = subprocess.run(
        [PYTHON, "-c", "import importlib.metadata as m\nfor n in ('gunicorn', 'uvicorn'):\n    try: print(m.version(n))\n    except m.PackageNotFoundError: print('?')"],
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
        "gunicorn": servers[0] if servers else "?",
        "uvicorn": servers[1] if len(servers) > 1 else "?",
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


def _stat(pid: int | str) -> tuple[str, float, float, int] | None:
    """(comm, own CPU seconds, CPU seconds of waited-for children, session id) of a process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return comm, (int(fields[11]) + int(fields[12])) / CLK_TCK, (int(fields[13]) + int(fields[14])) / CLK_TCK, int(fields[3])


def cpu_snapshot(*server_pids: int) -> dict[str, float]:
    """CPU seconds used so far by the server (every process of its session: the master and its
    workers, and workers that exited; several servers' sessions summed), all postgres processes,
    redis, and this client."""
    snap = {"server": 0.0, "postgres": 0.0, "redis": 0.0}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            s = _stat(entry.name)
            if s and s[3] in server_pids:  # the server runs in a session of its own (start_new_session)
                snap["server"] += s[1] + (s[2] if int(entry.name) in server_pids else 0.0)
            elif s and s[0] == "postgres":
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


SERVER_KINDS = {
    "daphne": "Daphne, ASGI, one process (what `make run` uses; HTTP and websockets)",
    "gunicorn": "gunicorn, WSGI, --workers processes of --threads threads (the production recipe for HTTP; docs/architecture.md)",
    "uvicorn": "uvicorn --workers, ASGI (for comparison; not a project dependency: pip install uvicorn httptools uvloop)",
}


class Server:
    def __init__(self, port: int, kind: str = "daphne", workers: int = 1, threads: int = 4) -> None:
        self.port = port
        self.kind, self.workers, self.threads = kind, workers, threads
        self.proc: subprocess.Popen | None = None
        self.log = None
        if kind == "gunicorn":
            self.cmd = [GUNICORN, "medimeet.wsgi:application", "--workers", str(workers), "--worker-class", "gthread",
                        "--threads", str(threads), "--bind", f"127.0.0.1:{port}"]
        elif kind == "uvicorn":
            self.cmd = [UVICORN, "medimeet.asgi:application", "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port),
                        "--lifespan", "off", "--no-access-log"]
        else:
            self.cmd = [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "medimeet.asgi:application"]
        if not Path(self.cmd[0]).exists():
            raise BenchError(f"--server {kind}: {self.cmd[0]} is missing ({SERVER_KINDS[kind]})")

    @property
    def processes_text(self) -> str:
        if self.kind == "daphne" or (self.kind == "uvicorn" and self.workers == 1):
            return "one process"
        threads = f" of {self.threads} threads" if self.kind == "gunicorn" else ""
        return f"{self.workers} worker process{'es' if self.workers > 1 else ''}{threads} under a master process"

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
    expected: frozenset = frozenset()  # non-2xx statuses that are the right answer (contention: APPT_002)
    tags: dict[str, list[float]] = field(default_factory=dict)  # seconds by tag (filter combination, step)
    exhausted: int = 0  # workers that ran out of targets before the end of the level

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if not status.startswith("2") and status not in self.expected)

    def tag_pct(self, tag: str, p: float) -> float:
        values = sorted(self.tags.get(tag, []))
        if not values:
            return float("nan")
        return values[max(0, min(len(values) - 1, int(round(p / 100 * len(values) + 0.5)) - 1))] * 1000

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


class Exhausted(Exception):
    """A worker has no targets left (booking scenarios): it stops for the rest of the level."""


class Scenario:
    name = ""
    description = ""
    area = "auth"
    levels: tuple[int, ...] | None = None  # default concurrency levels (None: --concurrency's)
    quick_levels: tuple[int, ...] | None = None
    duration_factor = 1.0  # share of --duration per level
    expected: frozenset = frozenset()

    def __init__(self, seed: dict) -> None:
        self.users: list[str] = seed["users"]
        self.tokens: list[str] = seed["tokens"]
        self.counter = 0

    def next_index(self) -> int:
        self.counter += 1
        return self.counter % len(self.users)

    def begin_level(self, concurrency: int) -> None:
        """Called before each level (and the warm-up) starts."""

    async def request(self, client: httpx.AsyncClient, worker: int = 0) -> tuple:
        """Send one request; return its status as a string ("200", "429", "200-no-token", ...)
        and the response, optionally with a dict of tag -> seconds (None: the whole request)."""
        raise NotImplementedError


class LoginScenario(Scenario):
    name = "login"
    description = "POST /api/v1/auth/login/, a different user each request"

    async def request(self, client, worker=0):
        email = self.users[self.next_index()]
        r = await client.post("/api/v1/auth/login/", json={"email": email, "password": PASSWORD, "device_name": "bench"})
        if r.status_code == 200 and "access" not in r.json():
            return "200-no-token", r  # e.g. mfa_required: not what this scenario measures
        return str(r.status_code), r


class MeScenario(Scenario):
    name = "me"
    description = "GET /api/v1/auth/me/ with a pre-issued access token, a different user each request"

    async def request(self, client, worker=0):
        token = self.tokens[self.next_index()]
        r = await client.get("/api/v1/auth/me/", headers={"Authorization": f"Bearer {token}"})
        return str(r.status_code), r


class HealthScenario(Scenario):
    name = "health"
    description = "GET /health/: the whole middleware stack and `SELECT 1`, the floor under every request"

    async def request(self, client, worker=0):
        r = await client.get("/health/")
        return str(r.status_code), r


# --- Step 2: doctor search ------------------------------------------------------------------

# Typical filter combinations of GET /api/v1/doctors/ (doctors/api.py SearchInput), 20 a page.
# "pages" walks pages 2..5 of a broad filtered listing ({page} is filled in per request).
SEARCH_COMBOS = {
    "all": "sort=rating&page_size=20",
    "specialization": "specialization=medicine&page_size=20",
    "text": "q=cardiology&page_size=20",
    "name-language": "q=Priya&language=hi&page_size=20",
    "fee": "fee_min=300&fee_max=700&currency=INR&sort=fee&page_size=20",
    "experience-rating-mode": "experience_min=10&rating_min=4.5&mode=video&page_size=20",
    "city": "city=Mumbai&sort=experience&page_size=20",
    "pages": "specialization=medicine&sort=rating&page_size=20&page={page}",
}
SEARCH_PAGES = (2, 3, 4, 5)
# What each combination means, for the report.
SEARCH_LABELS = {
    "all": "no filter, `sort=rating`",
    "specialization": "`specialization=medicine` (a parent node: all its descendants)",
    "text": "`q=cardiology` (full text, ranked)",
    "name-language": "`q=Priya&language=hi` (a first name + a language)",
    "fee": "`fee_min=300&fee_max=700&currency=INR&sort=fee`",
    "experience-rating-mode": "`experience_min=10&rating_min=4.5&mode=video`",
    "city": "`city=Mumbai&sort=experience`",
    "pages": "`specialization=medicine&sort=rating`, pages 2–5",
}


def search_query(combo: str, n: int = 0) -> str:
    return SEARCH_COMBOS[combo].format(page=SEARCH_PAGES[n % len(SEARCH_PAGES)])


class SearchScenario(Scenario):
    """One filter combination (subclasses below), or all of them in turn (``search``)."""

    area = "search"
    combo = ""

    async def request(self, client, worker=0):
        n = self.counter = self.counter + 1
        combo = self.combo or list(SEARCH_COMBOS)[n % len(SEARCH_COMBOS)]
        r = await client.get("/api/v1/doctors/?" + search_query(combo, n if self.combo else n // len(SEARCH_COMBOS)))
        status = str(r.status_code)
        if r.status_code == 200 and "results" not in r.json():
            status = "200-no-results"
        return status, r, {combo: None}


class SearchMixScenario(SearchScenario):
    name = "search"
    description = "GET /api/v1/doctors/ cycling through the filter combinations below"
    quick_levels = (4,)


def _search_combo_scenario(combo: str) -> type[SearchScenario]:
    return type(
        f"Search_{combo}",
        (SearchScenario,),
        {
            "name": f"search-{combo}",
            "combo": combo,
            "description": f"GET /api/v1/doctors/?{SEARCH_COMBOS[combo].format(page='2..5')}",
            "levels": (1, 8),
            "quick_levels": (1,),
            "duration_factor": 0.5,
        },
    )


SEARCH_COMBO_SCENARIOS = [_search_combo_scenario(c) for c in SEARCH_COMBOS]


# --- Step 3: slots and booking --------------------------------------------------------------

SLOTS_TZ = "Asia/Kolkata"
SLOTS_DAYS = 30


def slots_window() -> tuple[str, str]:
    """A 30-day window starting tomorrow in SLOTS_TZ: (start_date, end_date), end inclusive."""
    from zoneinfo import ZoneInfo

    first = datetime.datetime.now(ZoneInfo(SLOTS_TZ)).date() + datetime.timedelta(days=1)
    return first.isoformat(), (first + datetime.timedelta(days=SLOTS_DAYS - 1)).isoformat()


class SlotsScenario(Scenario):
    name = "slots"
    area = "slots"
    description = (
        f"GET /api/v1/doctors/<slug>/slots/ for a {SLOTS_DAYS}-day window from tomorrow, timezone={SLOTS_TZ}, "
        "a different scheduled doctor each request (10% of them popular)"
    )
    popular_only = False
    quick_levels = (4,)

    def __init__(self, seed: dict) -> None:
        super().__init__(seed)
        targets = seed["targets"]["slots"]
        self.doctors = [t for t in targets if t[2]] if self.popular_only else targets
        self.start_date, self.end_date = slots_window()

    async def request(self, client, worker=0):
        self.counter += 1
        slug, service, _ = self.doctors[(self.counter * 7919) % len(self.doctors)]  # a stride through all of them
        r = await client.get(
            f"/api/v1/doctors/{slug}/slots/",
            params={"service": service, "start_date": self.start_date, "end_date": self.end_date, "timezone": SLOTS_TZ},
        )
        return str(r.status_code), r


class SlotsPopularScenario(SlotsScenario):
    name = "slots-popular"
    description = "the same for the popular doctors only (60% of their slots booked in the full data set)"
    popular_only = True


def _iso(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat().replace("+00:00", "Z")


def _error_code(r: httpx.Response) -> str:
    try:
        return r.json().get("error", {}).get("code", "")
    except (ValueError, AttributeError):
        return ""


RUN_ID = f"{int(time.time()):x}"


BOOKING_REASON = "Benchmark booking"


class BookScenario(Scenario):
    name = "book"
    area = "booking"
    description = (
        "POST /api/v1/appointments/ with the reason (hold and details in one request, with an Idempotency-Key; the "
        "booking is created waiting for payment): each worker is one patient booking its own list of free slots "
        "(different doctors, never two at once); each level has patients of its own"
    )
    quick_levels = (4,)
    two_step = False

    def __init__(self, seed: dict) -> None:
        super().__init__(seed)
        booking = seed["targets"]["booking"]
        self.doctors, self.plans = booking["doctors"], booking["plans"]
        self.used = [0] * len(self.plans)  # slots taken from each patient's list
        self.first = self.next_first = 0

    def begin_level(self, concurrency: int) -> None:
        # Fresh patients for each level (and the warm-up), so that one patient's list of slots
        # does not run out at a fast level; `book` takes patients from the first, the two-step
        # scenario from the last.
        self.first = self.next_first
        self.next_first += concurrency

    def take(self, worker: int) -> tuple[int, int]:
        """(patient, index in their list) of the worker's next booking; Exhausted when none."""
        n = (self.first + worker) % len(self.plans)
        patient = len(self.plans) - 1 - n if self.two_step else n
        plan = self.plans[patient]
        if self.used[patient] >= len(plan):
            raise Exhausted
        self.used[patient] += 1
        # `book` walks each list from its start, the two-step scenario from its end: never the same slot.
        return patient, (len(plan) - self.used[patient] if self.two_step else self.used[patient] - 1)

    async def request(self, client, worker=0):
        patient, i = self.take(worker)
        doctor, epoch = self.plans[patient][i]
        slug, service = self.doctors[doctor]
        auth = {"Authorization": f"Bearer {self.tokens[patient]}"}
        key = {"Idempotency-Key": f"bench-{RUN_ID}-{self.name}-{patient}-{i}"}
        t0 = time.perf_counter()
        if not self.two_step:
            r = await client.post("/api/v1/appointments/", json={"service": service, "start": _iso(epoch), "reason": BOOKING_REASON}, headers={**auth, **key})
            ok = r.status_code == 201 and r.json().get("status") == "pending_payment"
            return ("200" if ok else f"book {r.status_code} {_error_code(r)}".strip()), r
        r = await client.post("/api/v1/appointments/", json={"service": service, "start": _iso(epoch)}, headers={**auth, **key})
        t1 = time.perf_counter()
        if r.status_code != 201:
            return f"hold {r.status_code} {_error_code(r)}".strip(), r, {"hold": t1 - t0}
        r2 = await client.post(f"/api/v1/appointments/{r.json()['id']}/confirm/", json={"reason": BOOKING_REASON}, headers=auth)
        t2 = time.perf_counter()
        status = "200" if r2.status_code == 200 else f"confirm {r2.status_code} {_error_code(r2)}".strip()
        return status, r2, {"hold": t1 - t0, "confirm": t2 - t1}


class BookTwoStepScenario(BookScenario):
    name = "book-two-step"
    description = (
        "the two-step flow: POST /api/v1/appointments/ (hold, with an Idempotency-Key) then "
        "POST /api/v1/appointments/<id>/confirm/ with the reason; same patients' lists as `book`, other slots"
    )
    levels = (4, 32)
    quick_levels = (4,)
    two_step = True


class ContentionScenario(Scenario):
    name = "book-contention"
    area = "booking"
    description = (
        "every worker (a different patient each) tries to book the same slots in the same order (one request with the "
        "reason, as `book`); exactly one booking per slot may succeed, the others must get 409 APPT_002"
    )
    levels = (8, 32)
    quick_levels = (8,)
    expected = frozenset({"409 APPT_002"})

    def __init__(self, seed: dict) -> None:
        super().__init__(seed)
        self.items = seed["targets"]["contention"]
        self.offset = len(self.tokens) // 2  # patients of their own: not the `book` workers'
        self.base = self.next_base = 0
        self.position: dict[int, int] = {}
        self.outcomes: dict[int, dict[str, int]] = {}  # slot index -> status -> count
        self.level_items: list[tuple[int, int, int]] = []  # (concurrency, first slot, last slot) of each level

    def begin_level(self, concurrency: int) -> None:
        self.base = self.next_base
        self.position = {}
        self.level_items.append((concurrency, self.base, self.base))

    async def request(self, client, worker=0):
        k = self.position.get(worker, 0)
        self.position[worker] = k + 1
        index = self.base + k
        if index >= len(self.items) or self.offset + worker >= len(self.tokens):
            raise Exhausted
        self.next_base = max(self.next_base, index + 1)
        c, first, last = self.level_items[-1]
        self.level_items[-1] = (c, first, max(last, index))
        slug, service, epoch = self.items[index]
        auth = {"Authorization": f"Bearer {self.tokens[self.offset + worker]}"}
        t0 = time.perf_counter()
        r = await client.post("/api/v1/appointments/", json={"service": service, "start": _iso(epoch), "reason": BOOKING_REASON}, headers=auth)
        tags = {"hold": time.perf_counter() - t0}
        if r.status_code == 201:
            status = "201" if r.json().get("status") == "pending_payment" else f"201 {r.json().get('status')}"
            tags["won"] = None
        else:
            status = f"{r.status_code} {_error_code(r)}".strip()
            tags["lost"] = None
        counts = self.outcomes.setdefault(index, {})
        counts[status] = counts.get(status, 0) + 1
        return status, r, tags

    def invariant(self) -> dict:
        """Per contested slot: how many bookings were granted (must be exactly one)."""
        granted = {i: sum(n for s, n in c.items() if s.startswith("201")) for i, c in self.outcomes.items()}
        attempts = sum(sum(c.values()) for c in self.outcomes.values())
        return {
            "slots": len(self.outcomes),
            "attempts": attempts,
            "granted": sum(granted.values()),
            "appt_002": sum(c.get("409 APPT_002", 0) for c in self.outcomes.values()),
            "other": attempts - sum(granted.values()) - sum(c.get("409 APPT_002", 0) for c in self.outcomes.values()),
            "slots_not_one": sorted(i for i, g in granted.items() if g != 1),
        }


# --- Step 10: the mixed load ----------------------------------------------------------------

# The sandbox card page is a Django form: any well-formed token works when the cookie and the
# header carry the same one (CSRF double submit); the session is the patient's (seed --sessions).
CSRF_TOKEN = "benchcsrf" + "0" * 23
TEST_CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"}


async def book_and_pay(client: httpx.AsyncClient, *, token: str, session: str, service: str, start: str, key: str) -> tuple[str, httpx.Response, dict]:
    """The patient's whole booking: hold + reason in one request, start the payment, pay on the
    sandbox gateway's card page, verify. Returns (status, last response, seconds by step); the
    status is "200" when the payment succeeded and the appointment is confirmed, else the step
    and its answer ("pay 503 SERVER_002", ...). Also used by scripts/fault-postgres."""
    auth = {"Authorization": f"Bearer {token}"}
    tags: dict[str, float] = {}
    t = time.perf_counter()

    def step(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        tags[name] = now - t
        t = now

    r = await client.post("/api/v1/appointments/", json={"service": service, "start": start, "reason": BOOKING_REASON}, headers={**auth, "Idempotency-Key": key})
    step("book")
    if r.status_code != 201:
        return f"book {r.status_code} {_error_code(r)}".strip(), r, tags
    appointment = r.json()["id"]
    r = await client.post("/api/v1/payments/", json={"appointment": appointment}, headers={**auth, "Idempotency-Key": f"{key}-pay"})
    step("pay-start")
    if r.status_code != 201:
        return f"pay-start {r.status_code} {_error_code(r)}".strip(), r, tags
    payment = r.json()
    card_page = urlsplit(payment["checkout"]["url"]).path
    r = await client.post(card_page, data=TEST_CARD, headers={"Cookie": f"sessionid={session}; csrftoken={CSRF_TOKEN}", "X-CSRFToken": CSRF_TOKEN})
    step("card")
    if r.status_code != 302:
        return f"card {r.status_code}", r, tags
    r = await client.post(f"/api/v1/payments/{payment['id']}/verify/", json={}, headers=auth)
    step("verify")
    if r.status_code != 200 or r.json().get("status") != "succeeded":
        return f"verify {r.status_code} {_error_code(r) or r.json().get('status', '')}".strip(), r, tags
    return "200", r, tags


MIX = (("search", 60), ("slots", 25), ("book+pay", 10), ("records", 5))  # percent of requests
MIX_CYCLE = [kind for kind, share in MIX for _ in range(share // 5)]  # 20 slots: 12, 5, 2, 1


class MixScenario(Scenario):
    name = "mix"
    area = "mix"
    description = (
        "a realistic mix, interleaved deterministically: 60% doctor search (the `search` combinations), 25% slot "
        "queries (`slots`), 10% a whole booking with payment (hold + reason, `POST /api/v1/payments/`, the sandbox "
        "card page, verify: `book_and_pay`), 5% a patient reading their medical record "
        "(`GET /api/v1/records/patients/<own id>/`); each worker is one patient"
    )
    levels = (1, 4, 8, 16, 32, 64)
    quick_levels = (2, 4)

    def __init__(self, seed: dict) -> None:
        super().__init__(seed)
        self.search = SearchMixScenario(seed)
        self.slots = SlotsScenario(seed)
        self.book = BookScenario(seed)
        self.sessions: list[str] = seed.get("sessions") or []
        self.patient_ids: list[str] = seed["patient_ids"]

    def begin_level(self, concurrency: int) -> None:
        self.book.begin_level(concurrency)

    async def request(self, client, worker=0):
        self.counter += 1
        kind = MIX_CYCLE[(self.counter * 7 + worker) % len(MIX_CYCLE)]  # spread the kinds over the workers
        if kind == "search":
            status, r, _ = await self.search.request(client, worker)
        elif kind == "slots":
            status, r = await self.slots.request(client, worker)
        elif kind == "records":
            n = self.next_index()
            r = await client.get(f"/api/v1/records/patients/{self.patient_ids[n]}/", headers={"Authorization": f"Bearer {self.tokens[n]}"})
            status = str(r.status_code)
        else:
            try:
                patient, i = self.book.take(worker)
            except Exhausted:  # this worker's patient has no free slot left: a search instead
                status, r, _ = await self.search.request(client, worker)
                return status, r, {"search": None}
            doctor, epoch = self.book.plans[patient][i]
            slug, service = self.book.doctors[doctor]
            status, r, steps = await book_and_pay(client, token=self.tokens[patient], session=self.sessions[patient], service=service,
                                                  start=_iso(epoch), key=f"bench-{RUN_ID}-mix-{patient}-{i}")
            return status, r, {kind: None, **{f"step:{k}": v for k, v in steps.items()}}
        return status, r, {kind: None}


SCENARIOS = {
    s.name: s
    for s in (
        LoginScenario, MeScenario, HealthScenario, SearchMixScenario, *SEARCH_COMBO_SCENARIOS,
        SlotsScenario, SlotsPopularScenario, BookScenario, BookTwoStepScenario, ContentionScenario, MixScenario,
    )
}
AREAS = {area: [n for n, s in SCENARIOS.items() if s.area == area] for area in ("auth", "search", "slots", "booking", "mix")}
NEEDS_DATASET = {"search", "slots", "booking", "mix"}
# --quick: one smoke level of each area (CI, < 60 s with the small data set)
QUICK_SCENARIOS = ["me", "health", "login", "search", "slots", "book", "book-contention"]

# The signaling area (bench/signaling.py): websockets through the consultation consumer, one
# Daphne process per channel layer, its own load generator and section; not in --quick's "all".
import signaling  # noqa: E402 - bench/ is on sys.path: run.py runs as a script

SCENARIOS.update(signaling.SCENARIOS)
AREAS[signaling.AREA] = list(signaling.SCENARIOS)

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
    result = Result(scenario.name, concurrency, expected=scenario.expected)
    scenario.begin_level(concurrency)
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

        async def worker(client: httpx.AsyncClient, index: int) -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                response, tags = None, None
                try:
                    status, response, *rest = await scenario.request(client, index)
                    tags = rest[0] if rest else None
                except Exhausted:
                    result.exhausted += 1
                    return
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                elapsed = time.perf_counter() - t0
                result.latencies.append(elapsed)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                for tag, seconds in (tags or {}).items():
                    result.tags.setdefault(tag, []).append(elapsed if seconds is None else seconds)
                if not status.startswith("2") and status not in result.samples:
                    result.samples[status] = response.text[:300] if response is not None else status

        await asyncio.gather(*(worker(c, i) for i, c in enumerate(clients)))
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
            f"- **Login is bounded by password hashing.** `{hr['algorithm']}` with {hr['params']} "
            f"(the first of PASSWORD_HASHERS, what production runs) does **{rate:.2f} hashes/s on one core** in a tight loop "
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
It uses its own database `medimeet_bench`, owned by a non-superuser role `medimeet_bench`
limited to 50 connections (so that a connection leak under load cannot starve other users of a
shared PostgreSQL), flushes Redis database 3, seeds its own users, starts the server itself
(Daphne, one process, by default; `--server gunicorn --workers N --threads T` runs the production
recipe for HTTP, N WSGI worker processes; its output goes to `var/bench-server.log`) and stops
it at the end, also on Ctrl-C or an error. `--ref HEAD` serves a clean `git archive` export of a commit instead of the working
tree. The search, slots and booking areas need 20,000 doctors and 500,000 appointments
(`bench/dataset.py`): the first run seeds them (about 2 minutes), later runs reuse the
database when it holds them and has no migration the served tree lacks (`--fresh-data` drops
and re-creates it). `--quick` uses a tenth of that data set.

Areas (`--scenarios` takes an area or scenario names): `auth` (login, me, health), `search`
(the mix and one scenario per filter combination), `slots` (slots, slots-popular), `booking`
(book, book-two-step, book-contention). `--py-spy PATH` profiles the server during the highest level of each
scenario (diagnosis only; use with `--no-write`).

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


def section_header(title, results, info, command, server, started, commit, args, speed, names, load_extra="") -> str:
    """The lines every section starts with: when, what, where, how."""
    scen = ", ".join(f"`{n}` ({SCENARIOS[n].description})" for n in names)
    levels = {n: levels_of(args, n) for n in names}
    distinct = {tuple(v) for v in levels.values()}
    level_text = (
        "concurrency " + ", ".join(map(str, next(iter(distinct))))
        if len(distinct) == 1
        else "concurrency " + "; ".join(f"{n} {','.join(map(str, v))}" for n, v in levels.items())
    )
    durations = {args.duration * SCENARIOS[n].duration_factor for n in names}
    return (
        f"## {title}\n\n"
        f"- **Date:** {started:%Y-%m-%d %H:%M} UTC\n"
        f"- **Commit:** {commit}\n"
        f"- **Machine:** {info['nproc']} cores ({info['cpu']}), load average before the run {info['loadavg']}; "
        f"Python {info['python']}, PostgreSQL {info['postgres']}, Redis {info['redis']}, Django {info['django']}, "
        + {"daphne": f"Daphne {info['daphne']}", "gunicorn": f"gunicorn {info['gunicorn']}", "uvicorn": f"uvicorn {info['uvicorn']}"}[server.kind] + "\n"
        f"- **Command:** `{command}`\n"
        f"- **Server:** {server.processes_text}, `{server.display_cmd}`, environment `{ENV_SUMMARY}`"
        + (" plus `" + " ".join(f"{k}={v}" for k, v in EXTRA_ENV.items()) + "`" if EXTRA_ENV else "")
        + "\n"
        "- **Load:** closed loop, asyncio + httpx (HTTP/1.1 keep-alive, one connection per worker, "
        + ("all workers from 127.0.0.1" if args.single_ip else "each worker its own client address 127.0.0.N")
        + "), "
        + "/".join(f"{d:g}" for d in sorted(durations))
        + f" s per level after a {args.warmup:g} s warm-up, {level_text}; {load_extra}scenarios: {scen}\n"
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
        + "\n"
    )


TABLE_NOTE = (
    "Errors are non-2xx responses and transport errors. CPU % is of one core over the level "
    "(server = the server's processes: Daphne, or the workers and their supervisor; pg = all postgres processes, including backends that exited; client = the "
    "load generator; other = everything else on the machine, i.e. disturbance from other load). New conns/req = connections the server opened to PostgreSQL (pg_stat_database.sessions) and "
    "to Redis (INFO total_connections_received) during the level, per request. "
    "Latency is measured in the client, so it includes client-side queueing on the shared cores.\n"
)


def render_section(results, probe, info, command, server, started, commit, args, speed) -> str:
    hr = probe.get("hash_rate", {})
    names = [n for n in args.scenarios if SCENARIOS[n].area == "auth"]
    return (
        section_header("Auth: API login and `GET /api/v1/auth/me/` (Step 1)", results, info, command, server, started,
                       commit, args, speed, names, load_extra=f"{args.users} seeded patients; ")
        + f"- **Password hash ceiling (same run, before the server starts):** "
        f"{1000 / hr['cpu_per_hash_ms'] if hr.get('cpu_per_hash_ms') else float('nan'):.2f} "
        f"`{hr.get('algorithm', '?')}` hashes per CPU-second on one core ({hr.get('params', '?')}; "
        f"{hr.get('per_second', float('nan')):.2f}/s of wall-clock time)\n\n"
        + table(results)
        + "\n" + TABLE_NOTE + "\n"
        "**Interpretation**\n\n"
        + interpretation(results, probe)
        + "\n**Setup notes.** Settings are `medimeet.settings.local` with `DEBUG=false`: `production.py` requires real "
        "secrets (SECRET_KEY, FIELD_ENCRYPTION_KEYS, ...) and adds HTTPS redirects/HSTS/secure cookies, which do not "
        "change the work these endpoints do; the field-encryption key is derived from SECRET_KEY instead of "
        "FIELD_ENCRYPTION_KEYS (same Fernet cost). The password hasher is the first of PASSWORD_HASHERS (Argon2 since Step 11), as in production. "
        "Throttles are raised so that the code is measured, not the limits; the access-token "
        "lifetime is raised because tokens are issued before the run. Seeded users share one password hash "
        "(hashing each user's password at ~5/s would dominate the setup; verifying costs the same). "
        "Each level starts with an empty Redis cache (throttle histories). The database is kept between runs when it "
        "holds the search/booking data set (`--fresh-data` re-creates it); the seeded patients are then reused and "
        "get fresh sessions and tokens.\n"
    )


# --- Step 2/3 sections -------------------------------------------------------------------


def data_line(data: dict | None) -> str:
    if not data:
        return ""
    c = data.get("counts", {})
    t = data.get("seed_timings", {})
    took = sum(t.values())
    return (
        f"- **Data:** {c.get('approved_doctors', 0):,} approved doctors ({c.get('services', 0):,} services, "
        f"{c.get('doctor_languages', 0):,} doctor–language links), {c.get('schedules', 0):,} schedules, "
        f"{c.get('appointments', 0):,} confirmed appointments from {DAYS_TEXT} around {data.get('anchor')} "
        f"({len(data.get('popular_doctors', []))} popular doctors with {100 * data.get('popular_occupancy', 0):.0f}% of their "
        f"slots booked, the others {100 * data.get('other_occupancy', 0):.1f}%), database {c.get('database_bytes', 0) / 2**20:,.0f} MB. "
        f"Seeded {data.get('seeded_at', '?')} in {took:,.0f} s ("
        + ", ".join(f"{k.replace('_', ' ')} {v:,.1f} s" for k, v in t.items())
        + "; see bench/dataset.py)"
        + ("; **this run reused it**" if data.get("reused") else "; **seeded by this run**")
        + "\n"
    )


DAYS_TEXT = "60 days before to 60 days after"


def pct_cell(r: Result | None, p: float) -> str:
    return fmt_ms(r.pct(p)) if r else "–"


def row_at(results: list[Result], scenario: str, c: int) -> Result | None:
    return next((r for r in results if r.scenario == scenario and r.concurrency == c and r.count), None)


def explain_cell(e: dict | None) -> str:
    if not e:
        return "–"
    return f"{e['planning_ms']:.2f} / {e['execution_ms']:.2f}"


def scans_text(e: dict, limit: int = 4) -> str:
    scans = e.get("scans", [])
    text = "; ".join(scans[:limit]) + (f"; … {len(scans) - limit} more" if len(scans) > limit else "")
    if e.get("sort"):
        text += f"; sort: {', '.join(e['sort'])}"
    return text


def knee(rows: list[Result]) -> tuple[Result | None, Result | None]:
    """(the lowest level reaching 90% of the best throughput, the highest level with p95 < 50 ms)."""
    rows = sorted((r for r in rows if r.count), key=lambda r: r.concurrency)
    if not rows:
        return None, None
    top = max(r.rps for r in rows)
    saturated = next(r for r in rows if r.rps >= 0.9 * top)
    fast = [r for r in rows if r.pct(95) < 50]
    return saturated, (fast[-1] if fast else None)


def cpu_split(r: Result) -> str:
    return f"server {r.cpu_pct('server'):.0f}% / pg {r.cpu_pct('postgres'):.0f}% / client {r.cpu_pct('client'):.0f}%"


def render_search(results, probe, data, header) -> str:
    explains = (probe.get("requests") or {}).get("search", {})
    combos = [c for c in SEARCH_COMBOS if any(r.scenario == f"search-{c}" for r in results)]
    mid = max((r.concurrency for r in results if r.scenario.startswith("search-")), default=None)
    out = header + data_line(data) + "\n" + table(results) + "\n" + TABLE_NOTE + "\n"
    if combos:
        lo = min(r.concurrency for r in results if r.scenario.startswith("search-"))
        out += (
            f"**Per filter combination** (each its own scenario, {lo} and {mid} concurrent clients; p95 target 50 ms):\n\n"
            f"| Combination | Req/s @{lo} | p50 / p95 / p99 ms @{lo} | Req/s @{mid} | p50 / p95 / p99 ms @{mid} | Results (count) | SQL per request | p95 < 50 ms @{lo} |\n"
            "|---|---:|---:|---:|---:|---:|---:|---|\n"
        )
        for c in combos:
            a, b = row_at(results, f"search-{c}", lo), row_at(results, f"search-{c}", mid) if mid != lo else None
            e = explains.get(c, {})
            count = e.get("count")
            out += (
                f"| {SEARCH_LABELS[c]} | {a.rps:,.1f} | {pct_cell(a, 50)} / {pct_cell(a, 95)} / {pct_cell(a, 99)} "
                + (f"| {b.rps:,.1f} | {pct_cell(b, 50)} / {pct_cell(b, 95)} / {pct_cell(b, 99)} " if b else "| – | – ")
                + f"| {f'{count:,}' if count is not None else '–'} | {e.get('queries', '–')} | "
                + ("yes" if a and a.pct(95) < 50 else "**no**")
                + " |\n"
            )
        out += "\n"
    mix = [r for r in results if r.scenario == "search"]
    if mix:
        out += "**The mix (`search`) by combination** — p50 / p95 ms of each combination's requests within each level:\n\n"
        levels = [r.concurrency for r in mix]
        out += "| Combination | " + " | ".join(f"@{c}" for c in levels) + " |\n|---|" + "---:|" * len(levels) + "\n"
        for c in SEARCH_COMBOS:
            out += f"| {c} | " + " | ".join(f"{fmt_ms(r.tag_pct(c, 50))} / {fmt_ms(r.tag_pct(c, 95))}" for r in mix) + " |\n"
        out += "\n"
    if explains:
        out += (
            "**`EXPLAIN (ANALYZE, BUFFERS)`** of the SQL of one request per combination (captured with the test client "
            "in the same settings, on the same data, after a warm-up request; times in ms, planning / execution):\n\n"
            "| Combination | Request ms (test client) | count(*) | page | prefetches | Plan of the count / page queries |\n"
            "|---|---:|---:|---:|---:|---|\n"
        )
        for c, e in explains.items():
            qs = {x["label"]: x for x in e.get("explain", [])}
            others = [x for x in e.get("explain", []) if x["label"] not in ("count", "page")]
            plan = " · ".join(f"**{label}:** {scans_text(qs[label])}" for label in ("count", "page") if label in qs)
            out += (
                f"| {c} | {e.get('ms', 0):.1f} | {explain_cell(qs.get('count'))} | {explain_cell(qs.get('page'))} | "
                f"{sum(x['execution_ms'] for x in others):.2f} ({len(others)}) | {plan} |\n"
            )
        out += f"\nFull plans: `{EXPLAIN_FILE.relative_to(ROOT)}` (written by each run).\n\n"
    out += "**Interpretation**\n\n" + search_interpretation(results, explains) + "\n"
    return out


def search_interpretation(results: list[Result], explains: dict) -> str:
    lines = []
    singles = [r for r in results if r.scenario.startswith("search-") and r.count]
    if singles:
        lo = min(r.concurrency for r in singles)
        at1 = [r for r in singles if r.concurrency == lo]
        ok = [r for r in at1 if r.pct(95) < 50]
        worst = max(at1, key=lambda r: r.pct(95))
        lines.append(
            f"- **Target (p95 < 50 ms for a filtered, paginated search at {lo} client{'s' if lo > 1 else ''}):** met by "
            f"{len(ok)} of {len(at1)} combinations"
            + (f"; not by {', '.join(f'`{r.scenario[7:]}` ({fmt_ms(r.pct(95))} ms)' for r in at1 if r not in ok)}" if len(ok) < len(at1) else "")
            + f". The slowest is `{worst.scenario[7:]}`: p95 {fmt_ms(worst.pct(95))} ms, {worst.server_ms_per_request():.1f} ms of "
            f"server CPU per request."
        )
    mix = [r for r in results if r.scenario == "search" and r.count]
    if mix:
        sat, fast = knee(mix)
        best_r = max(mix, key=lambda r: r.rps)
        lines.append(
            f"- **Knee (the mix):** throughput reaches {sat.rps:,.0f} req/s at concurrency {sat.concurrency} "
            f"(best {best_r.rps:,.0f} req/s at {best_r.concurrency}; {cpu_split(best_r)}); beyond that, more clients only queue "
            f"(p50 ≈ concurrency / throughput). p95 stays under 50 ms up to concurrency "
            + (f"{fast.concurrency} ({fmt_ms(fast.pct(95))} ms)" if fast else "– (not even at the lowest level)")
            + "."
        )
        lines.append(
            f"- **Where the time goes:** at the best level the server uses {best_r.server_ms_per_request():.1f} ms of CPU per "
            f"request and PostgreSQL {1000 * best_r.cpu.get('postgres', 0) / best_r.count:.1f} ms; one Daphne process "
            f"is held to about one core by the GIL, so its ceiling is ≈ {1000 / best_r.server_ms_per_request():,.0f} req/s."
        )
    if explains:
        db = {c: sum(x["execution_ms"] + x["planning_ms"] for x in e.get("explain", [])) for c, e in explains.items()}
        slow = max(db, key=db.get)
        lines.append(
            f"- **SQL:** the queries of one request take {min(db.values()):.1f}–{max(db.values()):.1f} ms in PostgreSQL "
            f"(planning + execution, slowest `{slow}`), out of {min(e.get('ms', 0) for e in explains.values()):.0f}–"
            f"{max(e.get('ms', 0) for e in explains.values()):.0f} ms per request in the test client: "
            + ("the database is not where most of the time goes." if max(db.values()) < 0.5 * max(e.get('ms', 1) for e in explains.values())
               else "the database is a large part of the request.")
        )
        counts = {c: next((x["execution_ms"] for x in e.get("explain", []) if x["label"] == "count"), 0.0) for c, e in explains.items()}
        share = {c: counts[c] / db[c] for c in db if db[c]}
        lines.append(
            f"- **The count is the costliest query:** `SELECT COUNT(*)` (the paginator's total) takes "
            f"{min(counts.values()):.1f}–{max(counts.values()):.1f} ms, {100 * min(share.values()):.0f}–{100 * max(share.values()):.0f}% "
            "of each request's SQL time; for broad filters it scans every listed doctor joined with its user "
            "(`listed()` filters on accounts_user), however few rows the page shows."
        )
        seq = sorted({c for c, e in explains.items() for x in e.get("explain", []) if any(s.startswith("Seq Scan doctors_doctorprofile") for s in x.get("scans", []))})
        if seq:
            lines.append(f"- Sequential scans of `doctors_doctorprofile` in: {', '.join(f'`{c}`' for c in seq)} (see the plans).")
    errors = [r for r in results if r.errors]
    lines.append(
        "- **Errors:** " + "; ".join(f"{r.scenario}@{r.concurrency}: {r.errors}/{r.count} ({', '.join(r.samples)})" for r in errors)
        if errors else "- No errors: every response was 2xx."
    )
    return "\n".join(lines) + "\n"


def render_slots(results, probe, data, header) -> str:
    requests = (probe.get("requests") or {}).get("slots") or []
    out = header + data_line(data) + "\n" + table(results) + "\n" + TABLE_NOTE + "\n"
    for label, e in zip(("an ordinary doctor", "a popular doctor"), requests, strict=False):
        if not e:
            continue
        out += (
            f"**SQL of one slots request for {label}** ({e['queries']} statements, {e['ms']:.1f} ms in the test client; "
            "`EXPLAIN (ANALYZE, BUFFERS)`, planning / execution ms):\n\n| Query | ms | Rows | Plan |\n|---|---:|---:|---|\n"
        )
        for x in e.get("explain", []):
            out += f"| {x['label']} | {explain_cell(x)} | {x.get('rows', '–')} | {scans_text(x)} |\n"
        out += "\n"
    out += "**Interpretation**\n\n" + slots_interpretation(results, requests, data or {}) + "\n"
    return out


def slots_interpretation(results: list[Result], requests: list, data: dict) -> str:
    lines = []
    for name in ("slots", "slots-popular"):
        rows = [r for r in results if r.scenario == name and r.count]
        if not rows:
            continue
        one = min(rows, key=lambda r: r.concurrency)
        sat, fast = knee(rows)
        lines.append(
            f"- **`{name}`:** p95 {fmt_ms(one.pct(95))} ms at concurrency {one.concurrency} — target (< 50 ms) "
            + ("**met**" if one.pct(95) < 50 else "**not met**")
            + f"; {one.server_ms_per_request():.1f} ms of server CPU and "
            f"{1000 * one.cpu.get('postgres', 0) / one.count:.1f} ms of PostgreSQL CPU per request. Throughput levels off at "
            f"{sat.rps:,.0f} req/s from concurrency {sat.concurrency}; p95 < 50 ms up to concurrency "
            + (f"{fast.concurrency}." if fast else "– (not at any level).")
        )
    a, b = (next((r for r in results if r.scenario == n and r.count), None) for n in ("slots", "slots-popular"))
    if a and b:
        rows = [next((x.get("rows") for x in e.get("explain", []) if x["label"] == "appointments_appointment"), None) for e in requests]
        lines.append(
            f"- A popular doctor ({100 * data.get('popular_occupancy', 0):.0f}% booked) costs "
            f"{b.server_ms_per_request() / a.server_ms_per_request():.1f}× the server CPU of the average one"
            + (f" ({rows[1]} appointments in the window against {rows[0]})" if len(rows) == 2 and None not in rows else "")
            + ": every busy interval is loaded (three timestamps a row) and then checked against every candidate slot "
            "(appointments/selectors.py `load_schedule_data`, `cut_slots`)."
        )
    if requests:
        e = requests[-1]
        appt = next((x for x in e.get("explain", []) if x["label"] == "appointments_appointment"), None)
        if appt:
            lines.append(
                f"- The appointments query takes {appt['execution_ms']:.2f} ms ({appt.get('rows')} rows) via {scans_text(appt, 2)}; "
                f"all {e['queries']} queries of the request {sum(x['execution_ms'] for x in e.get('explain', [])):.1f} ms of "
                f"{e['ms']:.0f} ms: the rest is Python (slot arithmetic and serialising the slots)."
            )
    errors = [r for r in results if r.errors]
    lines.append(
        "- **Errors:** " + "; ".join(f"{r.scenario}@{r.concurrency}: {r.errors}/{r.count} ({', '.join(r.samples)})" for r in errors)
        if errors else "- No errors: every response was 2xx."
    )
    return "\n".join(lines) + "\n"


def render_booking(results, probe, data, header, contention: dict, verify: dict | None, server: Server | None = None) -> str:
    hold = (probe.get("requests") or {}).get("hold")
    out = header + data_line(data) + "\n" + table(results) + "\n" + TABLE_NOTE
    out += (
        "For `book` a request is one booking: one HTTP request with the reason (Req/s = bookings/s); for "
        "`book-two-step` one booking is two HTTP requests (hold, then confirm); for `book-contention` a request is one "
        "attempt (one HTTP request), and `409 APPT_002` is the expected answer, not an error.\n\n"
    )
    steps = [r for r in results if r.tags.get("hold")]
    if steps:
        out += (
            "**Per step** (ms, p50 / p95; two-step: hold and confirm; contention: requests that won and lost separately):\n\n"
            "| Scenario | Conc. | Successful bookings/s | hold | confirm | won | lost |\n|---|---:|---:|---:|---:|---:|---:|\n"
        )
        for r in steps:
            ok = r.statuses.get("200", 0) + r.statuses.get("201", 0)
            out += (
                f"| {r.scenario} | {r.concurrency} | {ok / r.elapsed:,.1f} | {fmt_ms(r.tag_pct('hold', 50))} / {fmt_ms(r.tag_pct('hold', 95))} "
                f"| {fmt_ms(r.tag_pct('confirm', 50))} / {fmt_ms(r.tag_pct('confirm', 95))} "
                f"| {fmt_ms(r.tag_pct('won', 50))} / {fmt_ms(r.tag_pct('won', 95))} | {fmt_ms(r.tag_pct('lost', 50))} / {fmt_ms(r.tag_pct('lost', 95))} |\n"
            )
        out += "\n"
    if contention:
        out += (
            "**Contention invariant** (client side, every attempt of every worker):\n\n"
            "| Contested slots | Attempts | Bookings granted | 409 APPT_002 | Other answers | Slots with ≠ 1 granted booking |\n"
            "|---:|---:|---:|---:|---:|---:|\n"
            f"| {contention['slots']:,} | {contention['attempts']:,} | {contention['granted']:,} | {contention['appt_002']:,} "
            f"| {contention['other']:,} | {len(contention['slots_not_one'])} |\n\n"
        )
    if verify:
        out += (
            "**Database check after the run** (bench/dataset.py `verify`, over the whole appointments table): "
            f"{verify['doctor_overlaps']} overlapping active appointments of one doctor (blocked time), "
            f"{verify['patient_overlaps']} of one patient; contention slots: {verify['contention_slots_taken']:,} taken, "
            f"{verify['contention_slots_doubled']} with more than one active appointment; appointments of the bench "
            f"patients by status: {', '.join(f'{k} {v:,}' for k, v in verify['bench_patient_appointments'].items()) or 'none'} "
            f"({verify['appointments_total']:,} appointments in all; check took {verify['overlap_check_seconds']} s).\n\n"
        )
    if hold:
        out += (
            f"**SQL of one booking** ({'hold + confirm' if len(hold.get('status', [])) > 1 else 'one request with the reason'}; "
            f"test client, rolled back; {hold['queries']} statements without savepoints, counting BEGIN and the ROLLBACK, "
            f"{hold['ms']:.0f} ms; SELECTs with `EXPLAIN (ANALYZE, BUFFERS)`, planning / execution ms, run after the rollback, so "
            "lookups of the new appointment find 0 rows):\n\n"
            "| # | Query | ms | Rows | Plan |\n|---:|---|---:|---:|---|\n"
        )
        for i, x in enumerate(hold.get("explain", []), 1):
            out += f"| {i} | {x['label']}: `{x['sql'][:70].replace('|', '/')}…` | {explain_cell(x)} | {x.get('rows', '–')} | {scans_text(x, 2)} |\n"
        out += "\n"
    out += "**Interpretation**\n\n" + booking_interpretation(results, contention, verify, hold, server) + "\n"
    return out


# --- Step 10: the database's own ceiling (pgbench) and the mix report ---------------------

PGBENCH_ROWS = 10_000
PGBENCH_SCRIPTS = {
    # a booking-like write transaction: one indexed read, one row update, a commit (WAL flush)
    "read-update-commit": f"\\set id random(1, {PGBENCH_ROWS})\nBEGIN;\nSELECT status FROM appointments_appointment WHERE id = :id;\n"
                          "UPDATE bench_pgbench SET n = n + 1 WHERE id = :id;\nCOMMIT;\n",
    # the read side: one indexed read per transaction
    "select-only": f"\\set id random(1, {PGBENCH_ROWS})\nSELECT status FROM appointments_appointment WHERE id = :id;\n",
}


def pgbench_levels(levels: list[int], duration: float) -> dict:
    """pgbench on the bench database at the mix's client counts, right after the HTTP levels (same
    machine, same PostgreSQL): the transactions/s the database itself sustains, the ceiling the
    application's numbers are compared with. A table of its own (``bench_pgbench``) takes the
    updates; the reads hit the appointments table."""
    import shutil

    import psycopg
    from psycopg.conninfo import make_conninfo

    pgbench = shutil.which("pgbench")
    if not pgbench:
        log("pgbench not found (Debian: postgresql-client): no database ceiling in this run")
        return {}
    conninfo = make_conninfo(admin_dsn(), dbname=db_name())
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_pgbench (id integer PRIMARY KEY, n bigint NOT NULL DEFAULT 0)")
        conn.execute("INSERT INTO bench_pgbench (id) SELECT generate_series(1, %s) ON CONFLICT DO NOTHING", [PGBENCH_ROWS])
    seconds = max(3, int(duration / 2))
    out: dict = {"seconds": seconds, "rows": []}
    for c in levels:
        for name, script in PGBENCH_SCRIPTS.items():
            path = VAR / f"bench-pgbench-{name}.sql"
            path.write_text(script)
            proc = subprocess.run([pgbench, "-n", "-c", str(c), "-j", str(min(c, os.cpu_count() or 1)), "-T", str(seconds), "-f", str(path), conninfo],
                                  capture_output=True, text=True, timeout=seconds + 60)
            tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", proc.stdout)
            lat = re.search(r"latency average = ([0-9.]+) ms", proc.stdout)
            if proc.returncode != 0 or not tps:
                log(f"  pgbench {name} -c {c} failed: {(proc.stderr or proc.stdout)[-300:]}")
                continue
            row = {"script": name, "clients": c, "tps": float(tps.group(1)), "latency_ms": float(lat.group(1)) if lat else float("nan")}
            out["rows"].append(row)
            log(f"  pgbench {name} -c {c}: {row['tps']:,.0f} tps, average latency {row['latency_ms']:.2f} ms")
    return out


def mix_knee(results: list[Result]) -> Result | None:
    """The knee: the lowest level that already reaches 90% of the best throughput, when a higher
    level exists (more clients past it only queue: throughput flat, p99 climbing). Robust to one
    noisy level, unlike comparing neighbours. None when the best is still at the last level."""
    rows = sorted((r for r in results if r.count), key=lambda r: r.concurrency)
    if len(rows) < 2:
        return None
    best = max(r.rps for r in rows)
    knee = next(r for r in rows if r.rps >= 0.9 * best)
    return knee if knee is not rows[-1] else None


MIX_FINAL_COMMAND = (".venv/bin/python bench/run.py --scenarios mix --server gunicorn --workers 2 --threads 8 "
                     "--concurrency 1,2,4,8,16,32,64 --duration 20 --warmup 5 --idle-wait 60")


def render_mix(results, probe, data, header, verify: dict | None, pg: dict) -> str:
    out = header + (f"- **The measurement to keep** is made on a quiet machine with the full data set (20,000 doctors, 500,000 appointments; "
                    f"seeded on the first run, about 2 minutes), gunicorn as in docs/deployment.md: `{MIX_FINAL_COMMAND}` "
                    "(`--server daphne` for the ASGI server instead)\n")
    out += data_line(data) + "\n" + table(results) + "\n" + TABLE_NOTE
    out += ("A request is one HTTP request, except `book+pay`: one whole booking with payment (four requests: book with the reason, "
            "start the payment, the sandbox card page, verify), counted once with its total time.\n\n")
    kinds = [k for k, _ in MIX]
    out += ("**By kind** (ms, p50 / p99; the share of requests in brackets):\n\n| Conc. | " + " | ".join(kinds)
            + " | book+pay steps p50: book / pay-start / card / verify |\n|---:|" + "---:|" * (len(kinds) + 1) + "\n")
    for r in results:
        cells = []
        for k in kinds:
            n = len(r.tags.get(k, []))
            cells.append(f"{fmt_ms(r.tag_pct(k, 50))} / {fmt_ms(r.tag_pct(k, 99))} ({100 * n / r.count:.0f}%)" if r.count and n else "–")
        steps = " / ".join(fmt_ms(r.tag_pct(f"step:{s}", 50)) for s in ("book", "pay-start", "card", "verify"))
        out += f"| {r.concurrency} | " + " | ".join(cells) + f" | {steps} |\n"
    out += "\n"
    if pg.get("rows"):
        out += (f"**The database's own ceiling** (pgbench on the same PostgreSQL, right after the HTTP levels, {pg['seconds']} s per level; "
                "`read-update-commit`: one indexed read of `appointments_appointment`, one row update, a commit; `select-only`: the read alone):\n\n"
                "| Clients | read-update-commit tps | avg ms | select-only tps | avg ms | mix req/s at that concurrency | mix as % of read-update-commit |\n"
                "|---:|---:|---:|---:|---:|---:|---:|\n")
        by = {(x["script"], x["clients"]): x for x in pg["rows"]}
        for r in results:
            w, ro = by.get(("read-update-commit", r.concurrency)), by.get(("select-only", r.concurrency))
            out += (f"| {r.concurrency} | {w['tps']:,.0f} | {w['latency_ms']:.2f} | " if w else f"| {r.concurrency} | – | – | ")
            out += (f"{ro['tps']:,.0f} | {ro['latency_ms']:.2f} | " if ro else "– | – | ")
            out += f"{r.rps:,.1f} | " + (f"{100 * r.rps / w['tps']:.1f}% |" if w and w["tps"] else "– |") + "\n"
        out += "\n"
    if verify:
        checks = ", ".join(f"{k} {verify.get(k, '–')}" for k in ("doctor_overlaps", "patient_overlaps", "paid_not_confirmed", "confirmed_unpaid", "double_paid", "amount_mismatch", "charged_not_recorded"))
        out += f"**Database check after the run** (bench/dataset.py `verify`; each must be 0): {checks}; payments by status: {verify.get('payments')}.\n\n"
    slowest = []
    for kind, value in (probe.get("requests") or {}).items():
        entries = value.items() if isinstance(value, dict) and "status" not in value else enumerate(value if isinstance(value, list) else [value])
        for label, e in entries:
            for x in (e or {}).get("explain", []):
                slowest.append((x.get("execution_ms", 0.0) + x.get("planning_ms", 0.0), f"{kind} {label}", x))
    if slowest:
        ms, where, x = max(slowest, key=lambda t: t[0])
        out += (f"**Slowest query of the mix's requests** (EXPLAIN (ANALYZE, BUFFERS) of one request of each kind, test client; full plans in "
                f"`{EXPLAIN_FILE.relative_to(ROOT)}`): {where}, {x['label']}: planning {x['planning_ms']} ms + execution {x['execution_ms']} ms, "
                f"{scans_text(x, 4)}.\n\n")
    out += "**Interpretation**\n\n" + mix_interpretation(results, pg) + "\n"
    return out


def mix_interpretation(results: list[Result], pg: dict) -> str:
    rows = [r for r in results if r.count]
    if not rows:
        return "- No level completed.\n"
    lines = []
    top = max(rows, key=lambda r: r.rps)
    k = mix_knee(rows)
    if k:
        after = [r for r in rows if r.concurrency > k.concurrency]
        lines.append(f"- **Knee at concurrency {k.concurrency}:** {k.rps:,.1f} req/s, p99 {fmt_ms(k.pct(99))} ms, already 90% of the best "
                     f"throughput ({top.rps:,.1f} req/s at {top.concurrency}); more clients only queue: p99 {fmt_ms(after[-1].pct(99))} ms at {after[-1].concurrency}.")
    else:
        lines.append(f"- **No knee within the levels run:** throughput still grew at the last level ({top.rps:,.1f} req/s at {top.concurrency}); "
                     "run higher `--concurrency` levels.")
    busy = [r for r in rows if r.cpu_pct("other") > 50]
    if busy:
        lines.append(f"- **The machine was busy with other work** during {len(busy)} of {len(rows)} levels (the `other` CPU column above "
                     "50% of a core): these figures check the harness, they are not the measurement; re-run on a quiet machine.")
    errors = sum(r.errors for r in rows)
    lines.append(f"- **Errors:** {errors} of {sum(r.count for r in rows):,} requests" + (f" ({', '.join(sorted({s for r in rows for s in r.statuses if not s.startswith('2')}))})" if errors else "") + ".")
    w = [x for x in pg.get("rows", []) if x["script"] == "read-update-commit"]
    if w:
        best_db = max(w, key=lambda x: x["tps"])
        lines.append(f"- **Against the database's ceiling:** the best mix throughput is {100 * top.rps / best_db['tps']:.1f}% of the "
                     f"read-update-commit transactions/s pgbench gets from the same PostgreSQL ({best_db['tps']:,.0f} tps at {best_db['clients']} clients): "
                     f"the application tier (server CPU {top.server_ms_per_request():.1f} ms per request), not PostgreSQL, sets the limit.")
    return "\n".join(lines) + "\n"


def booking_interpretation(results, contention, verify, hold, server: Server | None = None) -> str:
    lines = []
    book = [r for r in results if r.scenario == "book" and r.count]
    cores = os.cpu_count() or 1
    if book:
        b = max(book, key=lambda r: r.statuses.get("200", 0) / r.elapsed)
        rate = b.statuses.get("200", 0) / b.elapsed
        per = {k: 1000 * b.cpu.get(k, 0) / max(b.count, 1) for k in ("server", "postgres", "redis", "client")}
        total = sum(per.values())
        workers = 1 if server is None or server.kind == "daphne" else server.workers
        lines.append(
            f"- **Target (≥ 200 successful bookings/s):** {'**met**' if rate >= 200 else '**not met**'} — the best level "
            f"(concurrency {b.concurrency}) completed {rate:,.1f} bookings/s, {100 * rate / 200:.0f}% of the target."
        )
        lines.append(
            f"- **What bounds it: CPU.** A booking costs the server {per['server']:.1f} ms of CPU, PostgreSQL "
            f"{per['postgres']:.1f} ms, Redis {per['redis']:.1f} ms and the load generator {per['client']:.1f} ms: "
            f"{total:.1f} ms in all, so the {cores} cores of this machine (shared by all four) cannot exceed "
            f"≈ {cores * 1000 / total:,.0f} bookings/s with this client; at the best level they were "
            f"{sum(b.cpu_pct(k) for k in ('server', 'postgres', 'redis', 'client', 'other')) / cores:.0f}% busy "
            f"({cpu_split(b)}, other {b.cpu_pct('other'):.0f}%). "
            + (
                f"One server process is held to about one core by the GIL: alone it could not exceed "
                f"≈ {1000 / per['server']:,.0f} bookings/s."
                if workers == 1 else
                f"The server ran {workers} worker processes (each held to about one core by the GIL: together at most "
                f"≈ {workers * 1000 / per['server']:,.0f} bookings/s if they had the cores to themselves)."
            )
        )
        one = min(book, key=lambda r: r.concurrency)
        lines.append(f"- One client alone: {one.rps:,.1f} bookings/s, p50 {fmt_ms(one.pct(50))} ms per booking (one request).")
    two = [r for r in results if r.scenario == "book-two-step" and r.count]
    if two:
        t = max(two, key=lambda r: r.statuses.get("200", 0) / r.elapsed)
        same = next((r for r in book if r.concurrency == t.concurrency), None)
        lines.append(
            f"- **Two-step flow** (hold, then confirm: two requests): {t.statuses.get('200', 0) / t.elapsed:,.1f} bookings/s at "
            f"concurrency {t.concurrency}, {t.server_ms_per_request():.1f} ms of server CPU per booking"
            + (f" against {same.server_ms_per_request():.1f} ms in one request at the same concurrency" if same else "")
            + f" (hold p50 {fmt_ms(t.tag_pct('hold', 50))} ms, confirm p50 {fmt_ms(t.tag_pct('confirm', 50))} ms)."
        )
    cont = [r for r in results if r.scenario == "book-contention" and r.count]
    if cont:
        lines.append(
            "- **Contention:** " + "; ".join(
                f"at {r.concurrency} clients {r.statuses.get('201', 0) / r.elapsed:,.1f} slots booked/s, a losing request "
                f"answers in {fmt_ms(r.tag_pct('lost', 50))} ms (p50) / {fmt_ms(r.tag_pct('lost', 95))} ms (p95)"
                for r in cont
            )
            + ". A losing request is not cheap: before answering APPT_002 it computes three suggested slots "
            "(`next_free_slots`: the slot engine over 14 days)."
        )
    if contention:
        held = not contention["slots_not_one"] and not contention["other"]
        lines.append(
            f"- **Invariant {'held' if held else 'VIOLATED'}:** {contention['slots']:,} contested slots, "
            f"{contention['granted']:,} bookings granted, {contention['appt_002']:,} APPT_002"
            + (f", {contention['other']} other answers" if contention["other"] else "")
            + (f"; slots with ≠ 1 granted booking: {contention['slots_not_one'][:10]}" if contention["slots_not_one"] else "")
            + "."
        )
    if verify:
        ok = verify["doctor_overlaps"] == 0 and verify["patient_overlaps"] == 0 and verify["contention_slots_doubled"] == 0
        lines.append(
            f"- **Database:** {'no' if ok else '**SOME**'} overlapping active appointments after the run "
            f"(doctor {verify['doctor_overlaps']}, patient {verify['patient_overlaps']}, doubled contention slots "
            f"{verify['contention_slots_doubled']})."
        )
    if hold:
        lines.append(f"- One booking ({'hold + confirm' if len(hold.get('status', [])) > 1 else 'one request'}) runs {hold['queries']} SQL statements (test client).")
    exhausted = [r for r in results if r.exhausted]
    if exhausted:
        lines.append("- Workers ran out of targets in: " + ", ".join(f"{r.scenario}@{r.concurrency} ({r.exhausted})" for r in exhausted) + ".")
    errors = [r for r in results if r.errors]
    lines.append(
        "- **Errors:** " + "; ".join(f"{r.scenario}@{r.concurrency}: {r.errors}/{r.count} ({', '.join(k for k in r.samples if k not in r.expected)})" for r in errors)
        if errors else "- No errors: every answer was 2xx (or the expected 409 APPT_002 under contention)."
    )
    return "\n".join(lines) + "\n"


EXPLAIN_FILE = VAR / "bench-explain.txt"


def write_explain_file(probe: dict) -> None:
    requests = probe.get("requests") or {}
    parts = []
    for combo, e in (requests.get("search") or {}).items():
        for x in e.get("explain", []):
            parts.append(f"### search {combo}: {x['label']}\n{x['sql']}\n\n{x['text']}\n")
    for i, e in enumerate(requests.get("slots") or []):
        for x in e.get("explain", []):
            parts.append(f"### slots #{i}: {x['label']}\n{x['sql']}\n\n{x['text']}\n")
    for x in (requests.get("hold") or {}).get("explain", []):
        parts.append(f"### hold: {x['label']}\n{x['sql']}\n\n{x['text']}\n")
    if parts:
        VAR.mkdir(exist_ok=True)
        EXPLAIN_FILE.write_text("\n".join(parts))


NEW_SECTIONS_ABOVE = "<!-- bench: new sections go above this line -->"


def update_doc(section: str, name: str = SECTION) -> None:
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
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
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke: short levels (2 s, concurrency 1,4), one scenario or two per area, the small data set; < 60 s once the data exists")
    parser.add_argument("--duration", type=float, help="seconds per concurrency level (default 10; 2 with --quick)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per scenario (default 3; 0.5 with --quick)")
    parser.add_argument("--concurrency", help="comma-separated levels for every scenario (default 1,4,16,32, 1,4 with --quick; "
                        "search-<combination> scenarios 1,8 and book-contention 8,32 unless given)")
    parser.add_argument("--scenarios", default="all",
                        help=f"comma-separated scenario or area names (areas: {', '.join(AREAS)}; default: all). "
                        f"Scenarios: {', '.join(SCENARIOS)}")
    parser.add_argument("--data-size", choices=["full", "quick"],
                        help="data set of the search/slots/booking areas: full = 20,000 doctors, 2,000 schedules, 500,000 "
                        "appointments (default); quick = a tenth (default with --quick). A larger data set already in the "
                        "database is reused as it is")
    parser.add_argument("--fresh-data", action="store_true",
                        help="drop and re-create the database and the data set (default: reuse the database when it holds a "
                        "complete bench data set and no migration the served tree lacks)")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the server and setup (repeatable), e.g. DB_POOL=false")
    parser.add_argument("--users", type=int, help="seeded patients (default 200; 50 with --quick); the booking scenarios "
                        "give each worker its own patient (book: the first half, book-contention: the second half)")
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
    parser.add_argument("--py-spy", metavar="PATH", help="profile the server with this py-spy binary during the highest level of "
                        "each scenario, sampling the thread that holds the GIL (where the server's Python CPU goes; adds "
                        "sampling overhead: use for diagnosis, with --no-write); collapsed stacks go to "
                        "var/bench-profile-<scenario>.txt and a summary is printed")
    parser.add_argument("--server", choices=list(SERVER_KINDS), default="daphne",
                        help="what serves the project: " + "; ".join(f"{k}: {v}" for k, v in SERVER_KINDS.items()) + " (default daphne)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes of --server gunicorn or uvicorn (default 1; Daphne is always one process)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument("--doc", type=Path, help=f"write the sections to this file instead of {DOC.relative_to(ROOT)} (e.g. a scratch copy)")
    args = parser.parse_args(argv)
    args.duration = args.duration if args.duration is not None else (2.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 3.0)
    args.users = args.users or (50 if args.quick else 200)
    args.idle_wait = args.idle_wait if args.idle_wait is not None else (0.0 if args.quick else 60.0)
    args.data_size = args.data_size or ("quick" if args.quick else "full")
    args.concurrency_given = args.concurrency is not None
    try:
        args.concurrency = [int(c) for c in (args.concurrency or ("1,4" if args.quick else "1,4,16,32")).split(",") if c.strip()]
    except ValueError:
        parser.error("--concurrency takes comma-separated integers, e.g. 1,4,16")
    if not args.concurrency or min(args.concurrency) < 1:
        parser.error("--concurrency levels must be >= 1")
    names: list[str] = []
    requested = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for item in requested:
        if item == "all":
            names += QUICK_SCENARIOS if args.quick else list(SCENARIOS)
        elif item in AREAS:
            names += AREAS[item]
        elif item in SCENARIOS:
            names.append(item)
        else:
            parser.error(f"unknown scenario or area {item!r}; choose from {', '.join([*AREAS, *SCENARIOS])}")
    args.scenarios = list(dict.fromkeys(names))
    if not args.scenarios:
        parser.error("no scenario selected")
    for item in args.server_env:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            parser.error(f"--server-env takes KEY=VALUE, got {item!r}")
        EXTRA_ENV[key] = value
    if args.duration <= 0 or args.users < 1:
        parser.error("--duration and --users must be positive")
    if args.workers < 1 or args.threads < 1 or (args.server == "daphne" and args.workers != 1):
        parser.error("--workers and --threads take positive numbers; --workers above 1 needs --server gunicorn or uvicorn")
    for name in ("book", "book-contention"):
        if name in args.scenarios and max(levels_of(args, name)) > args.users // 2:
            parser.error(f"{name} gives each worker its own patient: --users must be at least twice its highest concurrency")
    return args


def levels_of(args: argparse.Namespace, name: str) -> list[int]:
    scenario = SCENARIOS[name]
    if args.concurrency_given:
        return args.concurrency
    own = scenario.quick_levels if args.quick else scenario.levels
    return list(own) if own else args.concurrency


def areas_of(names: list[str]) -> list[str]:
    return [area for area in AREAS if any(SCENARIOS[n].area == area for n in names)]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- Profiling (--py-spy) -------------------------------------------------------------------


def profile_file(name: str) -> Path:
    return VAR / f"bench-profile-{name}.txt"


def start_profile(args, name: str, pid: int, duration: float):
    if not args.py_spy:
        return None
    out = profile_file(name)
    cmd = [args.py_spy, "record", "--pid", str(pid), "--duration", str(max(1, int(duration))), "--rate", "200",
           "--nonblocking", "--gil", "--format", "raw", "--output", str(out)]
    if args.server != "daphne":
        cmd.append("--subprocesses")  # the workers are the master's children
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# Inclusive shares of the server's busy samples: a sample counts for every label whose frame is
# on its stack (labels overlap: SQL compilation is inside prefetching, etc.).
PROFILE_LABELS = [
    ("all SQL (SQLCompiler.execute_sql: compile + round trip + rows)", "SQLCompiler.execute_sql"),
    ("SQL compilation (SQLCompiler.as_sql)", "SQLCompiler.as_sql"),
    ("psycopg Cursor.execute", "Cursor.execute"),
    ("prefetch_related (all)", "prefetch_related_objects"),
    ("M2M prefetch machinery (ManyRelatedManager)", "ManyRelatedManager"),
    ("paginator count", "Paginator.count"),
    ("DRF serialization", "Serializer.data"),
    ("JSON rendering", "JSONRenderer.render"),
    ("request validation (valid_input)", "valid_input"),
    ("validate_timezone (zoneinfo.available_timezones)", "available_timezones"),
    ("JWT authentication", "SessionBoundJWTAuthentication"),
    ("throttles", "allow_request"),
    ("slot engine (free_slots)", "free_slots"),
    ("cut_slots", "cut_slots"),
    ("suggested slots on APPT_002 (next_free_slots)", "next_free_slots"),
    ("next_available_refresh (after commit)", "next_available_refresh"),
    ("lapsed holds released (holds_release_expired, holds_expire)", "holds_expire"),
    ("the slot check of a booking (slot_check)", "slot_check"),
    ("audit log", "audit_record"),
    ("the answer (api._output: serialising; reading again only when the parties are not loaded)", "_output (appointments/api.py"),
    ("HTTP server (daphne/twisted)", "twisted/"),
    ("HTTP server (uvicorn)", "uvicorn/"),
    ("HTTP server (gunicorn)", "gunicorn/"),
    ("Django's ASGI handler (thread per request, request/response plumbing)", "django/core/handlers/asgi.py"),
    ("new thread per request (Thread.start/ThreadPoolExecutor)", "Thread.start"),
]


IDLE_FRAMES = ("selectors.py:", "threading.py:wait", ":Condition.wait", "queue.py:get", "concurrent/futures/thread.py:_worker",
               "psycopg_pool/pool.py:wait", "threading.py:_wait_for_tstate_lock")


def finish_profile(proc: subprocess.Popen, name: str, concurrency: int) -> None:
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return
    summary = summarize_profile(profile_file(name))
    if summary:
        log(f"  profile of {name}@{concurrency} ({profile_file(name).relative_to(ROOT)}):")
        for line in summary["lines"]:
            log("    " + line)


def summarize_profile(path: Path) -> dict | None:
    """Inclusive shares of known frames and the heaviest project functions of collapsed stacks."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    total = idle = 0
    shares: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    # py-spy shortens file names to their import path ("appointments/services.py")
    apps = {p.name for p in PROJECT.iterdir() if p.is_dir() and (p / "__init__.py").exists()} | {"medimeet"}
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        keys = []
        for f in frames:  # "function (path:line)"
            fn, _, where = f.partition(" (")
            file = where.rsplit(":", 1)[0]
            keys.append((fn, file))
        if keys and any(p in f"{keys[-1][1]}:{keys[-1][0]}" for p in IDLE_FRAMES):
            idle += n  # a thread waiting (event loop in epoll, executor threads for work, locks)
            continue
        total += n
        for label, pattern in PROFILE_LABELS:
            if pattern in stack:
                shares[label] = shares.get(label, 0) + n
        seen = set()
        for fn, file in keys:
            if file.split("/", 1)[0] in apps and not file.endswith("middleware.py"):  # middleware: every request
                key = f"{file}:{fn}"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] = inclusive.get(key, 0) + n
    if not total:
        return None
    out = [f"{total:,} busy samples ({idle:,} idle ones left out); inclusive shares:"]
    out += [f"{100 * v / total:5.1f}%  {k}" for k, v in sorted(shares.items(), key=lambda kv: -kv[1]) if v / total >= 0.02]
    out.append("heaviest project functions (inclusive):")
    out += [f"{100 * v / total:5.1f}%  {k}" for k, v in sorted(inclusive.items(), key=lambda kv: -kv[1])[:15]]
    return {"samples": total, "lines": out}


async def bench(args: argparse.Namespace, server: Server, scenarios: dict[str, Scenario]) -> list[Result]:
    base_url = f"http://127.0.0.1:{server.port}"
    results: list[Result] = []
    # Sanity: one request of each kind must succeed before anything is measured.
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for name, scenario in scenarios.items():
            scenario.begin_level(1)
            status, response, *_ = await scenario.request(client, 0)
            if not status.startswith("2"):
                raise BenchError(f"Sanity request of scenario {name!r} answered {status}: {response.text[:300]}\n{server.log_tail()}")
    for name, scenario in scenarios.items():
        levels = levels_of(args, name)
        duration = args.duration * scenario.duration_factor
        if args.warmup > 0:
            log(f"{name}: warm-up {args.warmup:g} s")
            await run_level(base_url, scenario, min(4, max(levels)), args.warmup, None, args.single_ip)
        for c in levels:
            flush_redis()
            waited = wait_for_quiet(args.idle_wait) if args.idle_wait > 0 else 0.0
            log(f"{name}: concurrency {c}, {duration:g} s")
            spy = start_profile(args, name, server.proc.pid, duration) if c == levels[-1] else None
            r = await run_level(base_url, scenario, c, duration, server.proc.pid, args.single_ip)
            if spy is not None:
                finish_profile(spy, name, c)
            r.waited = waited
            log(f"  -> {r.count} requests, {r.rps:.1f} req/s, p50 {fmt_ms(r.pct(50))} ms, p95 {fmt_ms(r.pct(95))} ms, "
                f"p99 {fmt_ms(r.pct(99))} ms, errors {r.errors}" + (f", {r.exhausted} workers ran out of targets" if r.exhausted else ""))
            results.append(r)
            if server.proc.poll() is not None:
                raise BenchError(f"The server died during {name}@{c}.\n{server.log_tail()}")
    return results


TITLES = {
    "search": "Doctor search: `GET /api/v1/doctors/` at 20,000 doctors (Step 2)",
    "slots": "Slots: `GET /api/v1/doctors/<slug>/slots/`, 30 days, 500,000 appointments (Step 3)",
    "booking": "Booking: throughput and contention (Step 3)",
    "mix": "Mixed load (Step 10): search, slots, booking with payment, records",
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = datetime.datetime.now(datetime.UTC)
    t0 = time.monotonic()
    py = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else "python"
    command = " ".join([py, "bench/run.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    try:
        server = Server(args.port or free_port(), args.server, args.workers, args.threads)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    areas = areas_of(args.scenarios)
    need_data = bool(NEEDS_DATASET & set(areas))

    def on_signal(signum, frame):  # Ctrl-C or SIGTERM: let `finally` stop the server
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    global PROJECT
    ref_sha = None
    data = verify = None
    contention: dict = {}
    pgbench_out: dict = {}
    try:
        if args.ref:
            PROJECT, ref_sha = export_ref(args.ref)
            log(f"serving a clean export of {args.ref} ({ref_sha}) from {PROJECT.relative_to(ROOT)}")
        commit_label = git_commit(args.ref, ref_sha)  # now: the tree may change while we run
        speed = {"before": python_speed()}
        check_services()
        info = machine_info()
        state = database_state()
        why = (
            "--fresh-data" if args.fresh_data else "it does not exist" if not state["exists"]
            else "it holds no bench data set" if not state["marker"]
            else f"it has migrations the served tree lacks ({', '.join(state['unknown_migrations'][:3])})" if state["unknown_migrations"]
            else ""
        )
        if why:
            log(f"recreating database {db_name()} ({why}) and migrating")
        else:
            log(f"reusing database {db_name()} (bench data set seeded {state['marker'].get('seeded_at')}; --fresh-data re-creates it); migrating")
        recreate_database(args.pg_connection_limit, drop=bool(why))
        flush_redis()
        run_checked([PYTHON, "manage.py", "migrate", "--noinput"], "manage.py migrate")
        VAR.mkdir(exist_ok=True)
        seed_file, probe_file, data_file, verify_file = (VAR / f"bench-{n}.json" for n in ("seed", "probe", "dataset", "verify"))
        if need_data:
            log(f"data set ({args.data_size}): reused when present, else seeded (a few minutes for the full one)")
            t_data = time.monotonic()
            run_checked([PYTHON, SETUP_SCRIPT, "dataset", "--size", args.data_size, "--out", str(data_file)], "data set", timeout=3600, stream=True)
            data = json.loads(data_file.read_text())
            log(f"  data set {'reused' if data['reused'] else 'seeded'} in {time.monotonic() - t_data:.0f} s: {data['counts']}")
        log(f"seeding {args.users} users" + (" and computing slot/booking targets" if {"slots", "booking", "mix"} & set(areas) else ""))
        seed_cmd = [PYTHON, SETUP_SCRIPT, "seed", "--users", str(args.users), "--password", PASSWORD, "--out", str(seed_file)]
        if "mix" in areas:
            seed_cmd += ["--sessions"]
        if {"slots", "booking", "mix"} & set(areas):
            seed_cmd += ["--targets", "--booking-workers", str(args.users // 2), "--per-worker", "400" if args.quick else "800",
                         "--contention-items", "3000"]
        run_checked(seed_cmd, "seeding")
        seed = json.loads(seed_file.read_text())
        log("measuring password hashing (one core, idle server) and query counts" + (", EXPLAIN of the new areas' queries" if need_data else ""))
        probe_cmd = [PYTHON, SETUP_SCRIPT, "probe", "--email", seed["users"][0], "--password", PASSWORD,
                     "--hash-seconds", "1" if args.quick else "3", "--out", str(probe_file)]
        if {"search", "mix"} & set(areas):
            probe_cmd += ["--search-combos", json.dumps({c: search_query(c, 3) for c in SEARCH_COMBOS})]
        if {"slots", "mix"} & set(areas):
            first, last = slots_window()
            ordinary = next(t for t in seed["targets"]["slots"] if not t[2])
            popular = next(t for t in seed["targets"]["slots"] if t[2])
            probe_cmd += ["--slots-target", json.dumps([[t[0], t[1], first, last, SLOTS_TZ] for t in (ordinary, popular)])]
        if {"booking", "mix"} & set(areas):
            booking = seed["targets"]["booking"]
            doctor, epoch = booking["plans"][-1][-1]
            probe_cmd += ["--hold-target", json.dumps([booking["doctors"][doctor][1], _iso(epoch)]), "--token", seed["tokens"][-1]]
        run_checked(probe_cmd, "probe")
        probe = json.loads(probe_file.read_text())
        write_explain_file(probe)
        hr = probe["hash_rate"]
        log(f"  {hr['algorithm']} ({hr['params']}): {hr['per_second']:.2f} hashes/s on one core")
        for name, q in probe["queries"].items():
            log(f"  {name}: HTTP {q['status']}, {len(q['queries'])} SQL queries")
        for kind, value in (probe.get("requests") or {}).items():
            for label, e in (value.items() if isinstance(value, dict) and "status" not in value else enumerate(value if isinstance(value, list) else [value])):
                if e:
                    log(f"  {kind} {label}: HTTP {e['status']}, {e['queries']} SQL statements, {e['ms']:.1f} ms (test client)")
        flush_redis()
        scenarios = {name: SCENARIOS[name](seed) for name in args.scenarios if SCENARIOS[name].area != signaling.AREA}
        if scenarios:
            log(f"starting server: {server.display_cmd} (log: {SERVER_LOG.relative_to(ROOT)})")
            server.start()
            server.wait_ready()
        results = asyncio.run(bench(args, server, scenarios)) if scenarios else []
        if signaling.AREA in areas:  # one Daphne process per channel layer, started by the area itself
            server.stop()
            signaling_out = signaling.run_area(sys.modules[__name__], args, [n for n in args.scenarios if n in signaling.SCENARIOS],
                                               lambda: Server(free_port(), "daphne"))
        if "book-contention" in scenarios:
            contention = scenarios["book-contention"].invariant()
        if "mix" in areas:
            pgbench_out = pgbench_levels(levels_of(args, "mix"), args.duration)
        if {"booking", "mix"} & set(areas):
            log("checking the database for double bookings")
            run_checked([PYTHON, SETUP_SCRIPT, "verify", "--out", str(verify_file)], "verify")
            verify = json.loads(verify_file.read_text())
            log(f"  {verify}")
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted, server stopped", file=sys.stderr)
        return 130
    finally:
        server.stop()
    speed["after"] = python_speed()

    by_area = {area: [r for r in results if SCENARIOS[r.scenario].area == area] for area in areas}
    sections = {}
    for area in areas:
        rows = by_area[area]
        names = [n for n in args.scenarios if SCENARIOS[n].area == area]
        if area == signaling.AREA:
            sections[area] = signaling.render(sys.modules[__name__], signaling_out["results"], signaling_out, info, command, started, commit_label, args, speed)
            continue
        if area == "auth":
            sections[area] = render_section(rows, probe, info, command, server, started, commit_label, args, speed)
            continue
        header = section_header(TITLES[area], rows, info, command, server, started, commit_label, args, speed, names,
                                load_extra=f"{args.users} seeded patients; " if area in ("booking", "mix") else "")
        if area == "mix":
            sections[area] = render_mix(rows, probe, data, header, verify, pgbench_out)
        elif area == "search":
            sections[area] = render_search(rows, probe, data, header)
        elif area == "slots":
            sections[area] = render_slots(rows, probe, data, header)
        else:
            sections[area] = render_booking(rows, probe, data, header, contention, verify, server)
    for area in areas:
        print(table(by_area[area]) if area != signaling.AREA else signaling.table(signaling_out["results"]))
    if "auth" in areas:
        print(interpretation(by_area["auth"], probe))
    for area in ("search", "slots", "booking", "mix", signaling.AREA):
        if area in sections:
            text = sections[area]
            print(text[text.index("**Interpretation**"):])
    if not args.no_write:
        global DOC
        if args.doc:
            DOC = args.doc.resolve()
        for area, text in sections.items():
            update_doc(text, area)
        log(f"updated {DOC} ({', '.join(sections)})")
    log(f"done in {time.monotonic() - t0:.0f} s")
    failed = any(r.errors for r in results)
    if signaling.AREA in areas:
        failed = failed or any(r.errors for r in signaling_out["results"])
    if contention and (contention["slots_not_one"] or contention["other"]):
        failed = True
    if verify and (verify["doctor_overlaps"] or verify["patient_overlaps"] or verify["contention_slots_doubled"]
                   or any(verify.get(k) for k in ("paid_not_confirmed", "confirmed_unpaid", "double_paid", "amount_mismatch"))):
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
