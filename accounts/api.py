"""Accounts API (/api/v1/auth/ and /api/v1/admin/users/): thin views over services.py."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from medimeet.core.api import ModelOutputSerializer, ScopedRateThrottle, StandardPagination, error_responses, staff_permission, valid_input
from medimeet.core.errors import ApplicationError

from . import selectors, services
from .models import PatientProfile, User, validate_phone_number, validate_timezone

# --- Serializers ----------------------------------------------------------------------------


class RegisterInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, style={"input_type": "password"})
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    timezone = serializers.CharField(max_length=64, required=False, default="UTC", validators=[validate_timezone])
    language = serializers.ChoiceField(choices=settings.LANGUAGES, required=False, default="en")


class LoginInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, style={"input_type": "password"})
    device_name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")


class MfaInput(serializers.Serializer):
    mfa_token = serializers.CharField(max_length=1000)
    code = serializers.CharField(max_length=64, help_text="A 6-digit authenticator code or a recovery code.")


class TokenPairOutput(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class LoginOutput(serializers.Serializer):
    mfa_required = serializers.BooleanField()
    mfa_token = serializers.CharField(required=False, help_text="Present when mfa_required: send it to login/mfa/.")
    access = serializers.CharField(required=False)
    refresh = serializers.CharField(required=False)


class RefreshInput(serializers.Serializer):
    refresh = serializers.CharField(max_length=2000)


class KeyInput(serializers.Serializer):
    key = serializers.CharField(max_length=500)


class EmailInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetConfirmInput(serializers.Serializer):
    key = serializers.CharField(max_length=500, help_text="The last part of the emailed link: <uid>-<token>.")
    password = serializers.CharField(max_length=128, style={"input_type": "password"})


class PasswordChangeInput(serializers.Serializer):
    current_password = serializers.CharField(max_length=128, style={"input_type": "password"})
    new_password = serializers.CharField(max_length=128, style={"input_type": "password"})


class DetailOutput(serializers.Serializer):
    detail = serializers.CharField()


class PatientProfileOutput(ModelOutputSerializer):
    class Meta:
        model = PatientProfile
        fields = sorted(services.PROFILE_FIELDS)


class MeOutput(ModelOutputSerializer):
    id = serializers.UUIDField(source="public_id")
    picture = serializers.ImageField(read_only=True)
    picture_thumbnail = serializers.ImageField(read_only=True)
    mfa_enabled = serializers.SerializerMethodField()
    profile = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id", "email", "first_name", "last_name", "role", "status", "timezone", "language",
            "picture", "picture_thumbnail", "date_joined", "mfa_enabled", "profile",
        ]

    def get_mfa_enabled(self, user: User) -> bool:
        return bool(getattr(user, "mfa_enabled", False))

    @extend_schema_field(PatientProfileOutput(allow_null=True))
    def get_profile(self, user: User) -> dict | None:
        profile = getattr(user, "patient_profile", None) if user.role == User.Role.PATIENT else None
        return PatientProfileOutput(profile).data if profile is not None else None


class MeUpdateInput(serializers.Serializer):
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    timezone = serializers.CharField(max_length=64, required=False, validators=[validate_timezone])
    language = serializers.ChoiceField(choices=settings.LANGUAGES, required=False)
    date_of_birth = serializers.DateField(required=False, allow_null=True)
    sex = serializers.ChoiceField(choices=PatientProfile.Sex.choices, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True, validators=[validate_phone_number])
    address = serializers.CharField(max_length=500, required=False, allow_blank=True)
    medical_history_summary = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    allergies = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    chronic_conditions = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    emergency_contact_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    emergency_contact_phone = serializers.CharField(max_length=32, required=False, allow_blank=True, validators=[validate_phone_number])

    def validate_date_of_birth(self, value: datetime.date | None) -> datetime.date | None:
        if value is not None and (value > datetime.date.today() or value.year < 1900):
            raise serializers.ValidationError("Enter a date of birth between 1900 and today.")
        return value


    def validate(self, attrs: dict) -> dict:
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({name: [gettext("Unknown or read-only field.")] for name in sorted(unknown)})
        return attrs


class PictureInput(serializers.Serializer):
    picture = serializers.FileField(help_text="JPEG, PNG or WebP, at most PROFILE_PICTURE_MAX_BYTES.")


SESSION_KINDS = [("web", "Web browser session"), ("api", "API client (app) session")]


class SessionOutput(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.ChoiceField(choices=SESSION_KINDS)
    device = serializers.CharField()
    ip_address = serializers.IPAddressField(allow_null=True)
    user_agent = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField(allow_null=True)
    current = serializers.BooleanField()


class RevokeAllInput(serializers.Serializer):
    include_current = serializers.BooleanField(default=False, help_text="Also end the session making this request.")


class BlockInput(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class AdminUserStatusOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")

    class Meta:
        model = User
        fields = ["id", "email", "role", "status", "blocked_reason", "blocked_at"]


class AdminUserFilter(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=100, help_text="Searches email, first and last name.")
    role = serializers.ChoiceField(choices=User.Role.choices, required=False)
    status = serializers.ChoiceField(choices=User.Status.choices, required=False)
    is_staff = serializers.BooleanField(required=False, allow_null=True, default=None)
    email_verified = serializers.BooleanField(required=False, allow_null=True, default=None)
    joined_after = serializers.DateTimeField(required=False)
    joined_before = serializers.DateTimeField(required=False)
    ordering = serializers.ChoiceField(choices=["date_joined", "-date_joined", "email", "-email", "last_login", "-last_login"], default="-date_joined")


class AdminUserOutput(ModelOutputSerializer):
    """An account as staff see it: status, verification, MFA, roles and live API sessions."""

    id = serializers.UUIDField(source="public_id")
    email_verified = serializers.BooleanField()
    mfa_enabled = serializers.BooleanField()
    live_api_sessions = serializers.IntegerField()
    roles = serializers.SerializerMethodField()
    doctor_verification_status = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id", "email", "first_name", "last_name", "role", "status", "blocked_reason", "blocked_at", "is_staff",
            "email_verified", "mfa_enabled", "doctor_verification_status", "roles", "live_api_sessions", "date_joined", "last_login",
        ]  # fmt: skip

    def get_roles(self, user: User) -> list[str]:
        return sorted(group.name for group in user.groups.all())

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_doctor_verification_status(self, user: User) -> str | None:
        profile = getattr(user, "doctor_profile", None) if user.role == User.Role.DOCTOR else None
        return profile.verification_status if profile else None


class BulkInput(serializers.Serializer):
    action = serializers.ChoiceField(choices=services.BULK_ACTIONS)
    ids = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=services.BULK_LIMIT)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, help_text="Required to block.")


class BulkErrorOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class BulkResultOutput(serializers.Serializer):
    id = serializers.CharField()
    ok = serializers.BooleanField()
    status = serializers.CharField(required=False)
    detail = serializers.CharField(required=False)
    error = BulkErrorOutput(required=False)


class BulkOutput(serializers.Serializer):
    results = BulkResultOutput(many=True)


class ResendOutput(serializers.Serializer):
    sent = serializers.BooleanField(help_text="False when the account has no unverified address.")


def _me(request) -> Response:
    return Response(MeOutput(selectors.user_with_profile(user=request.user), context={"request": request}).data)


# --- Views ----------------------------------------------------------------------------------


class RegisterView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "register"

    @extend_schema(tags=["auth"], request=RegisterInput, responses={201: MeOutput, **error_responses(400, 409, 429)}, auth=[])
    def post(self, request):
        data = valid_input(RegisterInput, request.data)
        user = services.user_register(
            request=request._request,
            email=data["email"],
            password=data["password"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            timezone_name=data["timezone"],
            language=data["language"],
        )
        return Response(MeOutput(selectors.user_with_profile(user=user), context={"request": request}).data, status=status.HTTP_201_CREATED)


class VerifyEmailView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["auth"], request=KeyInput, responses={200: DetailOutput, **error_responses(400)}, auth=[])
    def post(self, request):
        data = valid_input(KeyInput, request.data)
        services.email_verify(request=request._request, key=data["key"])
        return Response({"detail": "Email address verified."})


class ResendVerificationView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "password_reset"

    @extend_schema(tags=["auth"], request=EmailInput, responses={202: DetailOutput, **error_responses(400, 429)}, auth=[])
    def post(self, request):
        data = valid_input(EmailInput, request.data)
        services.email_verification_resend(request=request._request, email=data["email"])
        return Response({"detail": "If the address needs verifying, a new link has been sent."}, status=status.HTTP_202_ACCEPTED)


def _login_response(result: services.LoginResult) -> Response:
    if result.mfa_token:
        return Response({"mfa_required": True, "mfa_token": result.mfa_token})
    return Response({"mfa_required": False, **result.tokens})


class LoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(tags=["auth"], request=LoginInput, responses={200: LoginOutput, **error_responses(400, 401, 403, 429)}, auth=[])
    def post(self, request):
        data = valid_input(LoginInput, request.data)
        result = services.login_with_password(
            request=request._request, email=data["email"], password=data["password"], device_name=data["device_name"]
        )
        return _login_response(result)


class LoginMfaView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(tags=["auth"], request=MfaInput, responses={200: LoginOutput, **error_responses(400, 401, 403, 429)}, auth=[])
    def post(self, request):
        data = valid_input(MfaInput, request.data)
        return _login_response(services.login_complete_mfa(request=request._request, mfa_token=data["mfa_token"], code=data["code"]))


class TokenRefreshView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(tags=["auth"], request=RefreshInput, responses={200: TokenPairOutput, **error_responses(400, 401, 403)}, auth=[])
    def post(self, request):
        data = valid_input(RefreshInput, request.data)
        return Response(services.tokens_refresh(refresh=data["refresh"]))


class LogoutView(APIView):
    @extend_schema(tags=["auth"], request=RefreshInput, responses={204: None, **error_responses(400, 401)})
    def post(self, request):
        data = valid_input(RefreshInput, request.data)
        services.api_logout(user=request.user, refresh=data["refresh"], request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordResetView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "password_reset"

    @extend_schema(tags=["auth"], request=EmailInput, responses={202: DetailOutput, **error_responses(400, 429)}, auth=[])
    def post(self, request):
        data = valid_input(EmailInput, request.data)
        services.password_reset_request(request=request._request, email=data["email"])
        return Response({"detail": "If an account exists for this address, a reset link has been sent."}, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "password_reset"

    @extend_schema(tags=["auth"], request=PasswordResetConfirmInput, responses={200: DetailOutput, **error_responses(400, 429)}, auth=[])
    def post(self, request):
        data = valid_input(PasswordResetConfirmInput, request.data)
        services.password_reset_confirm(request=request._request, key=data["key"], password=data["password"])
        return Response({"detail": "Password changed. Sign in with the new password."})


class PasswordChangeView(APIView):
    @extend_schema(tags=["auth"], request=PasswordChangeInput, responses={200: DetailOutput, **error_responses(400, 401)})
    def post(self, request):
        data = valid_input(PasswordChangeInput, request.data)
        services.password_change(
            user=request.user, current_password=data["current_password"], new_password=data["new_password"], request=request._request
        )
        return Response({"detail": "Password changed."})


class MeView(APIView):
    @extend_schema(tags=["profile"], responses={200: MeOutput, **error_responses(401)})
    def get(self, request):
        return _me(request)

    @extend_schema(tags=["profile"], request=MeUpdateInput, responses={200: MeOutput, **error_responses(400, 401)})
    def patch(self, request):
        data = valid_input(MeUpdateInput, request.data)
        if request.user.role != User.Role.PATIENT and set(data) & services.PROFILE_FIELDS:
            raise ApplicationError("REQ_001", fields={"profile": [gettext("Only patients have a patient profile.")]})
        services.profile_update(user=request.user, data=dict(data), request=request._request)
        return _me(request)


class MePictureView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(tags=["profile"], request={"multipart/form-data": PictureInput}, responses={200: MeOutput, **error_responses(400, 401)})
    def post(self, request):
        data = valid_input(PictureInput, request.data)
        services.profile_picture_set(user=request.user, upload=data["picture"], request=request._request)
        return _me(request)


class SessionListView(APIView):
    @extend_schema(tags=["sessions"], responses={200: SessionOutput(many=True), **error_responses(401)})
    def get(self, request):
        return Response(SessionOutput(selectors.sessions_for_user(user=request.user, request=request._request), many=True).data)


class SessionDetailView(APIView):
    @extend_schema(tags=["sessions"], responses={204: None, **error_responses(401, 404)})
    def delete(self, request, session_id: str):
        services.session_revoke(user=request.user, session_id=session_id, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionRevokeAllView(APIView):
    @extend_schema(tags=["sessions"], request=RevokeAllInput, responses={204: None, **error_responses(400, 401)})
    def post(self, request):
        data = valid_input(RevokeAllInput, request.data)
        services.sessions_revoke_all(user=request.user, request=request._request, keep_current=not data["include_current"])
        return Response(status=status.HTTP_204_NO_CONTENT)


# Staff (medimeet.core.roles): reading accounts needs accounts.view_user, acting on them accounts.change_user.
USER_MANAGEMENT = staff_permission("accounts.view_user", "accounts.change_user")


class AdminUserListView(APIView):
    permission_classes = [USER_MANAGEMENT]
    pagination_class = StandardPagination  # what drf-spectacular documents the 200 as: one page

    @extend_schema(tags=["admin users"], parameters=[AdminUserFilter], responses={200: AdminUserOutput(many=True), **error_responses(400, 401, 403)})
    def get(self, request):
        """Every account, filtered and searched, newest first (the admin's user list)."""
        params = valid_input(AdminUserFilter, request.query_params)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.users_for_staff(**params), request, view=self)
        return paginator.get_paginated_response(AdminUserOutput(page, many=True).data)


class AdminUserBulkView(APIView):
    permission_classes = [USER_MANAGEMENT]

    @extend_schema(tags=["admin users"], request=BulkInput, responses={200: BulkOutput, **error_responses(400, 401, 403)})
    def post(self, request):
        """One action on up to 100 accounts; each id gets its own outcome (the others still apply)."""
        data = valid_input(BulkInput, request.data)
        results = services.users_bulk_action(by=request.user, action=data["action"], user_ids=data["ids"], reason=data.get("reason", ""), request=request._request)
        return Response({"results": results})


class AdminUserActionView(APIView):
    """Base of the staff views on one account; ``user_id`` is the user's public id."""

    permission_classes = [USER_MANAGEMENT]

    def target(self, user_id) -> User:
        user = User.objects.filter(public_id=user_id).first()
        if user is None:
            raise ApplicationError("USER_001")
        return user


class AdminUserDetailView(AdminUserActionView):
    @extend_schema(tags=["admin users"], responses={200: AdminUserOutput, **error_responses(401, 403, 404)})
    def get(self, request, user_id):
        user = selectors.users_for_staff().filter(public_id=user_id).first()
        if user is None:
            raise ApplicationError("USER_001")
        return Response(AdminUserOutput(user).data)


class AdminResendVerificationView(AdminUserActionView):
    @extend_schema(tags=["admin users"], request=None, responses={200: ResendOutput, **error_responses(401, 403, 404)})
    def post(self, request, user_id):
        """Send the email verification link again (nothing is sent to a verified account)."""
        sent = services.user_verification_resend(user=self.target(user_id), by=request.user, request=request._request)
        return Response({"sent": sent})


class AdminForceLogoutView(AdminUserActionView):
    @extend_schema(tags=["admin users"], request=None, responses={200: AdminUserStatusOutput, **error_responses(401, 403, 404)})
    def post(self, request, user_id):
        user = self.target(user_id)
        services.user_force_logout(user=user, by=request.user, request=request._request)
        return Response(AdminUserStatusOutput(user).data)


class AdminBlockView(AdminUserActionView):
    @extend_schema(tags=["admin users"], request=BlockInput, responses={200: AdminUserStatusOutput, **error_responses(400, 401, 403, 404)})
    def post(self, request, user_id):
        user = self.target(user_id)
        data = valid_input(BlockInput, request.data)
        user = services.user_block(user=user, by=request.user, reason=data["reason"], request=request._request)
        return Response(AdminUserStatusOutput(user).data)


class AdminUnblockView(AdminUserActionView):
    @extend_schema(tags=["admin users"], request=None, responses={200: AdminUserStatusOutput, **error_responses(401, 403, 404)})
    def post(self, request, user_id):
        user = services.user_unblock(user=self.target(user_id), by=request.user, request=request._request)
        return Response(AdminUserStatusOutput(user).data)
