"""`manage.py pdf_signing_cert`: a self-signed key and certificate for signing PDFs locally.

Writes the files PDF_SIGNING_KEY_FILE / PDF_SIGNING_CERT_FILE name (var/pdf-signing/ by
default). Development and staging only: production uses a certificate issued by a CA
(docs/deployment.md). Refuses to replace existing files without --force, since documents
signed with the old key would then no longer verify (unless its certificate is kept in
PDF_SIGNING_PREVIOUS_CERTS_FILE).
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from medimeet.core.pdf import signing_certificate_create, signing_credentials


class Command(BaseCommand):
    help = "Create a self-signed PDF signing key and certificate (development) at PDF_SIGNING_KEY_FILE / PDF_SIGNING_CERT_FILE."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="Replace existing files (documents signed with the old key stop verifying).")
        parser.add_argument("--if-missing", action="store_true", help="Do nothing when both files exist (used by `make run`).")
        parser.add_argument("--common-name", default="MediMeet document signing (development)")
        parser.add_argument("--days", type=int, default=3650, help="Validity in days (default 3650).")

    def handle(self, *args, **options) -> None:
        if settings.PDF_SIGNING_KEY or settings.PDF_SIGNING_CERT:
            raise CommandError("PDF_SIGNING_KEY / PDF_SIGNING_CERT are set in the environment: nothing to create.")
        key_path, cert_path = Path(settings.PDF_SIGNING_KEY_FILE), Path(settings.PDF_SIGNING_CERT_FILE)
        existing = [path for path in (key_path, cert_path) if path.exists()]
        if existing and options["if_missing"] and len(existing) == 2:
            return
        if existing and not options["force"]:
            raise CommandError(f"{', '.join(map(str, existing))} already exist(s); use --force to replace (documents signed with the old key will no longer verify).")
        if options["days"] < 1:
            raise CommandError("--days must be at least 1.")
        key_pem, cert_pem = signing_certificate_create(common_name=options["common_name"], days=options["days"])
        for path, content, mode in ((key_path, key_pem, 0o600), (cert_path, cert_pem, 0o644)):
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(content)
            os.chmod(path, mode)
        signing_credentials()  # loads what was written: a broken file fails here, not at the first receipt
        self.stdout.write(self.style.SUCCESS(f"PDF signing key written to {key_path}, self-signed certificate to {cert_path}."))
