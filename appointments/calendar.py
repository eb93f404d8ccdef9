"""iCalendar (.ics) events and feeds for appointments, built with the icalendar library, and
"add to Google Calendar / Outlook" links.

UID is stable across updates, SEQUENCE follows Appointment.sequence (bumped on reschedule and
status changes), a cancelled appointment is sent with METHOD:CANCEL (single event) and
STATUS:CANCELLED, times carry the viewer's time zone with its VTIMEZONE, and a reminder alarm
fires an hour before.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.urls import reverse
from icalendar import Alarm, Calendar, Event, vCalAddress, vText

from .models import Appointment

REMINDER_BEFORE = timedelta(hours=1)


def _url(appointment: Appointment) -> str:
    return settings.SITE_URL + reverse("appointments:detail", args=[appointment.public_id])


def _title(appointment: Appointment, *, for_doctor: bool = False) -> str:
    other = appointment.patient.display_name if for_doctor else appointment.doctor.display_name
    return f"{appointment.service.name} with {other}"


def _description(appointment: Appointment) -> str:
    if appointment.service.mode == "video":
        where = "Video consultation: join from MediMeet at the time of the appointment."
    else:
        where = f"In person at {appointment.doctor.clinic_name}, {appointment.doctor.clinic_address}".strip(", ")
    return f"{where}\n{_url(appointment)}"


def _event(appointment: Appointment, tz: ZoneInfo, *, for_doctor: bool) -> Event:
    cancelled = appointment.status == Appointment.Status.CANCELLED
    event = Event()
    event.add("uid", f"appointment-{appointment.public_id}@medimeet")
    event.add("sequence", appointment.sequence)
    event.add("dtstamp", appointment.updated_at)
    event.add("dtstart", appointment.start.astimezone(tz))
    event.add("dtend", appointment.end.astimezone(tz))
    event.add("summary", _title(appointment, for_doctor=for_doctor))
    event.add("url", _url(appointment))
    event.add("description", _description(appointment))
    event.add("location", vText("MediMeet video" if appointment.service.mode == "video" else appointment.doctor.clinic_address or appointment.doctor.city))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    organizer = vCalAddress("mailto:appointments@medimeet.local")
    organizer.params["cn"] = vText("MediMeet")
    event.add("organizer", organizer)
    if not cancelled:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"In one hour: {_title(appointment, for_doctor=for_doctor)}")
        alarm.add("trigger", -REMINDER_BEFORE)
        event.add_component(alarm)
    return event


def _calendar(method: str, name: str = "") -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", "-//MediMeet//Appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    if name:
        calendar.add("x-wr-calname", name)
    return calendar


def appointment_ics(appointment: Appointment, *, viewer_timezone: str, for_doctor: bool = False) -> bytes:
    """One appointment as a downloadable event (METHOD:CANCEL once it is cancelled)."""
    cancelled = appointment.status == Appointment.Status.CANCELLED
    calendar = _calendar("CANCEL" if cancelled else "PUBLISH")
    calendar.add_component(_event(appointment, ZoneInfo(viewer_timezone), for_doctor=for_doctor))
    calendar.add_missing_timezones()
    return calendar.to_ical()


def appointments_feed(appointments, *, viewer_timezone: str, for_doctor: bool) -> bytes:
    """A subscribable feed: every appointment as an event, cancelled ones marked CANCELLED so
    subscribed calendars remove them."""
    calendar = _calendar("PUBLISH", name="MediMeet appointments")
    tz = ZoneInfo(viewer_timezone)
    for appointment in appointments:
        calendar.add_component(_event(appointment, tz, for_doctor=for_doctor))
    calendar.add_missing_timezones()
    return calendar.to_ical()


def google_calendar_link(appointment: Appointment) -> str:
    dates = f"{appointment.start.astimezone(UTC):%Y%m%dT%H%M%SZ}/{appointment.end.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    query = urlencode({"action": "TEMPLATE", "text": _title(appointment), "dates": dates, "details": _description(appointment)})
    return f"https://calendar.google.com/calendar/render?{query}"


def outlook_calendar_link(appointment: Appointment) -> str:
    query = urlencode(
        {
            "path": "/calendar/action/compose",
            "rru": "addevent",
            "subject": _title(appointment),
            "startdt": appointment.start.isoformat(),
            "enddt": appointment.end.isoformat(),
            "body": _description(appointment),
        }
    )
    return f"https://outlook.live.com/calendar/0/deeplink/compose?{query}"
