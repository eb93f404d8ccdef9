from django.urls import path

from . import api, views

page_patterns = [
    path("calendar/<str:token>.ics", views.calendar_feed, name="calendar-feed"),
    path("doctors/<slug:slug>/waitlist/", views.waitlist_join, name="waitlist-join"),
    path("appointments/calendar/rotate/", views.calendar_feed_rotate, name="calendar-feed-rotate"),
    path("appointments/", views.my_appointments, name="list"),
    path("appointments/<uuid:appointment_id>/", views.detail, name="detail"),
    path("appointments/<uuid:appointment_id>/cancel/", views.cancel, name="cancel"),
    path("appointments/<uuid:appointment_id>/reschedule/", views.reschedule, name="reschedule"),
    path("appointments/<uuid:appointment_id>/status/", views.set_status, name="status"),
    path("appointments/<uuid:appointment_id>/rebooking/", views.rebooking_accept, name="rebooking"),
    path("appointments/<uuid:appointment_id>/notes/", views.clinical_note, name="notes"),
    path("appointments/<uuid:appointment_id>/follow-up/", views.follow_up, name="follow-up"),
    path("appointments/<uuid:appointment_id>/follow-up/book/", views.follow_up_book, name="follow-up-book"),
    path("portal/book-patient/", views.book_patient, name="book-patient"),
    path("doctors/<slug:slug>/book/", views.book, name="book"),
    path("portal/schedule/", views.schedule, name="schedule"),
    path("portal/availability/", views.availability, name="availability"),
    path("portal/availability/overrides/<str:day>/remove/", views.override_remove, name="override-remove"),
]

api_patterns = [
    path("doctors/<slug:slug>/slots/", api.SlotsView.as_view(), name="doctor-slots"),
    path("doctors/me/schedule/", api.OwnScheduleView.as_view(), name="doctor-me-schedule"),
    path("doctors/me/schedule/overrides/", api.OwnOverridesView.as_view(), name="doctor-me-overrides"),
    path("doctors/me/schedule/emergency/", api.OwnEmergencyView.as_view(), name="doctor-me-emergency"),
    path("doctors/me/schedule/vacation/", api.OwnVacationView.as_view(), name="doctor-me-vacation"),
    path("appointments/", api.AppointmentListView.as_view(), name="appointments"),
    path("appointments/calendar-feed/", api.CalendarFeedView.as_view(), name="calendar-feed"),
    path("appointments/series/", api.SeriesView.as_view(), name="appointment-series"),
    path("appointments/waitlist/", api.WaitlistView.as_view(), name="waitlist"),
    path("appointments/waitlist/<int:entry_id>/", api.WaitlistEntryView.as_view(), name="waitlist-entry"),
    path("appointments/calendar-feed/rotate/", api.CalendarFeedRotateView.as_view(), name="calendar-feed-rotate"),
    path("appointments/<uuid:appointment_id>/", api.AppointmentDetailView.as_view(), name="appointment"),
    path("appointments/<uuid:appointment_id>/confirm/", api.AppointmentConfirmView.as_view(), name="appointment-confirm"),
    path("appointments/<uuid:appointment_id>/cancellation/", api.AppointmentCancellationQuoteView.as_view(), name="appointment-cancellation"),
    path("appointments/<uuid:appointment_id>/cancel/", api.AppointmentCancelView.as_view(), name="appointment-cancel"),
    path("appointments/<uuid:appointment_id>/reschedule/", api.AppointmentRescheduleView.as_view(), name="appointment-reschedule"),
    path("appointments/<uuid:appointment_id>/status/", api.AppointmentStatusView.as_view(), name="appointment-status"),
    path("appointments/<uuid:appointment_id>/calendar.ics", api.AppointmentCalendarView.as_view(), name="appointment-calendar"),
    path("appointments/<uuid:appointment_id>/rebooking/", api.AppointmentRebookingView.as_view(), name="appointment-rebooking"),
    path("appointments/<uuid:appointment_id>/notes/", api.AppointmentNotesView.as_view(), name="appointment-notes"),
    path("appointments/<uuid:appointment_id>/follow-up/", api.FollowUpView.as_view(), name="appointment-follow-up"),
    path("appointments/<uuid:appointment_id>/follow-up/book/", api.FollowUpBookView.as_view(), name="appointment-follow-up-book"),
]
