from django.urls import path

from . import api, views

page_patterns = [
    path("consultations/invitation/<str:token>/", views.guest_invitation, name="guest-invitation"),
    path("consultations/<str:room>/", views.room, name="room"),
    path("consultations/<str:room>/check/", views.check, name="check"),
    path("consultations/<str:room>/guest/", views.guest_room, name="guest-room"),
    path("recordings/shared/<str:token>/", views.recording_shared, name="recording-shared"),
]

api_patterns = [
    path("consultations/", api.ConsultationListView.as_view(), name="consultations"),
    path("consultations/<str:room>/", api.ConsultationDetailView.as_view(), name="consultation"),
    path("consultations/<str:room>/chat/", api.ConsultationChatView.as_view(), name="consultation-chat"),
    path("consultations/<str:room>/guests/", api.ConsultationGuestsView.as_view(), name="consultation-guests"),
    path("consultations/<str:room>/guests/<uuid:invite_id>/", api.ConsultationGuestView.as_view(), name="consultation-guest"),
    path("consultations/<str:room>/recordings/", api.RecordingListView.as_view(), name="recordings"),
    path("consultations/<str:room>/recordings/<uuid:recording_id>/chunks/<int:seq>/", api.RecordingChunkView.as_view(), name="recording-chunk"),
    path("consultations/<str:room>/recordings/<uuid:recording_id>/finish/", api.RecordingFinishView.as_view(), name="recording-finish"),
    path("recordings/<uuid:recording_id>/download/", api.RecordingDownloadView.as_view(), name="recording-download"),
    path("recordings/<uuid:recording_id>/links/", api.RecordingLinkView.as_view(), name="recording-links"),
]
