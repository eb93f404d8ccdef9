"""Email backend of the embedded default: the local outbox.

Every message is written as an ``.eml`` file to ``EMAIL_OUTBOX_DIR`` (var/outbox/) and a
one-line summary goes to the console, so a newcomer can open the verification link without
an SMTP server.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.filebased import EmailBackend as FileBackend


class OutboxEmailBackend(FileBackend):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("file_path", str(settings.EMAIL_OUTBOX_DIR))
        Path(kwargs["file_path"]).mkdir(parents=True, exist_ok=True)
        super().__init__(*args, **kwargs)

    def _get_filename(self) -> str:
        # One .eml file per message (the base class appends a whole connection to one .log file).
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        self._fname = os.path.join(self.file_path, f"{stamp}-{secrets.token_hex(3)}.eml")
        return self._fname

    def write_message(self, message) -> None:
        self.stream.close()
        self.stream = open(self._get_filename(), "ab")
        self.stream.write(message.message().as_bytes() + b"\n")
        links = re.findall(r"https?://\S+", message.body)
        sys.stdout.write(
            f"[outbox] to={','.join(message.to)} subject={message.subject!r} file={self._fname}"
            + (f" link={links[0]}" if links else "")
            + "\n"
        )
        sys.stdout.flush()
