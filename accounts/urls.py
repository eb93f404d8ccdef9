from django.urls import path

from . import api, views

page_patterns = [
    path("", views.dashboard, name="dashboard"),
    path("profile/", views.profile_edit, name="profile"),
    path("profile/picture/", views.profile_picture, name="profile-picture"),
    path("devices/", views.devices, name="devices"),
    path("devices/<str:session_id>/revoke/", views.device_revoke, name="device-revoke"),
]

api_patterns = [
    path("register/", api.RegisterView.as_view(), name="register"),
    path("verify-email/", api.VerifyEmailView.as_view(), name="verify-email"),
    path("verify-email/resend/", api.ResendVerificationView.as_view(), name="verify-email-resend"),
    path("login/", api.LoginView.as_view(), name="login"),
    path("login/mfa/", api.LoginMfaView.as_view(), name="login-mfa"),
    path("token/refresh/", api.TokenRefreshView.as_view(), name="token-refresh"),
    path("logout/", api.LogoutView.as_view(), name="logout"),
    path("password/reset/", api.PasswordResetView.as_view(), name="password-reset"),
    path("password/reset/confirm/", api.PasswordResetConfirmView.as_view(), name="password-reset-confirm"),
    path("password/change/", api.PasswordChangeView.as_view(), name="password-change"),
    path("me/", api.MeView.as_view(), name="me"),
    path("me/picture/", api.MePictureView.as_view(), name="me-picture"),
    path("sessions/", api.SessionListView.as_view(), name="sessions"),
    path("sessions/revoke-all/", api.SessionRevokeAllView.as_view(), name="sessions-revoke-all"),
    path("sessions/<str:session_id>/", api.SessionDetailView.as_view(), name="session-detail"),
]

admin_api_patterns = [
    path("", api.AdminUserListView.as_view(), name="list"),
    path("bulk/", api.AdminUserBulkView.as_view(), name="bulk"),
    path("<uuid:user_id>/", api.AdminUserDetailView.as_view(), name="detail"),
    path("<uuid:user_id>/resend-verification/", api.AdminResendVerificationView.as_view(), name="resend-verification"),
    path("<uuid:user_id>/force-logout/", api.AdminForceLogoutView.as_view(), name="force-logout"),
    path("<uuid:user_id>/block/", api.AdminBlockView.as_view(), name="block"),
    path("<uuid:user_id>/unblock/", api.AdminUnblockView.as_view(), name="unblock"),
]
