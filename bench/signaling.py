"""The `signaling` area of the benchmark harness: relay latency through the consultation socket.

bench/run.py imports this module (scenarios, the load generator, the report); it also runs as a
Django-side script that seeds the rooms, like bench/setup_data.py:

    python bench/signaling.py seed --rooms 1000 --out var/bench-signaling-seed.json

``seed`` makes N rooms exist: N doctors (users with a doctor profile that is not listed in
search) and N patients of their own e-mail domain, and for each pair a confirmed appointment
that started a minute ago with its consultation room; the rooms of earlier runs are deleted
first (consultations, participations and presence, appointments). Every doctor and patient gets
an API session and an access token (the `?token=` query parameter of the socket, as the mobile
app connects).

The load generator (one asyncio process, the `websockets` client) opens two sockets per room,
doctor first; the patient waits, the doctor admits them, both get `peer_ready`. Then each
room's patient sends a small `offer` whose SDP carries `time.perf_counter_ns()` at the send, at a
fixed rate per room (open loop, each room with its own phase), and the doctor's socket takes
the receive time minus that: the relay latency message in → consumer → channel layer group →
the other consumer → message out, on one clock. Rooms are added level by level (the sockets of
the previous levels stay open); one level raises the rate per room instead (LEVELS).
Each layer (in-memory, channels-redis) gets its own Daphne process and freshly seeded rooms;
``signal-redis-2`` runs channels-redis over two Daphne processes, each room's doctor connected
to one and its patient to the other, so every relayed frame crosses processes through Redis
(how production scales the sockets out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

DOMAIN = "signaling.bench.medimeet.local"  # not "@bench.medimeet.local": doctors/demo.py counts those
AREA = "signaling"
# (rooms, messages per second per room), in order; rooms are only ever added. 50 rooms at
# 10/s relay as many messages as 500 rooms at 1/s with a tenth of the sockets.
LEVELS = ((50, 1.0), (50, 10.0), (200, 1.0), (500, 1.0), (1000, 1.0))
QUICK_LEVELS = ((10, 1.0), (10, 5.0))
CONNECT_PARALLEL = 25  # rooms being opened at once (each: two handshakes, welcome, admit)
DRAIN_SECONDS = 5.0  # after a level, how long to wait for frames still in flight
TARGET_P99_MS = 20.0
TARGET_ROOMS = 500


class SignalingScenario:
    """What bench/run.py needs to know of a scenario (name, area, description, levels)."""

    name = ""
    area = AREA
    layer = ""
    description = ""
    levels = tuple(r for r, _ in LEVELS)
    quick_levels = tuple(r for r, _ in QUICK_LEVELS)
    duration_factor = 1.0
    expected: frozenset = frozenset()
    processes = 1  # Daphne processes; with two, each room's doctor and patient are on different ones


class MemoryScenario(SignalingScenario):
    name = "signal-memory"
    layer = "memory"
    description = "the in-memory channel layer (the server without REDIS_URL)"


class RedisScenario(SignalingScenario):
    name = "signal-redis"
    layer = "redis"
    description = "channels-redis on loopback (REDIS_URL set)"


class RedisTwoProcessesScenario(SignalingScenario):
    name = "signal-redis-2"
    layer = "redis2"
    processes = 2
    description = "channels-redis over two Daphne processes, the doctor and the patient of each room on different ones"


SCENARIOS = {s.name: s for s in (MemoryScenario, RedisScenario, RedisTwoProcessesScenario)}


# --- Django side: seeding (run as a script in the served tree) -------------------------------


def seed(rooms: int) -> dict:
    from datetime import timedelta

    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone
    from rest_framework_simplejwt.settings import api_settings as jwt_settings

    from accounts.models import ApiSession, User
    from accounts.tokens import tokens_issue
    from appointments.models import Appointment
    from consultations.models import Consultation
    from doctors.models import DoctorProfile, DoctorService, Specialization

    t0 = time.perf_counter()
    now = timezone.now().replace(microsecond=0)
    with transaction.atomic():
        old = Appointment.objects.filter(doctor__user__email__endswith="@" + DOMAIN)
        Consultation.objects.filter(appointment__in=old).delete()  # participations, presence, chat
        removed = old.delete()[1].get("appointments.Appointment", 0)
        password = make_password(None)  # unusable: these users only use tokens
        emails = [f"sig-{kind}-{i:05d}@{DOMAIN}" for i in range(rooms) for kind in ("doctor", "patient")]
        have = set(User.objects.filter(email__in=emails).values_list("email", flat=True))
        User.objects.bulk_create(
            [
                User(email=e, password=password, first_name="Signal", last_name=e.split("@")[0], timezone="UTC",
                     role=User.Role.DOCTOR if "-doctor-" in e else User.Role.PATIENT, date_joined=now)
                for e in emails if e not in have
            ],
            batch_size=1000,
        )
        users = {u.email: u for u in User.objects.filter(email__in=emails)}
        User.objects.filter(pk__in=[u.pk for u in users.values()]).update(is_active=True, status="active")
        spec = Specialization.objects.order_by("pk").first() or Specialization.objects.create(name="General practice", slug="bench-general-practice")
        doctor_users = [users[f"sig-doctor-{i:05d}@{DOMAIN}"] for i in range(rooms)]
        have = set(DoctorProfile.objects.filter(user__in=doctor_users).values_list("user_id", flat=True))
        DoctorProfile.objects.bulk_create(
            [
                DoctorProfile(user=u, slug=f"sig-doctor-{u.pk}", verification_status=DoctorProfile.Status.SUBMITTED,
                              licence_number=f"S{u.pk:08d}", licence_authority="Bench Medical Council", licence_country="ZZ",
                              licence_expiry=now.date() + timedelta(days=730), primary_specialization=spec)
                for u in doctor_users if u.pk not in have
            ],
            batch_size=1000,
        )
        doctors = {d.user_id: d for d in DoctorProfile.objects.filter(user__in=doctor_users)}
        have = set(DoctorService.objects.filter(doctor__in=doctors.values()).values_list("doctor_id", flat=True))
        DoctorService.objects.bulk_create(
            [DoctorService(doctor=d, name="Video consultation", price_minor=3000, currency="GBP", duration_minutes=60) for d in doctors.values() if d.pk not in have],
            batch_size=1000,
        )
        services = {s.doctor_id: s for s in DoctorService.objects.filter(doctor__in=doctors.values())}
        start, end = now - timedelta(minutes=1), now + timedelta(minutes=59)
        appointments = Appointment.objects.bulk_create(
            [
                Appointment(doctor=doctors[u.pk], patient=users[f"sig-patient-{i:05d}@{DOMAIN}"], service=services[doctors[u.pk].pk],
                            start=start, end=end, blocked_start=start, blocked_end=end, status=Appointment.Status.CONFIRMED,
                            price_minor=3000, currency="GBP", reason="Signaling benchmark")
                for i, u in enumerate(doctor_users)
            ],
            batch_size=1000,
        )
        consultations = Consultation.objects.bulk_create([Consultation(appointment=a) for a in appointments], batch_size=1000)
        ApiSession.objects.filter(user__in=users.values()).delete()
        expires = now + jwt_settings.REFRESH_TOKEN_LIFETIME
        sessions = ApiSession.objects.bulk_create(
            [ApiSession(user=u, device_name="bench", user_agent="medimeet-bench-signaling", ip_address="127.0.0.1", expires_at=expires) for u in users.values()],
            batch_size=1000,
        )
        tokens = {s.user.email: tokens_issue(session=s)["access"] for s in sessions}
    return {
        "rooms": [
            {"room": c.room, "doctor": tokens[f"sig-doctor-{i:05d}@{DOMAIN}"], "patient": tokens[f"sig-patient-{i:05d}@{DOMAIN}"]}
            for i, c in enumerate(consultations)
        ],
        "removed_appointments": removed,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _cli() -> None:
    project = Path(os.environ.get("BENCH_PROJECT_DIR") or Path(__file__).resolve().parent.parent)
    sys.path.insert(0, str(project))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medimeet.settings.local")
    import django

    django.setup()
    parser = argparse.ArgumentParser(description="Seed the rooms of the signaling benchmark.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("seed")
    p.add_argument("--rooms", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.write_text(json.dumps(seed(args.rooms)))


# --- Load generator ----------------------------------------------------------------------------


def raise_fd_limit(needed: int) -> tuple[int, int]:
    """Raise this process's RLIMIT_NOFILE soft limit to the hard limit (the server, started
    afterwards, inherits it): two client sockets per room here and two server sockets per room in
    Daphne. Returns (soft, hard) after the change."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    return soft, hard


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


@dataclass
class LevelResult:
    layer: str
    rooms: int
    rate: float
    sockets: int = 0
    sent: int = 0
    latencies: list[float] = field(default_factory=list)  # ms, every relayed frame
    elapsed: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds during the measured window
    failed_rooms: int = 0  # rooms of this level that could not be opened (handshake, welcome, admit)
    closed: int = 0  # sockets the server closed during the level
    errors_seen: dict[str, int] = field(default_factory=dict)  # error frames by code
    setup_seconds: float = 0.0  # opening this level's new rooms
    setup_rooms: int = 0
    setup_cpu_server: float = 0.0
    setup_ms: list[float] = field(default_factory=list)  # per new room: first handshake → peer_ready
    loop_lag_ms: list[float] = field(default_factory=list)  # client event-loop lag samples
    waited: float = 0.0

    @property
    def received(self) -> int:
        return len(self.latencies)

    @property
    def lost(self) -> int:
        return max(self.sent - self.received, 0)

    @property
    def errors(self) -> int:
        return self.failed_rooms + self.closed + self.lost + sum(self.errors_seen.values())

    @property
    def rate_total(self) -> float:
        return self.received / self.elapsed if self.elapsed else 0.0

    def cpu_pct(self, who: str) -> float:
        return 100 * self.cpu.get(who, 0.0) / self.elapsed if self.elapsed else 0.0

    @property
    def server_us_per_msg(self) -> float:
        return 1e6 * self.cpu.get("server", 0.0) / self.received if self.received else float("nan")

    @property
    def label(self) -> str:
        return f"{self.rooms}@{self.rate:g}"


class Room:
    def __init__(self, info: dict, gen: Generator, index: int) -> None:
        self.room, self.doctor_token, self.patient_token = info["room"], info["doctor"], info["patient"]
        self.gen = gen
        # With several server processes, the doctor and the patient connect to different ones.
        self.doctor_base = gen.ws_bases[index % len(gen.ws_bases)]
        self.patient_base = gen.ws_bases[(index + 1) % len(gen.ws_bases)]
        self.doctor = self.patient = None
        self.seq = 0
        self.tasks: list[asyncio.Task] = []

    async def _connect(self, base: str, token: str):
        import websockets

        url = f"{base}/ws/consultations/{self.room}/?token={token}"
        # No client pings (browsers send none; Daphne pings its clients itself); no compression
        # (Daphne does not negotiate permessage-deflate, so the frames are the same either way).
        return await websockets.connect(url, additional_headers={"Origin": self.gen.origin}, ping_interval=None,
                                        compression=None, max_queue=None, open_timeout=60, close_timeout=5)

    @staticmethod
    async def _until(ws, kind: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=max(deadline - time.monotonic(), 0.01)))
            if frame.get("type") == kind:
                return frame
            if frame.get("type") == "error":
                raise RuntimeError(f"{frame.get('code')}: {frame.get('message')}")

    async def open(self) -> float:
        t0 = time.perf_counter()
        self.doctor = await self._connect(self.doctor_base, self.doctor_token)
        welcome = await self._until(self.doctor, "welcome")
        if welcome["state"] != "admitted":
            raise RuntimeError(f"the doctor is {welcome['state']!r} on arrival")
        self.patient = await self._connect(self.patient_base, self.patient_token)
        welcome = await self._until(self.patient, "welcome")
        if welcome["state"] != "waiting":
            raise RuntimeError(f"the patient is {welcome['state']!r} on arrival")
        await self.doctor.send(json.dumps({"type": "admit", "participant": welcome["you"]["id"]}))
        await self._until(self.patient, "admitted")
        await self._until(self.doctor, "peer_ready")
        took = time.perf_counter() - t0
        self.tasks = [asyncio.create_task(self._read(self.doctor, measure=True)), asyncio.create_task(self._read(self.patient, measure=False))]
        return took

    async def _read(self, ws, measure: bool) -> None:
        import websockets

        gen = self.gen
        try:
            async for message in ws:
                now = time.perf_counter_ns()
                if measure and message.startswith('{"type": "offer"'):
                    sdp = json.loads(message)["sdp"]
                    sent_ns = int(sdp.split(" ", 3)[1])  # "v=0\r\no=bench <ns> <seq> ..."
                    gen.sink.append((now - sent_ns) / 1e6)
                elif message.startswith('{"type": "error"'):
                    code = json.loads(message).get("code", "?")
                    gen.errors_seen[code] = gen.errors_seen.get(code, 0) + 1
        except websockets.ConnectionClosed:
            pass
        if not gen.closing:
            gen.closed += 1

    async def send_offer(self) -> None:
        self.seq += 1
        sdp = f"v=0\r\no=bench {time.perf_counter_ns()} {self.seq} IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
        await self.patient.send(json.dumps({"type": "offer", "sdp": sdp}))

    async def close(self) -> None:
        for ws in (self.patient, self.doctor):
            if ws is not None:
                try:
                    await ws.close()
                except Exception:  # noqa: BLE001 - closing at the end; the server may be gone
                    pass


class Generator:
    def __init__(self, ports: list[int], rooms: list[dict]) -> None:
        self.ws_bases = [f"ws://127.0.0.1:{port}" for port in ports]
        self.origin = f"http://127.0.0.1:{ports[0]}"
        self.pending = list(rooms)  # seeded, not opened yet
        self.open_rooms: list[Room] = []
        self.sink: list[float] = []
        self.closed = 0
        self.closing = False
        self.errors_seen: dict[str, int] = {}
        self.failures: dict[str, int] = {}

    async def grow(self, rooms: int) -> tuple[int, list[float]]:
        """Open rooms until ``rooms`` are open; (rooms that failed, setup seconds of each new room)."""
        want = rooms - len(self.open_rooms)
        first = len(self.open_rooms)
        todo = [Room(info, self, first + i) for i, info in enumerate(self.pending[:want])]
        del self.pending[:want]
        gate = asyncio.Semaphore(CONNECT_PARALLEL)
        took: list[float] = []
        failed = 0

        async def one(room: Room) -> None:
            nonlocal failed
            async with gate:
                try:
                    took.append(await room.open())
                    self.open_rooms.append(room)
                except Exception as exc:  # noqa: BLE001 - any failure to open is counted and shown
                    failed += 1
                    key = f"{type(exc).__name__}: {str(exc)[:120]}"
                    self.failures[key] = self.failures.get(key, 0) + 1
                    await room.close()

        await asyncio.gather(*(one(r) for r in todo))
        return failed, took

    async def send_for(self, rate: float, seconds: float) -> int:
        """Every open room's patient sends ``rate`` offers per second for ``seconds``; returns how many were sent."""
        start = time.perf_counter() + 0.05
        deadline = start + seconds
        sent = 0

        async def sender(room: Room, phase: float) -> None:
            nonlocal sent
            k = 0
            while True:
                due = start + phase + k / rate
                if due >= deadline:
                    return
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    await room.send_offer()
                except Exception:  # noqa: BLE001 - a closed socket: counted by its reader
                    return
                sent += 1
                k += 1

        rng = random.Random(len(self.open_rooms))
        await asyncio.gather(*(sender(r, rng.random() / rate) for r in self.open_rooms))
        return sent

    async def close_all(self) -> None:
        self.closing = True
        rooms, self.open_rooms = self.open_rooms, []
        try:
            await asyncio.wait_for(asyncio.gather(*(r.close() for r in rooms)), timeout=60)
        except TimeoutError:
            pass
        for r in rooms:
            for t in r.tasks:
                t.cancel()


async def loop_lag(samples: list[float], stop: asyncio.Event, interval: float = 0.01) -> None:
    """How late the client's event loop wakes up: latency measured in the client includes it."""
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(interval)
        samples.append((time.perf_counter() - t - interval) * 1000)


def levels_for(args, scenario: type[SignalingScenario]) -> list[tuple[int, float]]:
    if args.concurrency_given:  # --concurrency: room counts, one message per second per room
        return [(c, 1.0) for c in args.concurrency]
    return list(QUICK_LEVELS if args.quick else LEVELS)


async def run_layer(h, args, scenario: type[SignalingScenario], servers: list, rooms: list[dict], failures: dict) -> list[LevelResult]:
    """One layer: the levels against running servers (their CPU summed as "server"). ``h`` is
    bench/run.py (cpu_snapshot, log, ...)."""
    gen = Generator([server.port for server in servers], rooms)
    pids = [server.proc.pid for server in servers]
    levels = levels_for(args, scenario)
    results: list[LevelResult] = []
    try:
        for n, (target, rate) in enumerate(levels):
            r = LevelResult(scenario.layer, target, rate)
            if target > len(gen.open_rooms):
                h.log(f"{scenario.name}: opening rooms {len(gen.open_rooms)} → {target} ({CONNECT_PARALLEL} at a time)")
                before = h.cpu_snapshot(*pids)
                t0 = time.perf_counter()
                r.failed_rooms, r.setup_ms = await gen.grow(target)
                r.setup_ms = [x * 1000 for x in r.setup_ms]
                r.setup_seconds = time.perf_counter() - t0
                r.setup_rooms = len(r.setup_ms)
                r.setup_cpu_server = h.cpu_snapshot(*pids)["server"] - before["server"]
                h.log(f"  {r.setup_rooms} rooms opened in {r.setup_seconds:.1f} s (p50 {pct(r.setup_ms, 50):.0f} ms, p99 {pct(r.setup_ms, 99):.0f} ms per room), "
                      f"{r.failed_rooms} failed" + (f": {gen.failures}" if r.failed_rooms else ""))
                await asyncio.sleep(1.0)  # presence and peer_ready fan-out settles
            r.sockets = 2 * len(gen.open_rooms)
            if args.warmup > 0:
                await gen.send_for(rate, args.warmup)
                await asyncio.sleep(1.0)
            r.waited = h.wait_for_quiet(args.idle_wait) if args.idle_wait > 0 else 0.0
            gen.sink, gen.errors_seen, closed_before = [], {}, gen.closed
            h.log(f"{scenario.name}: {len(gen.open_rooms)} rooms ({r.sockets} sockets), {rate:g} msg/s per room, {args.duration:g} s")
            spy = h.start_profile(args, f"{scenario.name}-{target}-{rate:g}", pids[0], args.duration) if n == len(levels) - 1 else None
            stop = asyncio.Event()
            lag = asyncio.create_task(loop_lag(r.loop_lag_ms, stop))
            before = h.cpu_snapshot(*pids)
            t0 = time.perf_counter()
            r.sent = await gen.send_for(rate, args.duration)
            r.elapsed = time.perf_counter() - t0
            after = h.cpu_snapshot(*pids)
            stop.set()
            await lag
            drain = time.perf_counter() + DRAIN_SECONDS
            while len(gen.sink) < r.sent and time.perf_counter() < drain:
                await asyncio.sleep(0.05)
            if spy is not None:
                h.finish_profile(spy, f"{scenario.name}-{target}-{rate:g}", target)
            r.latencies = list(gen.sink)
            r.errors_seen = dict(gen.errors_seen)
            r.closed = gen.closed - closed_before
            r.cpu = {k: after[k] - before.get(k, 0.0) for k in after}
            if "machine" in r.cpu:
                ours = sum(r.cpu[k] for k in ("server", "postgres", "redis", "client"))
                r.cpu["other"] = max(r.cpu.pop("machine") - ours, 0.0)
            h.log(f"  -> {r.received:,}/{r.sent:,} relayed, {r.rate_total:,.0f} msg/s, p50 {pct(r.latencies, 50):.2f} ms, p99 {pct(r.latencies, 99):.2f} ms, "
                  f"max {max(r.latencies, default=float('nan')):.1f} ms, server CPU {r.cpu_pct('server'):.0f}%, errors {r.errors}")
            results.append(r)
            for server in servers:
                if server.proc.poll() is not None:
                    raise h.BenchError(f"A server died during {scenario.name} {r.label}.\n{server.log_tail()}")
    finally:
        for key, n in gen.failures.items():
            failures[key] = failures.get(key, 0) + n
        await gen.close_all()
    return results


def run_area(h, args, names: list[str], server_factory) -> dict:
    """Each selected layer: seed fresh rooms, start its Daphne process(es) with that layer, run the
    levels, stop them. Returns {"results": [...], "seed_seconds": ..., "fd_limit": ...}."""
    most = max(r for name in names for r, _ in levels_for(args, SCENARIOS[name]))
    fd = raise_fd_limit(4 * most + 1024)
    h.log(f"signaling: RLIMIT_NOFILE {fd[0]} (hard {fd[1]}), {most} rooms = {2 * most} client sockets")
    out: dict = {"results": [], "seed_seconds": [], "fd_limit": fd, "failures": {}, "servers": {}}
    seed_file = h.VAR / "bench-signaling-seed.json"
    for name in names:
        scenario = SCENARIOS[name]
        h.log(f"{name}: seeding {most} rooms")
        h.run_checked([h.PYTHON, str(Path(__file__).resolve()), "seed", "--rooms", str(most), "--out", str(seed_file)], "signaling seed")
        seeded = json.loads(seed_file.read_text())
        out["seed_seconds"].append(seeded["seconds"])
        servers = [server_factory() for _ in range(scenario.processes)]
        saved = dict(h.EXTRA_ENV)
        if scenario.layer == "memory":
            h.EXTRA_ENV["REDIS_URL"] = ""  # settings: no REDIS_URL → InMemoryChannelLayer (and a local-memory cache)
        try:
            h.flush_redis()
            for server in servers:
                h.log(f"{name}: starting {server.display_cmd} ({scenario.description})")
                server.start()
            for server in servers:
                server.wait_ready()
            out["servers"][name] = " and ".join(f"`{server.display_cmd}`" for server in servers)
            out["results"] += asyncio.run(run_layer(h, args, scenario, servers, seeded["rooms"], out["failures"]))
        finally:
            for server in servers:
                server.stop()
            h.EXTRA_ENV.clear()
            h.EXTRA_ENV.update(saved)
    return out


# --- Report ------------------------------------------------------------------------------------


def _ms(x: float) -> str:
    if x != x:
        return "–"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


LAYER_NAMES = {"memory": "in-memory", "redis": "channels-redis", "redis2": "channels-redis, 2 processes"}


def table(results: list[LevelResult]) -> str:
    head = (
        "| Layer | Rooms | Sockets | Msg/s per room | Relayed msg/s | p50 ms | p95 ms | p99 ms | max ms | Errors "
        "| Server CPU µs/msg | CPU % server / pg / redis / client / other | Client loop lag p99 ms |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for r in results:
        parts = []
        if r.failed_rooms:
            parts.append(f"{r.failed_rooms} rooms not opened")
        if r.closed:
            parts.append(f"{r.closed} sockets closed")
        if r.lost:
            parts.append(f"{r.lost} frames lost")
        parts += [f"{code}×{n}" for code, n in sorted(r.errors_seen.items())]
        cpu = " / ".join(f"{r.cpu_pct(k):.0f}" if k in r.cpu else "–" for k in ("server", "postgres", "redis", "client", "other"))
        rows.append(
            f"| {LAYER_NAMES[r.layer]} | {r.rooms:,} | {r.sockets:,} | {r.rate:g} | {r.rate_total:,.0f} | {_ms(pct(r.latencies, 50))} "
            f"| {_ms(pct(r.latencies, 95))} | {_ms(pct(r.latencies, 99))} | {_ms(max(r.latencies, default=float('nan')))} "
            f"| {r.errors} ({', '.join(parts) if parts else 'none'}) | {r.server_us_per_msg:,.0f} | {cpu} | {_ms(pct(r.loop_lag_ms, 99))} |"
        )
    return head + "\n".join(rows) + "\n"


def setup_table(results: list[LevelResult]) -> str:
    rows = [r for r in results if r.setup_rooms or r.failed_rooms]
    if not rows:
        return ""
    out = (
        "| Layer | Rooms opened | Seconds | Rooms/s | Per room p50 / p99 ms (handshakes → peer_ready) | Server CPU ms per room | Failed |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n"
    )
    for r in rows:
        out += (
            f"| {LAYER_NAMES[r.layer]} | {len(r.setup_ms) + r.failed_rooms:,} → {r.rooms:,} | {r.setup_seconds:.1f} | {r.setup_rooms / r.setup_seconds if r.setup_seconds else 0:,.0f} "
            f"| {_ms(pct(r.setup_ms, 50))} / {_ms(pct(r.setup_ms, 99))} | {1000 * r.setup_cpu_server / r.setup_rooms if r.setup_rooms else float('nan'):.1f} | {r.failed_rooms} |\n"
        )
    return out


def sustains(r: LevelResult) -> bool:
    """A level the process sustains: every frame relayed, no socket lost, p99 under the target."""
    return r.errors == 0 and pct(r.latencies, 99) < TARGET_P99_MS


def interpretation(results: list[LevelResult], failures: dict) -> str:
    lines = []
    by_layer = {layer: [r for r in results if r.layer == layer] for layer in LAYER_NAMES}
    for layer in ("redis", "redis2"):
        redis_target = next((r for r in by_layer[layer] if r.rooms == TARGET_ROOMS and r.rate == 1.0), None)
        if redis_target:
            p99 = pct(redis_target.latencies, 99)
            met = p99 < TARGET_P99_MS and redis_target.errors == 0
            lines.append(
                f"- **Target (p99 relay < {TARGET_P99_MS:g} ms with {LAYER_NAMES[layer]} at {TARGET_ROOMS} rooms, one message per second per room):** "
                f"{'**met**' if met else '**not met**'}: p99 {_ms(p99)} ms (p50 {_ms(pct(redis_target.latencies, 50))} ms) at "
                f"{redis_target.rate_total:,.0f} relayed messages/s, server{'s' if layer == 'redis2' else ''} at {redis_target.cpu_pct('server'):.0f}% of a core"
                + (" (both processes together)" if layer == "redis2" else "")
                + ("" if redis_target.errors == 0 else f", {redis_target.errors} errors") + "."
            )
    for layer, rows in by_layer.items():
        if not rows:
            continue
        ok = [r for r in rows if sustains(r)]
        top = max(ok, key=lambda r: (r.rooms, r.rate)) if ok else None
        bad = [r for r in rows if not sustains(r)]
        text = f"- **{LAYER_NAMES[layer]}:** "
        if top:
            text += (f"sustained up to {top.rooms:,} rooms at {top.rate:g} msg/s per room ({top.rate_total:,.0f} relayed msg/s, "
                     f"p99 {_ms(pct(top.latencies, 99))} ms, server {top.cpu_pct('server'):.0f}% of a core)")
        else:
            text += "no level met p99 < 20 ms without errors"
        if bad:
            text += "; not at " + ", ".join(f"{r.label} (p99 {_ms(pct(r.latencies, 99))} ms, {r.errors} errors, server {r.cpu_pct('server'):.0f}%)" for r in bad)
        costs = [r.server_us_per_msg for r in rows if r.received]
        if costs:
            text += f". Server CPU per relayed message {min(costs):,.0f}–{max(costs):,.0f} µs (all of the process's CPU over the level, divided by the messages relayed, idle sockets included)"
        lines.append(text + ".")
    for layer, rows in by_layer.items():
        if layer == "redis2":  # two processes: "what one process can do" is the other rows' question
            continue
        busy = [r for r in rows if r.received and r.cpu.get("server")]
        flowing = [r for r in busy if pct(r.latencies, 99) < 1000]  # not yet queueing for seconds
        if busy:
            r = max(flowing or busy, key=lambda x: x.rate_total)
            ceiling = r.rate_total / (r.cpu["server"] / r.elapsed)
            lines.append(
                f"- **What bounds one process ({LAYER_NAMES[layer]}):** CPU. At {r.label} it relayed {r.rate_total:,.0f} msg/s with "
                f"{r.cpu_pct('server'):.0f}% of a core (≈ {ceiling:,.0f} msg/s for a whole core, the most one Python process can use); "
                f"the same level took {r.cpu_pct('client'):.0f}% for the load generator, {r.cpu_pct('redis'):.0f}% for Redis and "
                f"{r.cpu_pct('other'):.0f}% for other load, of the machine's {100 * (os.cpu_count() or 1)}%. Close to a full core, frames queue behind each other: "
                "p99 grows long before p50."
            )
    for layer, rows in by_layer.items():  # the same messages/s from more sockets
        for a in rows:
            for b in rows:
                if a.rooms < b.rooms and a.rooms * a.rate == b.rooms * b.rate and a.received and b.received and a.cpu.get("server"):
                    ratio = b.server_us_per_msg / a.server_us_per_msg
                    lines.append(
                        f"- **The same {b.rate_total:,.0f} msg/s from {b.rooms:,} rooms at {b.rate:g}/s vs {a.rooms:,} rooms at {a.rate:g}/s "
                        f"({LAYER_NAMES[layer]}):** server CPU per message {b.server_us_per_msg:,.0f} vs {a.server_us_per_msg:,.0f} µs "
                        f"({ratio:.1f}×; {b.cpu_pct('server'):.0f}% vs {a.cpu_pct('server'):.0f}% of a core), p99 {_ms(pct(b.latencies, 99))} vs "
                        f"{_ms(pct(a.latencies, 99))} ms: "
                        + ("what a frame costs grows with the sockets the process holds."
                           if ratio >= 1.3 else "the cost is per frame, not per socket held.")
                    )
    pairs = [(m, r) for m in by_layer["memory"] for r in by_layer["redis"] if (m.rooms, m.rate) == (r.rooms, r.rate) and m.received and r.received]
    if pairs:
        lines.append(
            "- **channels-redis vs in-memory** (same level): p50 "
            + ", ".join(f"{_ms(pct(r.latencies, 50))} vs {_ms(pct(m.latencies, 50))} ms @{m.label}" for m, r in pairs)
            + "; server CPU per message "
            + ", ".join(f"{r.server_us_per_msg:,.0f} vs {m.server_us_per_msg:,.0f} µs" for m, r in pairs)
            + "."
        )
    lag = [(r, pct(r.loop_lag_ms, 99)) for r in results if r.loop_lag_ms]
    if lag:
        worst = max(lag, key=lambda x: x[1])
        lines.append(
            f"- The latency is measured in the load generator, which shares the 2 cores: its event loop woke up to {_ms(worst[1])} ms late "
            f"(p99, {LAYER_NAMES[worst[0].layer]} {worst[0].label}, client {worst[0].cpu_pct('client'):.0f}% of a core), which the relay figures include."
        )
    if failures:
        lines.append("- Rooms that could not be opened: " + "; ".join(f"{k} ×{v}" for k, v in failures.items()) + ".")
    return "\n".join(lines) + "\n"


def render(h, results: list[LevelResult], out: dict, info, command, started, commit, args, speed) -> str:
    levels = {name: levels_for(args, SCENARIOS[name]) for name in SCENARIOS}
    level_text = ", ".join(f"{r:,} rooms @ {f:g}/s" for r, f in next(iter(levels.values())))
    servers = "; ".join(f"{name}: {cmds}" for name, cmds in out["servers"].items())
    # Another database / Redis database than the defaults (e.g. not to disturb someone else's run): part of the command.
    moved = " ".join(f"{k}={os.environ[k]}" for k in ("BENCH_DATABASE_URL", "BENCH_REDIS_URL") if os.environ.get(k))
    command = f"{moved} {command}" if moved else command
    return (
        "## Signaling: relay latency through the consultation socket, in-memory vs channels-redis\n\n"
        f"- **Date:** {started:%Y-%m-%d %H:%M} UTC\n"
        f"- **Commit:** {commit}\n"
        f"- **Machine:** {info['nproc']} cores ({info['cpu']}), load average before the run {info['loadavg']}; "
        f"Python {info['python']}, PostgreSQL {info['postgres']}, Redis {info['redis']}, Django {info['django']}, Daphne {info['daphne']}\n"
        f"- **Command:** `{command}`\n"
        f"- **Server:** one Daphne process per layer (two for channels-redis, 2 processes), {servers}; environment `{h.ENV_SUMMARY}`"
        + (" plus `" + " ".join(f"{k}={v}" for k, v in h.EXTRA_ENV.items()) + "`" if h.EXTRA_ENV else "")
        + "; the in-memory run has `REDIS_URL=` (empty: `InMemoryChannelLayer`, local-memory cache), the channels-redis run "
        f"`REDIS_URL=redis://…/{h.REDIS_URL.rsplit('/', 1)[-1]}` (`RedisPubSubChannelLayer`, pool bound `CHANNELS_REDIS_MAX_CONNECTIONS`=1000)\n"
        f"- **Load:** open loop, one asyncio process with the `websockets` client; two sockets per room (doctor and patient, "
        f"`?token=` access tokens), opened {CONNECT_PARALLEL} rooms at a time (doctor, patient, `admit`, `peer_ready`) and kept open "
        f"from level to level; each room's patient sends a ~150-byte `offer` carrying `perf_counter_ns()` at a fixed rate with its own phase, "
        f"the doctor's socket records receive − send; levels {level_text}; {args.duration:g} s per level after a {args.warmup:g} s warm-up at "
        f"the same rate; frames still in flight are waited for up to {DRAIN_SECONDS:g} s. Fresh rooms for each layer "
        f"(seeded in {', '.join(f'{s:.1f}' for s in out['seed_seconds'])} s: confirmed appointments that started a minute ago). "
        f"File descriptors: the harness raises its `RLIMIT_NOFILE` soft limit to the hard limit ({out['fd_limit'][0]:,}) before "
        "starting the server, which inherits it (each room holds two sockets in the client and two in Daphne)\n"
        + (
            f"- **Quiet machine:** before each level the harness waited up to {args.idle_wait:g} s for other load to drop below a third "
            f"of a core (waited {sum(r.waited for r in results):.0f} s in all)\n" if args.idle_wait > 0 else ""
        )
        + f"- **Machine speed check:** a fixed pure-Python loop ran at {speed['before']:.2f} M iterations/s before the run and {speed['after']:.2f} after"
        + (" — **the machine got slower or busier during the run: compare with care**" if min(speed.values()) < 0.85 * max(speed.values()) else "")
        + "\n\n"
        + table(results)
        + "\nRelay = the doctor's receive time − the patient's send time, in the load generator (one process, one clock): the "
        "frame goes client → Daphne → the patient's consumer (validation, `group_send` to `consultation.<room>`) → the layer → "
        "the doctor's consumer → client. Errors = rooms that could not be opened, sockets the server closed, frames sent but "
        f"not received within {DRAIN_SECONDS:g} s, and error frames. CPU % is of one core over the level (server = the Daphne "
        "process, both processes summed for the 2-process layer; redis = the redis-server process, which other users of this machine may share; client = the load generator; "
        "other = the rest of the machine). Server CPU µs/msg is all of the server's CPU over the level divided by the frames relayed.\n\n"
        "**Opening rooms** (new rooms of each level; the sockets of earlier levels stay open):\n\n"
        + setup_table(results)
        + "\n**Interpretation**\n\n"
        + interpretation(results, out.get("failures", {}))
    )


if __name__ == "__main__":
    _cli()
