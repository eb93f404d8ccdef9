from django.urls import path

from . import api, views

page_patterns = [
    path("consultations/invitation/<str:token>/", views.guest_invitation, name="guest-invitation"),
    path("consultations/<str:room>/", views.room, name="room"),
    path("consultations/<str:room>/check/", views.check, name="check"),
    path("consultations/<str:room>/guest/", views.guest_room, name="guest-room"),
]

api_patterns = [
    path("consultations/", api.ConsultationListView.as_view(), name="consultations"),
    path("consultations/<str:room>/", api.ConsultationDetailView.as_view(), name="consultation"),
    path("consultations/<str:room>/chat/", api.ConsultationChatView.as_view(), name="consultation-chat"),
    path("consultations/<str:room>/guests/", api.ConsultationGuestsView.as_view(), name="consultation-guests"),
    path("consultations/<str:room>/guests/<uuid:invite_id>/", api.ConsultationGuestView.as_view(), name="consultation-guest"),
]
