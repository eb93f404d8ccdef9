"""Medical-records benchmark (`make bench-records`, also run by `make bench`).

1. Throughput of a 20 MB document through envelope encryption (AES-256-GCM in 1 MiB chunks,
   medimeet.core.envelope) against the same file without encryption, at two levels:
   a. storage: into and out of the default file storage (encrypting reader / decrypting
      generator against a plain save / `FileResponse`);
   b. view: the whole request through the real upload and download endpoints with Django's test
      `Client` (a signed-in patient, in-process, no socket: session, access decision, inspection
      and scan, audit row, streamed body), against the same requests with only the encryption
      taken out (bench-only replacements of `records.services.document_content` and of the
      encrypting reader and data key in `document_upload`).
   The file is a 20 MB multi-frame DICOM image (random pixels) so that it passes the upload's
   inspection. Runs are interleaved (A B A B ...) after a warm-up round. Target: encryption costs
   less than 2x the plain path.
2. Search latency over 100,000 documents' extracted text on PostgreSQL (records.selectors.
   documents_search: full text over a GIN-indexed tsvector, filtered to one patient's record as
   every search is), for a typical patient (100 documents) and a heavy one (10,000).

Uses its own PostgreSQL database (BENCH_RECORDS_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/medimeet_bench_records), created and migrated if missing, and
a temporary MEDIA_ROOT. Writes the "Records" section of docs/performance.md unless --no-write.

    .venv/bin/python bench/records.py [--size-mb 20] [--documents 100000] [--repeat 5] [--no-write]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/medimeet_bench_records"
SECTION = "## Records: document encryption throughput and search latency (Step 7)"
WORDS = (
    "haemoglobin cholesterol triglycerides glucose creatinine thyroid ultrasound chest abdomen radiograph fracture "
    "lipid panel hba1c ferritin vitamin deficiency normal range elevated reduced biopsy benign follow review "
    "report discharge summary prescription amoxicillin metformin amlodipine atorvastatin insulin asthma hypertension "
    "diabetes migraine allergy penicillin sinus rhythm echocardiogram mri spine knee shoulder pelvis renal hepatic"
).split()


def setup_django(database_url: str, media_root: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "medimeet.settings.test"
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("REDIS_URL", None)
    import django
    from django.conf import settings

    django.setup()
    settings.MEDIA_ROOT = Path(media_root)  # before the storage is first used


def ensure_database(database_url: str) -> None:
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def timed(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` runs (the machine is shared: the best run is the least disturbed)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved(runs: dict[str, Callable[[], None]], repeat: int, before: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Wall times of each of ``runs``, taken in turn (A B A B ...) for ``repeat`` rounds after one
    untimed warm-up round, so the load of this shared machine falls on every path alike.
    ``before(label)`` runs untimed before each run."""
    times: dict[str, list[float]] = {label: [] for label in runs}
    for round_ in range(repeat + 1):
        for label, fn in runs.items():
            if before is not None:
                before(label)
            start = time.perf_counter()
            fn()
            if round_:
                times[label].append(time.perf_counter() - start)
    return times


def speeds(megabytes: float, times: list[float]) -> dict[str, float]:
    """MB/s of the best and of the median run."""
    return {"best": megabytes / min(times), "median": megabytes / statistics.median(times)}


def dicom_document(size: int) -> bytes:
    """A multi-frame CT image (16-bit 512 x 512 frames of random pixels) of about ``size`` bytes: a
    real imaging upload of that size, which passes the upload's type check, scan and inspection."""
    from records.tests import samples

    frames = max(1, size // (512 * 512 * 2))
    return samples.dicom(frames=frames, rows=512, columns=512, bits=16, pixels=os.urandom(512 * 512 * 2 * frames))


def throughput(data: bytes, repeat: int) -> dict[str, dict[str, float] | float]:
    """Storage level: the file into and out of the default storage, encrypted and plain."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from django.core.files import File
    from django.core.files.storage import default_storage
    from django.http import FileResponse, StreamingHttpResponse

    from medimeet.core.envelope import CHUNK, EncryptingReader, data_key_new, data_key_unwrap, decrypt_stream

    megabytes = len(data) / (1024 * 1024)
    source_path = Path(tempfile.mkstemp(prefix="mm-bench-")[1])
    source_path.write_bytes(data)
    names: dict[str, str] = {}

    def plain_upload() -> None:
        with source_path.open("rb") as source:
            names["plain"] = default_storage.save("bench/plain.bin", File(source))

    def encrypted_upload() -> None:
        # As records.services.document_upload stores a document (without its scan and inspection).
        key, wrapped = data_key_new()
        names["wrapped"] = wrapped
        with source_path.open("rb") as source:
            encrypted = io.BufferedReader(EncryptingReader(key, source), buffer_size=CHUNK)
            names["encrypted"] = default_storage.save("bench/encrypted.bin", File(encrypted))

    def plain_download() -> None:
        # What a view serving the stored file as it is would send.
        response = FileResponse(default_storage.open(names["plain"], "rb"))
        response.block_size = CHUNK
        for _block in response:
            pass

    def encrypted_download() -> None:
        # records.api.document_file_response: decrypted chunk by chunk into a streaming response.
        key = data_key_unwrap(names["wrapped"])

        def content():
            with default_storage.open(names["encrypted"], "rb") as stored:
                yield from decrypt_stream(key, stored)

        for _block in StreamingHttpResponse(content()):
            pass

    def clean(name: str) -> None:
        if name in names:
            default_storage.delete(names.pop(name))

    def cipher_only() -> None:
        key, _wrapped = data_key_new()
        aead = AESGCM(key)
        with source_path.open("rb") as source:
            while block := source.read(CHUNK):
                aead.decrypt(b"n" * 12, aead.encrypt(b"n" * 12, block, None), None)

    def decrypt_only() -> None:
        # The floor of the encrypted download: AES-256-GCM decryption of the file's chunks,
        # already in memory (no read, no response), one call per chunk as the view makes.
        for block in sealed:
            aead.decrypt(b"n" * 12, block, None)

    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    with source_path.open("rb") as source:
        sealed = [aead.encrypt(b"n" * 12, block, None) for block in iter(lambda: source.read(CHUNK), b"")]
    results: dict = {"cipher": megabytes * 2 / timed(cipher_only, repeat), "decrypt_only": megabytes / timed(decrypt_only, repeat)}
    sealed.clear()
    up = interleaved({"plain": plain_upload, "encrypted": encrypted_upload}, repeat, before=clean)
    down = interleaved({"plain": plain_download, "encrypted": encrypted_download}, repeat)
    for label in ("plain", "encrypted"):
        results[f"{label}_upload"] = speeds(megabytes, up[label])
        results[f"{label}_download"] = speeds(megabytes, down[label])
        clean(label)
    source_path.unlink()
    return results


class PlainReader(io.RawIOBase):
    """``EncryptingReader``'s place in ``document_upload`` with the encryption taken out: the
    source's bytes as they are, read from it in the same chunks."""

    def __init__(self, _key: bytes, source) -> None:
        super().__init__()
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        data = self._source.read(len(target))
        target[: len(data)] = data
        return len(data)


def through_views(data: bytes, repeat: int) -> dict[str, object]:
    """View level: the same file uploaded and downloaded through the API endpoints by a signed-in
    patient with Django's test client, encrypted as in production and with only the encryption
    replaced (bench-only patches), interleaved."""
    import hashlib
    from unittest import mock

    from django.core.files import File
    from django.core.files.storage import default_storage
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import connection
    from django.test import Client
    from django.test.client import encode_multipart

    from accounts.models import User
    from medimeet.core.envelope import CHUNK, data_key_new
    from records import services, tasks
    from records.models import Document

    megabytes = len(data) / (1024 * 1024)
    digest = hashlib.sha256(data).hexdigest()
    patient, _ = User.objects.get_or_create(email="bench-recview-patient@example.com", defaults={"role": "patient", "first_name": "Bench"})
    client = Client()
    client.force_login(patient)
    boundary = "MediMeetBenchBoundary7f3a"
    body = encode_multipart(boundary, {"file": SimpleUploadedFile("ct-chest.dcm", data, "application/dicom"), "title": "CT chest"})
    upload_url = f"/api/v1/records/patients/{patient.public_id}/documents/"
    queued: list[dict] = []  # the indexing task is queued on commit, as in production (a worker runs it)
    fixed_key = data_key_new()
    plain_upload_patches = (mock.patch.object(services, "EncryptingReader", PlainReader), mock.patch.object(services, "data_key_new", lambda: fixed_key))

    def upload() -> str:
        response = client.post(upload_url, data=body, content_type=f"multipart/form-data; boundary={boundary}")
        assert response.status_code == 201, response.content[:500]
        return response.json()["id"]

    uploaded: list[str] = []

    def encrypted_upload() -> None:
        uploaded.append(upload())

    def plain_upload() -> None:
        with plain_upload_patches[0], plain_upload_patches[1]:
            uploaded.append(upload())

    def forget(_label: str) -> None:
        for document in Document.objects.filter(public_id__in=uploaded):
            default_storage.delete(document.file_name)
            document.delete()
        uploaded.clear()

    with mock.patch.object(tasks.index_document, "delay", lambda **kwargs: queued.append(kwargs)):
        upload_times = interleaved({"plain": plain_upload, "encrypted": encrypted_upload}, repeat, before=forget)
        forget("")
        document = Document.objects.get(public_id=upload())  # what every download reads, encrypted as stored today
    plain_name = default_storage.save(f"bench/plain-{document.public_id.hex}.bin", File(io.BytesIO(data)))
    download_url = f"/api/v1/records/documents/{document.public_id}/download/"

    def plain_content(_document):
        # document_content without the decryption: the plain file, in chunks of the same size.
        with default_storage.open(plain_name, "rb") as stored:
            while block := stored.read(CHUNK):
                yield block

    def download(check: bool = False) -> str:
        response = client.get(download_url)
        assert response.status_code == 200, response.status_code
        received, size = hashlib.sha256(), 0
        for block in response.streaming_content:
            size += len(block)
            if check:  # hashing 20 MB costs more than decrypting it: only in the untimed checks
                received.update(block)
        # The client closes the response when the body is exhausted, with the database connection
        # kept open as production's pool keeps it warm (closing it again here would reconnect).
        assert size == len(data), size
        return received.hexdigest()

    def encrypted_download() -> None:
        download()

    def plain_download() -> None:
        with mock.patch.object(services, "document_content", plain_content):
            download()

    # Untimed checks: both paths send the file itself; how many queries a download makes.
    executed: list[str] = []
    with connection.execute_wrapper(lambda execute, sql, params, many, context: executed.append(sql) or execute(sql, params, many, context)):
        assert download(check=True) == digest
    with mock.patch.object(services, "document_content", plain_content):
        assert download(check=True) == digest
    down_times = interleaved({"plain": plain_download, "encrypted": encrypted_download}, repeat)
    default_storage.delete(plain_name)
    uploaded.append(document.public_id)
    forget("")
    return {
        "plain_upload": speeds(megabytes, upload_times["plain"]),
        "encrypted_upload": speeds(megabytes, upload_times["encrypted"]),
        "plain_download": speeds(megabytes, down_times["plain"]),
        "encrypted_download": speeds(megabytes, down_times["encrypted"]),
        "download_queries": len(executed),
        "upload_ms": {label: 1000 * statistics.median(t) for label, t in upload_times.items()},
        "download_ms": {label: 1000 * statistics.median(t) for label, t in down_times.items()},
    }


def seed_documents(total: int) -> dict[str, object]:
    """``total`` documents: one heavy patient with 10% of them, the rest 100 per patient."""
    from django.db import connection

    from accounts.models import User
    from records.models import Document

    existing = Document.objects.count()
    heavy_count = total // 10
    if existing >= total:
        patients = list(User.objects.filter(email__startswith="bench-records-").order_by("pk"))
        return {"heavy": patients[0], "typical": patients[1], "seconds": 0.0, "reused": True}
    start = time.perf_counter()
    rng = random.Random(7)
    Document.objects.filter(patient__email__startswith="bench-records-").delete()  # a smaller earlier run
    User.objects.filter(email__startswith="bench-records-").delete()
    counts = [heavy_count] + [100] * ((total - heavy_count) // 100)
    patients = User.objects.bulk_create([User(email=f"bench-records-{i}@example.com", role="patient", password="!") for i in range(len(counts))])
    plaintexts: list[str] = []
    rows = []
    for patient, count in zip(patients, counts, strict=True):
        for _ in range(count):
            text = " ".join(rng.choices(WORDS, k=120))
            plaintexts.append(text)
            rows.append(Document(patient=patient, uploaded_by=patient, kind="pdf", content_type="application/pdf", title="Report", size=1, sha256="0" * 64, file_name=f"bench/{len(rows)}.bin", key_id="bench", wrapped_key=b"x", text=text))
    Document.objects.bulk_create(rows, batch_size=2000)
    ids = list(Document.objects.order_by("pk").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_text (id bigint, body text)")
        with cursor.copy("COPY bench_text (id, body) FROM STDIN") as copy:
            for pk, text in zip(ids, plaintexts, strict=True):
                copy.write_row((pk, text))
        cursor.execute("UPDATE records_document d SET search_vector = to_tsvector('english', t.body) FROM bench_text t WHERE d.id = t.id")
        cursor.execute("DROP TABLE bench_text")
        cursor.execute("VACUUM ANALYZE records_document")
    return {"heavy": patients[0], "typical": patients[1], "seconds": time.perf_counter() - start, "reused": False}


def search_latency(patient, queries: list[str], rounds: int) -> dict[str, float]:
    from records import selectors

    access = selectors.record_access(user=patient, patient=patient)
    samples, found = [], 0
    for _ in range(rounds):
        for q in queries:
            start = time.perf_counter()
            found += len(selectors.documents_search(access=access, q=q))
            samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"p50": statistics.median(samples), "p95": samples[int(len(samples) * 0.95) - 1], "max": samples[-1], "n": len(samples), "hits": found / len(samples)}


def write_section(text: str) -> None:
    path = ROOT / "docs" / "performance.md"
    doc = path.read_text()
    start = doc.find(SECTION)
    if start == -1:
        anchor = doc.find("\n## History")
        doc = doc[:anchor] + "\n" + text + doc[anchor:] if anchor != -1 else doc + "\n" + text
    else:
        end = doc.find("\n## ", start + len(SECTION))
        doc = doc[:start] + text.lstrip("\n") + (doc[end:] if end != -1 else "")
    path.write_text(doc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=20)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_RECORDS_DATABASE_URL", DEFAULT_DB)
    ensure_database(database_url)
    media = tempfile.mkdtemp(prefix="mm-bench-media-")
    setup_django(database_url, media)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    data = dicom_document(args.size_mb * 1024 * 1024)
    megabytes = len(data) / (1024 * 1024)
    storage = throughput(data, args.repeat)
    views = through_views(data, args.repeat)
    del data
    seeded = seed_documents(args.documents)
    queries = ["cholesterol", "thyroid ultrasound", "metformin diabetes", "fracture knee", "nonexistentword"]
    typical = search_latency(seeded["typical"], queries, rounds=20)
    heavy = search_latency(seeded["heavy"], queries, rounds=5)

    from django.db import connection

    from medimeet.core.envelope import CHUNK

    def cost(level: dict, direction: str, stat: str) -> float:
        return level[f"plain_{direction}"][stat] / level[f"encrypted_{direction}"][stat]

    rows, verdicts = [], {}
    for level_name, level in (("Storage", storage), ("View (end to end)", views)):
        for direction in ("upload", "download"):
            plain, encrypted = level[f"plain_{direction}"], level[f"encrypted_{direction}"]
            best, median = cost(level, direction, "best"), cost(level, direction, "median")
            verdicts[level_name, direction] = met = max(best, median) < 2
            rows.append(
                f"| {level_name} | {direction.capitalize()} | {plain['best']:,.0f} ({plain['median']:,.0f}) | {encrypted['best']:,.0f} ({encrypted['median']:,.0f}) "
                f"| **{best:.2f}x** ({median:.2f}x) | {'met' if met else '**not met**'} |"
            )
    table = "\n".join(rows)
    view_met = verdicts["View (end to end)", "upload"] and verdicts["View (end to end)", "download"]
    def added_ms(level: dict, direction: str) -> float:
        """What encryption adds to one transfer, in milliseconds (medians)."""
        return 1000 * megabytes * (1 / level[f"encrypted_{direction}"]["median"] - 1 / level[f"plain_{direction}"]["median"])

    plain_down_ms = 1000 * megabytes / storage["plain_download"]["best"]
    decrypt_ms = 1000 * megabytes / storage["decrypt_only"]
    commit = os.popen("git -C " + str(ROOT) + " rev-parse --short HEAD").read().strip()
    command = " ".join(["BENCH_RECORDS_DATABASE_URL=" + database_url] * ("BENCH_RECORDS_DATABASE_URL" in os.environ) + [".venv/bin/python bench/records.py", *sys.argv[1:]])
    text = f"""
{SECTION}

Command: `{command}` (`make bench-records` runs it with the defaults), at {commit}, {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, on this 2-core
machine shared with other work. PostgreSQL {connection.pg_version // 10000}, local file storage.

**Encryption throughput**, one {megabytes:.1f} MB document (a multi-frame DICOM CT image with random pixels, so that
it passes the upload's inspection), the same file for every path. Each figure is the best (median) of {args.repeat} runs;
plain and encrypted runs alternate (A B A B ..., after an untimed warm-up round of each) so the load of the shared machine
falls on both alike; the file is in the page cache for both; both move it in {CHUNK // (1024 * 1024)} MiB chunks.

- **Storage level**: the file into and out of Django's default storage. Encrypted: a fresh data key wrapped by the
  master key, AES-256-GCM chunks produced while the storage reads the file (the store step of
  `records.services.document_upload`, without its scan and inspection), and decrypted chunk by chunk into a
  `StreamingHttpResponse`. Plain: the same file saved as it is, and sent by a `FileResponse` with the same block size.
- **View level**: the requests a user makes, through the real endpoints with Django's test `Client` signed in as
  the patient (in-process, no socket): `POST /api/v1/records/patients/<id>/documents/` (multipart, the body encoded
  once outside the timing) and `GET /api/v1/records/documents/<id>/download/` with the streamed body consumed (its
  SHA-256 checked against the file's, untimed, for both paths). Encrypted: the code as it is. Plain: the same requests
  with only the encryption taken out, in the benchmark only: the download's `records.services.document_content`
  replaced by a generator of a plain copy of the same file from the same storage, in chunks of the same size; the
  upload's `EncryptingReader` replaced by a reader passing the bytes through (same chunks, still hashed) and
  `data_key_new` by a key made beforehand. Everything else is the same code in both: session and session policy,
  the access decision, the upload's multipart parsing to a temporary file, built-in scan (no clamd on this machine),
  type sniffing and DICOM inspection, the document and audit rows, the download's audit row ({views["download_queries"]} queries per
  download) and `StreamingHttpResponse`. The indexing task is queued on commit, not run (a worker runs it).

| Level | Direction | Plain MB/s | Encrypted MB/s | Cost of encryption | Target < 2x |
| --- | --- | ---: | ---: | ---: | --- |
{table}

**Where the target is met.** {"On the path users take (view level) encryption costs less than 2x, upload and download" if view_met else "At the view level the target is NOT met"}:
the median encrypted download takes {views["download_ms"]["encrypted"]:.1f} ms against {views["download_ms"]["plain"]:.1f} ms plain, the median upload
{views["upload_ms"]["encrypted"]:.0f} ms against {views["upload_ms"]["plain"]:.0f} ms. What encryption adds to one transfer (difference of the medians):
download {added_ms(storage, "download"):.1f} ms at the storage level and {added_ms(views, "download"):.1f} ms through the view, upload {added_ms(storage, "upload"):.1f} and
{added_ms(views, "upload"):.1f} ms (the view-level upload difference is within the run-to-run noise of a request that long). The cipher's
cost is the same milliseconds at both levels; the ratio differs because the plain path it is divided by does. The storage-level download {"does NOT meet it" if not verdicts["Storage", "download"] else "meets it in this run"} (best {cost(storage, "download", "best"):.2f}x, median {cost(storage, "download", "median"):.2f}x; a row counts as met
when both are below 2x) and cannot meet it with any margin: there the plain path is a
read from the page cache (a `memcpy`, {plain_down_ms:.2f} ms per {megabytes:.0f} MB), while AES-256-GCM decryption alone, one call per
{CHUNK // (1024 * 1024)} MiB chunk of data already in memory, runs at {storage["decrypt_only"]:,.0f} MB/s ({decrypt_ms:.2f} ms): the cipher by itself costs
{decrypt_ms / plain_down_ms:.2f}x the whole plain path before the ciphertext is even read, so read + decrypt lands near 1 + {decrypt_ms / plain_down_ms:.1f} = {1 + decrypt_ms / plain_down_ms:.1f}x
(profile and the changes tried in History). AES-256-GCM encrypt + decrypt in memory runs at {storage["cipher"]:,.0f} MB/s per direction on this CPU.
At the view level the same decryption is added to a request that also authenticates, decides access, writes the audit
row and streams the response, so its share is what it costs a user. Upload is cheap either way: encryption is a
small part next to receiving, scanning and hashing the file. The encrypted path holds one chunk in memory at a
time and writes no second copy of the file. Figures move by tens of percent between runs on this shared machine.

**Search latency** over {args.documents:,} documents' extracted text on PostgreSQL (GIN index on a `tsvector`,
`websearch_to_tsquery('english', q)` ranked with `ts_rank`, limited to one patient's record as every search is;
{"data reused" if seeded["reused"] else f"seeded in {seeded['seconds']:.0f} s"}). Queries: {", ".join(f"`{q}`" for q in queries)}.

| Record searched | Documents | p50 (ms) | p95 (ms) | max (ms) | searches |
| --- | ---: | ---: | ---: | ---: | ---: |
| Typical patient | 100 | {typical["p50"]:.1f} | {typical["p95"]:.1f} | {typical["max"]:.1f} | {typical["n"]} |
| Heavy patient | {args.documents // 10:,} | {heavy["p50"]:.1f} | {heavy["p95"]:.1f} | {heavy["max"]:.1f} | {heavy["n"]} |

The timing includes the ORM and building the result objects (up to 50 per search). SQLite has no full-text index:
there the patient's permitted documents are decrypted and matched in Python (fine for one record, not benchmarked).
"""
    print(text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
