from django.urls import path

from . import api, views

page_patterns = [
    path("payments/", views.history, name="history"),
    path("payments/<uuid:payment_id>/receipt.pdf", views.receipt, name="receipt"),
    path("payments/<uuid:payment_id>/return/", views.payment_return, name="return"),
    path("payments/sandbox/<str:reference>/", views.sandbox_pay, name="sandbox"),
    path("appointments/<uuid:appointment_id>/pay/", views.pay, name="pay"),
    path("receipts/verify/<str:code>/", views.verify_receipt, name="verify-receipt"),
    path("portal/earnings/", views.earnings, name="earnings"),
]

api_patterns = [
    path("payments/", api.PaymentListView.as_view(), name="payments"),
    path("payments/saved-cards/", api.SavedCardsView.as_view(), name="saved-cards"),
    path("payments/saved-cards/<uuid:card_id>/", api.SavedCardView.as_view(), name="saved-card"),
    path("payments/webhooks/<str:gateway>/", api.WebhookView.as_view(), name="webhook"),
    path("payments/<uuid:payment_id>/", api.PaymentDetailView.as_view(), name="payment"),
    path("payments/<uuid:payment_id>/verify/", api.PaymentVerifyView.as_view(), name="payment-verify"),
    path("payments/<uuid:payment_id>/receipt/", api.PaymentReceiptView.as_view(), name="payment-receipt"),
    path("payments/<uuid:payment_id>/refunds/", api.PaymentRefundsView.as_view(), name="payment-refunds"),
    path("doctors/me/earnings/", api.OwnEarningsView.as_view(), name="doctor-me-earnings"),
    path("admin/finance/report/", api.FinanceReportView.as_view(), name="finance-report"),
    path("admin/refunds/", api.RefundQueueView.as_view(), name="refund-queue"),
    path("admin/refunds/<uuid:refund_id>/approve/", api.RefundDecisionView.as_view(), name="refund-approve"),
    path("admin/refunds/<uuid:refund_id>/reject/", api.RefundRejectView.as_view(), name="refund-reject"),
]
