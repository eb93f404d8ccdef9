"""iCalendar (.ics) events for appointments, built with the icalendar library.

UID is stable across updates, SEQUENCE follows Appointment.sequence (bumped on reschedule and
status changes), a cancelled appointment is sent with METHOD:CANCEL and STATUS:CANCELLED, times
carry the viewer's time zone with its VTIMEZONE, and a reminder alarm fires an hour before.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.urls import reverse
from icalendar import Alarm, Calendar, Event, vCalAddress, vText

from .models import Appointment

REMINDER_BEFORE = timedelta(hours=1)


def appointment_ics(appointment: Appointment, *, viewer_timezone: str) -> bytes:
    tz = ZoneInfo(viewer_timezone)
    cancelled = appointment.status == Appointment.Status.CANCELLED
    calendar = Calendar()
    calendar.add("prodid", "-//MediMeet//Appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")

    event = Event()
    event.add("uid", f"appointment-{appointment.public_id}@medimeet")
    event.add("sequence", appointment.sequence)
    event.add("dtstamp", appointment.updated_at)
    event.add("dtstart", appointment.start.astimezone(tz))
    event.add("dtend", appointment.end.astimezone(tz))
    event.add("summary", f"{appointment.service.name} with {appointment.doctor.display_name}")
    url = settings.SITE_URL + reverse("appointments:detail", args=[appointment.public_id])
    event.add("url", url)
    mode = "Video consultation: join from MediMeet at the time of the appointment." if appointment.service.mode == "video" else (
        f"In person at {appointment.doctor.clinic_name}, {appointment.doctor.clinic_address}".strip(", ")
    )
    event.add("description", f"{mode}\n{url}")
    event.add("location", vText("MediMeet video" if appointment.service.mode == "video" else appointment.doctor.clinic_address or appointment.doctor.city))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    organizer = vCalAddress("mailto:appointments@medimeet.local")
    organizer.params["cn"] = vText("MediMeet")
    event.add("organizer", organizer)
    if not cancelled:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"In one hour: {appointment.service.name} with {appointment.doctor.display_name}")
        alarm.add("trigger", -REMINDER_BEFORE)
        event.add_component(alarm)
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()
