from django.urls import path

from . import api, views

page_patterns = [
    path("doctors/", views.search, name="search"),
    path("doctors/apply/", views.apply, name="apply"),
    path("doctors/invitation/<str:token>/", views.invitation, name="invitation"),
    path("doctors/<slug:slug>/", views.detail, name="detail"),
    path("portal/", views.portal, name="portal"),
    path("portal/profile/", views.portal_profile, name="portal-profile"),
    path("portal/services/", views.portal_services, name="portal-services"),
    path("portal/services/<uuid:service_id>/", views.portal_service_edit, name="portal-service-edit"),
    path("portal/documents/", views.portal_documents, name="portal-documents"),
    path("portal/documents/<int:pk>/", views.document_download, name="document"),
    path("portal/resubmit/", views.portal_resubmit, name="portal-resubmit"),
]

api_patterns = [
    path("doctors/", api.DoctorSearchView.as_view(), name="doctor-search"),
    path("doctors/applications/", api.ApplicationView.as_view(), name="doctor-apply"),
    path("doctors/me/", api.OwnProfileView.as_view(), name="doctor-me"),
    path("doctors/me/documents/", api.OwnDocumentsView.as_view(), name="doctor-me-documents"),
    path("doctors/me/resubmit/", api.OwnResubmitView.as_view(), name="doctor-me-resubmit"),
    path("doctors/me/services/", api.OwnServicesView.as_view(), name="doctor-me-services"),
    path("doctors/me/services/<uuid:service_id>/", api.OwnServiceDetailView.as_view(), name="doctor-me-service"),
    path("doctors/<slug:slug>/", api.DoctorDetailView.as_view(), name="doctor-detail"),
    path("specializations/", api.SpecializationListView.as_view(), name="specializations"),
    path("languages/", api.LanguageListView.as_view(), name="languages"),
    path("admin/doctors/", api.StaffDoctorListView.as_view(), name="admin-doctors"),
    path("admin/doctors/<uuid:doctor_id>/", api.StaffDoctorDetailView.as_view(), name="admin-doctor"),
    path("admin/doctors/<uuid:doctor_id>/transition/", api.StaffDoctorTransitionView.as_view(), name="admin-doctor-transition"),
    path("admin/doctors/<uuid:doctor_id>/invitation/", api.StaffDoctorInvitationView.as_view(), name="admin-doctor-invitation"),
]
