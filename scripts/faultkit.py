"""Shared pieces of the fault-injection scripts (scripts/fault-*; docs/testing.md, Fault injection).

Every script runs against throwaway servers of its own, so the machine's shared PostgreSQL and
Redis stay up: a private PostgreSQL cluster (initdb under /tmp/pgfault, port 5499, started as
the ``postgres`` user because initdb refuses root) and a private ``redis-server`` (port 6391,
no persistence). Both can be killed and restarted at will. The cluster is kept between runs
(the quick bench data set, 2,000 doctors, is seeded into it once by bench/setup_data.py and
reused); ``--fresh`` re-creates it.

The application runs as in production (docs/deployment.md) with ``medimeet.settings.local``
and ``DEBUG=false`` (the production settings only add secrets, TLS and collected static files).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
PY = str(ROOT / ".venv" / "bin" / "python")
BIN = ROOT / ".venv" / "bin"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_DIR = Path(os.environ.get("FAULT_PG_DIR", "/tmp/pgfault"))
PG_PORT = int(os.environ.get("FAULT_PG_PORT", "5499"))
REDIS_PORT = int(os.environ.get("FAULT_REDIS_PORT", "6391"))
DATABASE_URL = f"postgres://medimeet_bench@127.0.0.1:{PG_PORT}/medimeet_bench"
ADMIN_URL = f"postgres://postgres@127.0.0.1:{PG_PORT}/postgres"
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
T0 = time.monotonic()

sys.path.insert(0, str(ROOT / "bench"))


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(args: list[str]) -> subprocess.CompletedProcess:
    """Run a PostgreSQL server binary as the postgres user (initdb and postgres refuse root)."""
    cmd = args if os.geteuid() != 0 else ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(map(_quote, args))]
    return subprocess.run(cmd, capture_output=True, text=True)


def _quote(a: str) -> str:
    import shlex

    return shlex.quote(a)


# --- PostgreSQL (private cluster) ---------------------------------------------------------------


def pg_ensure(fresh: bool = False) -> None:
    if fresh and PG_DIR.exists():
        pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(PG_DIR)
    if not (PG_DIR / "PG_VERSION").exists():
        PG_DIR.mkdir(parents=True, exist_ok=True)
        shutil.chown(PG_DIR, "postgres", "postgres")
        r = as_postgres([str(PG_BIN / "initdb"), "-D", str(PG_DIR), "-A", "trust", "-U", "postgres", "--no-sync"])
        if r.returncode != 0:
            sys.exit(f"initdb failed: {r.stderr}")
        log(f"private PostgreSQL cluster created in {PG_DIR}")
    if not pg_running():
        pg_ctl("start")
    pg_wait()


def pg_ctl(action: str, *extra: str) -> float:
    """start / stop / restart the private cluster; returns the seconds it took."""
    t = time.monotonic()
    opts = f"-p {PG_PORT} -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on"
    r = as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(PG_DIR), "-l", str(PG_DIR / "server.log"), "-o", opts, "-w", action, *extra])
    if r.returncode != 0 and action != "stop":
        sys.exit(f"pg_ctl {action} failed: {r.stdout}{r.stderr}")
    return time.monotonic() - t


def pg_running() -> bool:
    return as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(PG_DIR), "status"]).returncode == 0


def pg_wait(timeout: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(ADMIN_URL, connect_timeout=2) as c:
                c.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --- Redis (private server) ----------------------------------------------------------------------


class PrivateRedis:
    def __init__(self, port: int = REDIS_PORT) -> None:
        self.port = port
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        import redis

        for _ in range(100):
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        sys.exit("private redis-server did not start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None


# --- The application -----------------------------------------------------------------------------


def app_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "medimeet.settings.local",
            "DEBUG": "false",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "BENCH_DATABASE_URL": DATABASE_URL,
            "BENCH_PG_ADMIN_URL": ADMIN_URL,
            "BENCH_REDIS_URL": REDIS_URL,
            "THROTTLE_ANON": "1000000/min",
            "THROTTLE_USER": "1000000/min",
            "JWT_ACCESS_TOKEN_LIFETIME_SECONDS": "86400",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def prepare_data(users: int = 16) -> dict:
    """Migrate the private database, seed the quick bench data set (once) and ``users`` patients
    with API tokens, web sessions and free slots to book (bench/setup_data.py)."""
    import run as bench  # bench/run.py: role and database creation

    os.environ.update({k: v for k, v in app_env().items() if k.startswith("BENCH_")})
    bench.DATABASE_URL, bench.PG_ADMIN_URL, bench.REDIS_URL = DATABASE_URL, ADMIN_URL, REDIS_URL
    state = bench.database_state()
    bench.recreate_database(500, drop=not state["marker"])
    env = app_env()
    check([PY, "manage.py", "migrate", "--noinput"], env, "migrate")
    VAR.mkdir(exist_ok=True)
    t = time.monotonic()
    check([PY, "bench/setup_data.py", "dataset", "--size", "quick", "--out", str(VAR / "fault-dataset.json")], env, "data set")
    log(f"data set ready in {time.monotonic() - t:.0f} s (quick bench data set: 2,000 doctors)")
    out = VAR / "fault-seed.json"
    check([PY, "bench/setup_data.py", "seed", "--users", str(users), "--password", "medimeet-fault-2026", "--targets",
           "--booking-workers", str(users), "--per-worker", "200", "--contention-items", "10", "--sessions", "--out", str(out)], env, "seed")
    return json.loads(out.read_text())


def check(args: list[str], env: dict, what: str) -> str:
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{what} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return r.stdout


def django_eval(code: str, **env: str) -> str:
    """Run Python with Django set up against the private services; returns its stdout."""
    return check([PY, "manage.py", "shell", "-c", code], app_env(**env), "manage.py shell")


def verify_database() -> dict:
    out = VAR / "fault-verify.json"
    check([PY, "bench/setup_data.py", "verify", "--out", str(out)], app_env(), "verify")
    return json.loads(out.read_text())


class Process:
    """A server or worker in a session of its own (stopped with its children)."""

    def __init__(self, name: str, cmd: list[str], env: dict) -> None:
        self.name = name
        self.logfile = VAR / f"fault-{name}.log"
        self.log = open(self.logfile, "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        self.log.close()


def start_server(kind: str, port: int, env: dict) -> Process:
    if kind == "gunicorn":  # docs/deployment.md: gthread workers for HTTP
        cmd = [str(BIN / "gunicorn"), "medimeet.wsgi:application", "--workers", "2", "--worker-class", "gthread", "--threads", "8",
               "--bind", f"127.0.0.1:{port}"]
    else:
        cmd = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "medimeet.asgi:application"]
    server = Process(kind, cmd, env)
    import httpx

    for _ in range(240):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.proc.poll() is not None:
            sys.exit(f"{kind} exited: see {server.logfile}")
        time.sleep(0.25)
    sys.exit(f"{kind} did not become healthy: see {server.logfile}")


def start_worker(name: str, env: dict, *extra: str) -> Process:
    return Process(name, [str(BIN / "celery"), "-A", "medimeet", "worker", "--loglevel", "INFO", "--concurrency", "1", "--pool", "prefork",
                          "--without-gossip", "--without-mingle", "-n", f"{name}@%h", *extra], env)


def envelope_ok(response) -> bool:
    try:
        return bool(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return False
