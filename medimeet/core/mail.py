"""Email backend of the embedded default: the local outbox.

Every message is written as its own ``.eml`` file to ``EMAIL_OUTBOX_DIR`` (var/outbox/) and a
one-line summary with the first link goes to the console, so a newcomer can open the
verification link without an SMTP server.
"""

from __future__ import annotations

import re
import secrets
import sys
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend

LINK = re.compile(r"https?://\S+")


class OutboxEmailBackend(BaseEmailBackend):
    def __init__(self, *args, file_path: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.directory = Path(file_path or settings.EMAIL_OUTBOX_DIR)

    def send_messages(self, email_messages) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            path = self.directory / f"{datetime.now():%Y%m%d-%H%M%S-%f}-{secrets.token_hex(3)}.eml"
            path.write_bytes(message.message().as_bytes(linesep="\n"))
            link = LINK.search(message.body)
            sys.stdout.write(
                f"[outbox] to={','.join(message.to)} subject={message.subject!r} file={path}"
                + (f" link={link.group(0)}" if link else "")
                + "\n"
            )
            sent += 1
        sys.stdout.flush()
        return sent
