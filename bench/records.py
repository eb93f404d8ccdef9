"""Medical-records benchmark (`make bench-records`, also run by `make bench`).

1. Throughput of a 20 MB document through envelope encryption (AES-256-GCM in 1 MiB chunks,
   medimeet.core.envelope) into and out of the default file storage, against the same file
   stored and read without encryption. Target: encryption costs less than 2x the plain path.
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


def throughput(size_mb: int, repeat: int) -> dict[str, float]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from django.core.files import File
    from django.core.files.storage import default_storage
    from django.http import FileResponse, StreamingHttpResponse

    from medimeet.core.envelope import CHUNK, EncryptingReader, data_key_new, data_key_unwrap, decrypt_stream

    source_path = Path(tempfile.mkstemp(prefix="mm-bench-")[1])
    source_path.write_bytes(os.urandom(size_mb * 1024 * 1024))
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

    def clean() -> None:
        for name in ("plain", "encrypted"):
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
    results = {"cipher": size_mb * 2 / timed(cipher_only, repeat), "decrypt_only": size_mb / timed(decrypt_only, repeat)}
    sealed.clear()
    for label, upload, download in (("plain", plain_upload, plain_download), ("encrypted", encrypted_upload, encrypted_download)):
        up = []
        for _ in range(repeat):
            clean()
            start = time.perf_counter()
            upload()
            up.append(time.perf_counter() - start)
        results[f"{label}_upload"] = size_mb / min(up)
        results[f"{label}_download"] = size_mb / timed(download, repeat)
    clean()
    source_path.unlink()
    return results


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

    speeds = throughput(args.size_mb, args.repeat)
    ratio_up = speeds["plain_upload"] / speeds["encrypted_upload"]
    ratio_down = speeds["plain_download"] / speeds["encrypted_download"]
    seeded = seed_documents(args.documents)
    queries = ["cholesterol", "thyroid ultrasound", "metformin diabetes", "fracture knee", "nonexistentword"]
    typical = search_latency(seeded["typical"], queries, rounds=20)
    heavy = search_latency(seeded["heavy"], queries, rounds=5)

    from django.db import connection

    from medimeet.core.envelope import CHUNK

    commit = os.popen("git -C " + str(ROOT) + " rev-parse --short HEAD").read().strip()
    text = f"""
{SECTION}

Command: `make bench-records` (`.venv/bin/python bench/records.py`), at {commit}, {time.strftime("%Y-%m-%d")}, on this 2-core
machine shared with other work (best of {args.repeat} runs per figure). PostgreSQL {connection.pg_version // 10000}, local file storage.

**Encryption throughput**, a {args.size_mb} MB document (random bytes), stored through Django's default storage.
Encrypted: a fresh data key wrapped by the master key, AES-256-GCM in {CHUNK // (1024 * 1024)} MiB chunks produced while the
storage reads the file (the upload path of `records.services.document_upload`, without its scan and inspection), and
decrypted chunk by chunk into a `StreamingHttpResponse` (the download view). Plain: the same file stored as it is, and
sent by a `FileResponse` with the same block size.

| Path | Upload (MB/s) | Download (MB/s) |
| --- | ---: | ---: |
| Plain | {speeds["plain_upload"]:,.0f} | {speeds["plain_download"]:,.0f} |
| Envelope-encrypted | {speeds["encrypted_upload"]:,.0f} | {speeds["encrypted_download"]:,.0f} |
| **Cost of encryption** | **{ratio_up:.2f}x** | **{ratio_down:.2f}x** |

Target: less than 2x the plain path — {"met" if max(ratio_up, ratio_down) < 2 else "NOT met"} (upload {ratio_up:.2f}x, download {ratio_down:.2f}x).
AES-256-GCM alone (encrypt + decrypt of the same file in memory, no I/O) runs at {speeds["cipher"]:,.0f} MB/s per direction on
this CPU; decryption alone, one call per {CHUNK // (1024 * 1024)} MiB chunk, at {speeds["decrypt_only"]:,.0f} MB/s. Per {args.size_mb} MB download that is
{1000 * args.size_mb / speeds["decrypt_only"]:.2f} ms of decryption against {1000 * args.size_mb / speeds["plain_download"]:.2f} ms for the whole plain path: decryption alone costs
{speeds["plain_download"] / speeds["decrypt_only"]:.2f}x the plain path before the ciphertext is even read ({1000 * args.size_mb / speeds["encrypted_download"]:.2f} ms in all for the
encrypted download). The plain paths are memory copies (the file sits in the page cache), so the ratio compares the
cipher with a `memcpy`: the encrypted download, bound by AES-GCM, cannot come within 2x of a plain read from cache on this machine,
while in absolute terms it is far above what a client connection carries. The encrypted path holds one chunk in memory
at a time and writes no second copy of the file. Figures move by tens of percent between runs on this shared machine.

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
