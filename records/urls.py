from django.urls import path

from . import api, views

page_patterns = [
    path("records/", views.my_record, name="mine"),
    path("records/grants/<uuid:grant_id>/revoke/", views.grant_revoke, name="grant-revoke"),
    path("records/patients/<uuid:patient_id>/", views.patient_record, name="patient"),
    path("records/documents/<uuid:document_id>/download/", views.document_download, name="document-download"),
    path("records/files/<str:token>/", views.document_link, name="document-link"),
]

api_patterns = [
    path("records/patients/<uuid:patient_id>/", api.RecordView.as_view(), name="record"),
    path("records/patients/<uuid:patient_id>/entries/", api.EntryListView.as_view(), name="entries"),
    path("records/patients/<uuid:patient_id>/documents/", api.DocumentListView.as_view(), name="documents"),
    path("records/patients/<uuid:patient_id>/search/", api.SearchView.as_view(), name="search"),
    path("records/patients/<uuid:patient_id>/emergency-access/", api.EmergencyAccessView.as_view(), name="emergency-access"),
    path("records/entries/<uuid:entry_id>/", api.EntryDetailView.as_view(), name="entry"),
    path("records/entries/<uuid:entry_id>/history/", api.EntryHistoryView.as_view(), name="entry-history"),
    path("records/documents/<uuid:document_id>/", api.DocumentDetailView.as_view(), name="document"),
    path("records/documents/<uuid:document_id>/download/", api.DocumentDownloadView.as_view(), name="document-download"),
    path("records/documents/<uuid:document_id>/links/", api.DocumentLinkView.as_view(), name="document-links"),
    path("records/grants/", api.GrantListView.as_view(), name="grants"),
    path("records/grants/<uuid:grant_id>/revoke/", api.GrantRevokeView.as_view(), name="grant-revoke"),
    path("records/access-log/", api.AccessLogView.as_view(), name="access-log"),
    path("records/audit-export/", api.AuditExportView.as_view(), name="audit-export"),
]
