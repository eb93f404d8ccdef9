"""Steps people take through the pages, shared by the end-to-end tests (the whole journey in
test_e2e_journey.py and the tests of each part), and the local mail outbox a live server in
another process writes to.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

# --- Mail ---------------------------------------------------------------------------------------


@dataclass
class LocalOutbox:
    """The embedded default's outbox (``medimeet.core.mail.OutboxEmailBackend``: one ``.eml``
    file per message), read back. A server in another process (``asgi_live_server``) cannot
    fill this process's ``mail.outbox``; it can write files."""

    directory: Path

    def messages(self, *, to: str | None = None) -> list[EmailMessage]:
        """Every message sent so far, oldest first (the file names start with the time)."""
        paths = sorted(self.directory.glob("*.eml")) if self.directory.exists() else []
        messages = [email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in paths]
        return [m for m in messages if to is None or to in m["To"]]

    def last(self, *, to: str, subject: str) -> EmailMessage:
        """The newest message to ``to`` whose subject contains ``subject``."""
        found = [m for m in self.messages(to=to) if subject in m["Subject"]]
        assert found, f"No email to {to} about {subject!r}: {[m['Subject'] for m in self.messages(to=to)]}"
        return found[-1]

    def link(self, pattern: str, *, to: str) -> str:
        """The first link matching ``pattern`` in the newest message to ``to`` that has one."""
        for message in reversed(self.messages(to=to)):
            match = re.search(pattern, text_of(message))
            if match:
                return match.group(0)
        raise AssertionError(f"No email to {to} contains {pattern!r}")


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def attachments_of(message: EmailMessage, content_type: str) -> list[bytes]:
    """The attachments of ``message`` of one type, as bytes."""
    found = []
    for part in message.iter_attachments():
        if part.get_content_type() == content_type:
            content = part.get_content()
            found.append(content.encode() if isinstance(content, str) else content)
    return found


@pytest.fixture
def local_outbox(settings, tmp_path) -> Iterator[LocalOutbox]:
    """Mail goes to the local outbox in ``tmp_path`` (request it before ``asgi_live_server``:
    the server process is forked with the settings of the moment)."""
    settings.EMAIL_BACKEND = "medimeet.core.mail.OutboxEmailBackend"
    settings.EMAIL_OUTBOX_DIR = tmp_path / "outbox"
    yield LocalOutbox(tmp_path / "outbox")


# --- Time ---------------------------------------------------------------------------------------


def a_zone_in_working_hours(now: datetime, zones: tuple[str, ...] = ("Asia/Kolkata", "Europe/London")) -> ZoneInfo:
    """The first of ``zones`` where it is now between 01:00 and 21:00, so that a doctor there can
    open a session starting in a few minutes and ending the same day (a working range never
    crosses midnight). Kolkata is 5½ hours ahead of London: one of the two always fits."""
    for name in zones:
        zone = ZoneInfo(name)
        if 1 <= now.astimezone(zone).hour < 21:
            return zone
    raise AssertionError(f"No zone in working hours at {now}")


# --- Doctors --------------------------------------------------------------------------------------


@dataclass
class Application:
    """What a doctor enters on the application page."""

    first_name: str
    last_name: str
    email: str
    password: str
    timezone: str
    years: int
    specialization: str
    licence_number: str
    licence_authority: str
    licence_country: str
    licence_expiry: date
    licence_pdf: Path


def doctor_application_fill(page: Page, application: Application) -> None:
    """Fill the application form at /doctors/apply/ (not sent)."""
    expect(page.get_by_role("heading", level=1)).to_have_text("Apply to consult on MediMeet")
    page.get_by_label("First name").fill(application.first_name)
    page.get_by_label("Last name").fill(application.last_name)
    page.get_by_label("Professional email").fill(application.email)
    page.get_by_label("Password", exact=True).fill(application.password)
    page.get_by_label("Time zone").select_option(application.timezone)
    page.get_by_label("Years of experience").fill(str(application.years))
    page.get_by_label("Primary specialization").select_option(label=f"— {application.specialization}")
    page.get_by_label("Licence / registration number").fill(application.licence_number)
    page.get_by_label("Issuing authority").fill(application.licence_authority)
    page.get_by_label("Country of licence").fill(application.licence_country)
    page.get_by_label("Licence valid until").fill(application.licence_expiry.isoformat())
    page.locator("input[type=file][name=licence_document]").set_input_files(application.licence_pdf)


def admin_action(page: Page, base_url: str, changelist: str, pk: int, action: str) -> None:
    """Run the admin action ``action`` (its value) on the row ``pk`` of the changelist at
    ``changelist`` (a path with its filters)."""
    page.goto(f"{base_url}{changelist}")
    page.locator(f"input[name='_selected_action'][value='{pk}']").check()
    page.locator("select[name='action']").select_option(action)
    page.get_by_role("button", name="Go").click()


# --- Records --------------------------------------------------------------------------------------


def prescription_issue(page: Page, *, medicine: dict[str, str], advice: str, follow_up: str) -> None:
    """On the prescription page of an appointment (doctor), issue one medicine (its fields by
    label: Name, Dose, Frequency, Duration, Instructions) with advice and a follow-up."""
    first = page.locator("fieldset", has_text="Medicine 1")
    for label, value in medicine.items():
        first.get_by_label(label).fill(value)
    page.get_by_label("Advice").fill(advice)
    page.get_by_label("Follow-up").fill(follow_up)
    page.get_by_role("button", name="Issue prescription").click()
    expect(page.get_by_text("Prescription issued.")).to_be_visible()
