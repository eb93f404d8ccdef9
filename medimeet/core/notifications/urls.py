from django.urls import path

from . import api, views

page_patterns = [
    path("notifications/", views.history, name="history"),
    path("notifications/preferences/", views.preferences, name="preferences"),
    path("notifications/preferences/phone/", views.sms_number, name="sms-number"),
    path("notifications/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("notifications/announcements/<int:announcement_id>/dismiss/", views.announcement_dismiss, name="announcement-dismiss"),
    path("staff/outbox/", views.outbox, name="outbox"),
    path("staff/outbox/<str:name>/", views.outbox_message, name="outbox-message"),
]

api_patterns = [
    path("notifications/", api.NotificationListView.as_view(), name="list"),
    path("notifications/preferences/", api.PreferencesView.as_view(), name="preferences"),
    path("notifications/announcements/", api.AnnouncementListView.as_view(), name="announcements"),
    path("notifications/sms/", api.SmsNumberView.as_view(), name="sms-number"),
    path("notifications/sms/verify/", api.SmsNumberVerifyView.as_view(), name="sms-verify"),
    path("notifications/sms/status/", api.SmsStatusView.as_view(), name="sms-status"),
    path("notifications/announcements/<int:announcement_id>/dismiss/", api.AnnouncementDismissView.as_view(), name="announcement-dismiss"),
]
