from django.urls import path

from . import api, views

page_patterns = [
    path("consultations/<str:room>/", views.room, name="room"),
    path("consultations/<str:room>/check/", views.check, name="check"),
]

api_patterns = [
    path("consultations/", api.ConsultationListView.as_view(), name="consultations"),
    path("consultations/<str:room>/", api.ConsultationDetailView.as_view(), name="consultation"),
    path("consultations/<str:room>/chat/", api.ConsultationChatView.as_view(), name="consultation-chat"),
]
