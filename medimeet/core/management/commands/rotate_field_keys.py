"""Re-encrypt every Fernet-encrypted column (and recording chunk file) under the newest
FIELD_ENCRYPTION_KEYS key. See medimeet.core.key_rotation for the procedure and guarantees."""

from django.core.management.base import BaseCommand, CommandError

from medimeet.core.key_rotation import field_keys_rotate


class Command(BaseCommand):
    help = "Re-encrypt Fernet-encrypted fields under the newest FIELD_ENCRYPTION_KEYS key (idempotent, resumable)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="Rows read and committed per transaction (default 500).")

    def handle(self, *args, batch_size: int, verbosity: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        report = field_keys_rotate(batch_size=batch_size, progress=(lambda label: self.stdout.write(f"  {label} done")) if verbosity > 1 else None)
        for label in sorted(set(report.rotated) | set(report.current)):
            self.stdout.write(f"{label}: {report.rotated.get(label, 0)} re-encrypted, {report.current.get(label, 0)} already under the newest key")
        for label, pk in report.failures:
            self.stderr.write(f"{label} pk={pk}: no configured key decrypts it; left unchanged")
        if report.failures:
            raise CommandError(f"{len(report.failures)} value(s) could not be decrypted with the configured keys and were left as they are; do not remove an old key until they are resolved.")
        self.stdout.write(f"Re-encrypted {report.total_rotated} value(s); every encrypted value is now under the newest key.")
