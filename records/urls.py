from django.urls import path

from . import api, views

page_patterns = [
    path("records/", views.my_record, name="mine"),
    path("records/grants/<uuid:grant_id>/revoke/", views.grant_revoke, name="grant-revoke"),
    path("records/entries/<uuid:entry_id>/history/", views.entry_history, name="entry-history"),
    path("records/entries/<uuid:entry_id>/edit/", views.entry_edit, name="entry-edit"),
    path("records/entries/<uuid:entry_id>/delete/", views.entry_delete, name="entry-delete"),
    path("records/erasure/", views.erasure_request, name="erasure"),
    path("records/appointments/<uuid:appointment_id>/prescribe/", views.prescribe, name="prescribe"),
    path("records/patients/<uuid:patient_id>/", views.patient_record, name="patient"),
    path("records/documents/<uuid:document_id>/download/", views.document_download, name="document-download"),
    path("records/files/<str:token>/", views.document_link, name="document-link"),
    path("records/export/", views.export, name="export"),
    path("records/prescriptions/<uuid:prescription_id>/prescription.pdf", views.prescription_pdf, name="prescription-pdf"),
    path("prescriptions/verify/<str:code>/", views.verify_prescription, name="verify-prescription"),
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
    path("records/appointments/<uuid:appointment_id>/prescriptions/", api.PrescriptionIssueView.as_view(), name="prescriptions"),
    path("records/prescriptions/<uuid:prescription_id>/", api.PrescriptionDetailView.as_view(), name="prescription"),
    path("records/prescriptions/<uuid:prescription_id>/supersede/", api.PrescriptionSupersedeView.as_view(), name="prescription-supersede"),
    path("records/prescriptions/<uuid:prescription_id>/pdf/", api.PrescriptionPdfView.as_view(), name="prescription-pdf"),
    path("records/export/", api.ExportView.as_view(), name="export"),
    path("records/erasure-requests/", api.ErasureRequestView.as_view(), name="erasure-requests"),
    path("records/access-log/", api.AccessLogView.as_view(), name="access-log"),
    path("records/audit-export/", api.AuditExportView.as_view(), name="audit-export"),
]
