from django.urls import path

from . import api, subscription_api, views

page_patterns = [
    path("payments/", views.history, name="history"),
    path("payments/<uuid:payment_id>/receipt.pdf", views.receipt, name="receipt"),
    path("payments/<uuid:payment_id>/return/", views.payment_return, name="return"),
    path("payments/sandbox/<str:reference>/", views.sandbox_pay, name="sandbox"),
    path("appointments/<uuid:appointment_id>/pay/", views.pay, name="pay"),
    path("receipts/verify/<str:code>/", views.verify_receipt, name="verify-receipt"),
    path("portal/earnings/", views.earnings, name="earnings"),
    path("plans/", views.plans, name="plans"),
    path("plans/<uuid:plan_id>/subscribe/", views.plan_subscribe, name="plan-subscribe"),
    path("plans/<uuid:plan_id>/change/", views.plan_change, name="plan-change"),
    path("plans/sandbox/<str:reference>/", views.plan_sandbox, name="plan-sandbox"),
    path("plans/subscriptions/<uuid:subscription_id>/return/", views.plan_return, name="plan-return"),
    path("plans/subscriptions/<uuid:subscription_id>/cancel/", views.plan_cancel, name="plan-cancel"),
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
    path("admin/subscriptions/report/", subscription_api.SubscriptionReportView.as_view(), name="subscription-report"),
    path("subscriptions/", subscription_api.SubscriptionListView.as_view(), name="subscriptions"),
    path("subscriptions/plans/", subscription_api.PlanListView.as_view(), name="subscription-plans"),
    path("subscriptions/<uuid:subscription_id>/", subscription_api.SubscriptionDetailView.as_view(), name="subscription"),
    path("subscriptions/<uuid:subscription_id>/verify/", subscription_api.SubscriptionVerifyView.as_view(), name="subscription-verify"),
    path("subscriptions/<uuid:subscription_id>/cancel/", subscription_api.SubscriptionCancelView.as_view(), name="subscription-cancel"),
    path("subscriptions/<uuid:subscription_id>/resume/", subscription_api.SubscriptionResumeView.as_view(), name="subscription-resume"),
    path("subscriptions/<uuid:subscription_id>/change/", subscription_api.SubscriptionChangeView.as_view(), name="subscription-change"),
    path("admin/refunds/<uuid:refund_id>/approve/", api.RefundDecisionView.as_view(), name="refund-approve"),
    path("admin/refunds/<uuid:refund_id>/reject/", api.RefundRejectView.as_view(), name="refund-reject"),
]
