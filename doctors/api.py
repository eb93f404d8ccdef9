"""Doctors API: public search and profiles, applications, the doctor's own profile and services,
and the staff verification endpoints. Thin views over services.py and selectors.py."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User, validate_timezone
from medimeet.core.api import KnownCountPagination, ScopedRateThrottle, StandardPagination, error_responses, staff_permission, valid_input
from medimeet.core.errors import ApplicationError

from . import selectors, services
from .models import (
    CURRENCY_CHOICES,
    CURRENCY_EXPONENTS,
    TRANSITION_TARGET_CHOICES,
    ConsultationMode,
    DoctorDocument,
    DoctorProfile,
    DoctorService,
    Language,
    Specialization,
    VerificationEvent,
    format_money,
)

# --- Output ---------------------------------------------------------------------------------


class MoneySerializer(serializers.Serializer):
    """An amount as every API response shows it: prices, payments, refunds, earnings."""

    amount_minor = serializers.IntegerField(help_text="In the currency's minor unit (cents, paise; yen for JPY).")
    currency = serializers.CharField()
    exponent = serializers.IntegerField(help_text="Decimal places of the currency (USD 2, JPY 0).")
    display = serializers.CharField()


def money(amount_minor: int | None, currency: str) -> dict | None:
    if amount_minor is None or not currency:
        return None
    return {"amount_minor": amount_minor, "currency": currency, "exponent": CURRENCY_EXPONENTS.get(currency, 2), "display": format_money(amount_minor, currency)}


class SpecializationRef(serializers.ModelSerializer):
    class Meta:
        model = Specialization
        fields = ["slug", "name"]


class ServiceOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    price = serializers.SerializerMethodField()

    class Meta:
        model = DoctorService
        fields = [
            "id", "name", "description", "price_minor", "currency", "price", "duration_minutes", "mode",
            "preparation_instructions", "procedure_type", "equipment_required", "free_follow_up_days", "is_active",
        ]

    @extend_schema_field(MoneySerializer)
    def get_price(self, service: DoctorService) -> dict | None:
        return money(service.price_minor, service.currency)


class RatingSerializer(serializers.Serializer):
    average = serializers.FloatField(help_text="The displayed rating (docs/ratings.md); 0 without reviews.")
    count = serializers.IntegerField()


class DoctorCardOutput(serializers.ModelSerializer):
    """A search result."""

    id = serializers.UUIDField(source="public_id")
    name = serializers.CharField(source="display_name")
    photo = serializers.SerializerMethodField()
    primary_specialization = SpecializationRef()
    languages = serializers.SerializerMethodField()
    consultation_modes = serializers.ListField(child=serializers.CharField())
    rating = serializers.SerializerMethodField()
    fee_from = serializers.SerializerMethodField()

    class Meta:
        model = DoctorProfile
        fields = [
            "id", "slug", "name", "photo", "primary_specialization", "years_experience", "languages", "city",
            "country", "consultation_modes", "rating", "fee_from",
        ]

    def get_photo(self, doctor: DoctorProfile) -> str | None:
        thumbnail = doctor.user.picture_thumbnail
        if not thumbnail:
            return None
        request = self.context.get("request")
        return request.build_absolute_uri(thumbnail.url) if request else thumbnail.url

    def get_languages(self, doctor: DoctorProfile) -> list[str]:
        return [language.code for language in doctor.languages.all()]

    @extend_schema_field(RatingSerializer)
    def get_rating(self, doctor: DoctorProfile) -> dict:
        return {"average": float(doctor.rating_average), "count": doctor.rating_count}

    @extend_schema_field(MoneySerializer(allow_null=True))
    def get_fee_from(self, doctor: DoctorProfile) -> dict | None:
        return money(doctor.min_fee_minor, doctor.fee_currency)


class EducationSerializer(serializers.Serializer):
    degree = serializers.CharField(max_length=120)
    institution = serializers.CharField(max_length=200)
    year = serializers.IntegerField(min_value=1940, max_value=2100)


class CertificationSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    issuer = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    year = serializers.IntegerField(min_value=1940, max_value=2100, required=False, allow_null=True, default=None)


class PositionSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=120)
    organisation = serializers.CharField(max_length=200)
    start_year = serializers.IntegerField(min_value=1940, max_value=2100)
    end_year = serializers.IntegerField(min_value=1940, max_value=2100, required=False, allow_null=True, default=None)

    def validate(self, attrs: dict) -> dict:
        if attrs.get("end_year") is not None and attrs["end_year"] < attrs["start_year"]:
            raise serializers.ValidationError({"end_year": [gettext("A position cannot end before it starts.")]})
        return attrs


class ReviewsSummary(serializers.Serializer):
    count = serializers.IntegerField(help_text="Published verified reviews counted in the rating.")
    average = serializers.FloatField(help_text="The displayed rating (docs/ratings.md); 0 without reviews.")
    list_url = serializers.CharField(help_text="The reviews themselves, with filters and sorting.")


class DoctorDetailOutput(DoctorCardOutput):
    secondary_specializations = SpecializationRef(many=True)
    education = EducationSerializer(many=True)
    certifications = CertificationSerializer(many=True)
    positions = PositionSerializer(many=True)
    services = serializers.SerializerMethodField()
    reviews = serializers.SerializerMethodField()

    class Meta(DoctorCardOutput.Meta):
        fields = DoctorCardOutput.Meta.fields + [
            "title", "bio", "special_skills", "clinic_name", "clinic_address", "secondary_specializations",
            "education", "certifications", "positions", "services", "reviews",
        ]

    @extend_schema_field(ServiceOutput(many=True))
    def get_services(self, doctor: DoctorProfile) -> list[dict]:
        services_ = getattr(doctor, "active_services", None)
        if services_ is None:
            services_ = doctor.services.filter(is_active=True)
        return ServiceOutput(services_, many=True).data

    @extend_schema_field(ReviewsSummary)
    def get_reviews(self, doctor: DoctorProfile) -> dict:
        """The rating stored on the doctor (reviews app); the reviews are one link away."""
        return {"count": doctor.rating_count, "average": float(doctor.rating_average), "list_url": f"{reverse('api-v1:reviews:reviews')}?doctor={doctor.slug}"}


class VerificationEventOutput(serializers.ModelSerializer):
    class Meta:
        model = VerificationEvent
        fields = ["from_status", "to_status", "reason", "created_at"]


class DocumentOutput(serializers.ModelSerializer):
    class Meta:
        model = DoctorDocument
        fields = ["id", "kind", "original_name", "content_type", "size", "uploaded_at"]


class CompletenessOutput(serializers.Serializer):
    score = serializers.IntegerField(min_value=0, max_value=100)
    missing = serializers.ListField(child=serializers.CharField())


class OwnProfileOutput(DoctorDetailOutput):
    """What the doctor sees of their own profile: listing data plus verification state."""

    email = serializers.EmailField(source="user.email")
    first_name = serializers.CharField(source="user.first_name")
    last_name = serializers.CharField(source="user.last_name")
    listed = serializers.BooleanField(source="is_listed")
    completeness = serializers.SerializerMethodField()
    history = VerificationEventOutput(source="verification_events", many=True)
    documents = DocumentOutput(many=True)

    class Meta(DoctorDetailOutput.Meta):
        fields = DoctorDetailOutput.Meta.fields + [
            "email", "first_name", "last_name", "verification_status", "status_reason", "listed", "licence_number",
            "licence_authority", "licence_country", "licence_expiry", "offers_video", "offers_in_person", "completeness",
            "history", "documents",
        ]

    @extend_schema_field(ServiceOutput(many=True))
    def get_services(self, doctor: DoctorProfile) -> list[dict]:
        return ServiceOutput(doctor.services.all(), many=True).data

    @extend_schema_field(CompletenessOutput)
    def get_completeness(self, doctor: DoctorProfile) -> dict:
        result = selectors.doctor_completeness(doctor)
        return {"score": result.score, "missing": result.missing}


class StaffDoctorOutput(OwnProfileOutput):
    class Meta(OwnProfileOutput.Meta):
        fields = OwnProfileOutput.Meta.fields + ["submitted_at", "status_changed_at"]


# --- Input ----------------------------------------------------------------------------------


class SpecializationField(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        super().__init__(slug_field="slug", queryset=Specialization.objects.all(), **kwargs)


class SearchInput(serializers.Serializer):
    q = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    specialization = SpecializationField(required=False, allow_null=True, default=None)
    fee_min = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"), required=False, allow_null=True, default=None)
    fee_max = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"), required=False, allow_null=True, default=None)
    currency = serializers.ChoiceField(choices=CURRENCY_CHOICES, required=False, allow_blank=True, default="")
    experience_min = serializers.IntegerField(min_value=0, max_value=70, required=False, allow_null=True, default=None)
    rating_min = serializers.DecimalField(max_digits=3, decimal_places=2, min_value=Decimal("0"), max_value=Decimal("5"), required=False, allow_null=True, default=None)
    language = serializers.CharField(max_length=12, required=False, allow_blank=True, default="")
    mode = serializers.ChoiceField(choices=ConsultationMode.choices, required=False, allow_blank=True, default="")
    city = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False, allow_blank=True, default="")
    available_on = serializers.DateField(required=False, allow_null=True, default=None)
    sort = serializers.ChoiceField(choices=selectors.SORTS, required=False, default="relevance")

    def validate(self, attrs: dict) -> dict:
        fee_given = attrs["fee_min"] is not None or attrs["fee_max"] is not None
        if fee_given and not attrs["currency"]:
            raise serializers.ValidationError({"currency": [gettext("Give the currency of the fee range.")]})
        if attrs["fee_min"] is not None and attrs["fee_max"] is not None and attrs["fee_min"] > attrs["fee_max"]:
            raise serializers.ValidationError({"fee_max": [gettext("The maximum fee is below the minimum.")]})
        if attrs["available_on"] is not None and attrs["available_on"] < datetime.date.today() - datetime.timedelta(days=1):
            raise serializers.ValidationError({"available_on": [gettext("Choose today or a later date.")]})
        return attrs


class LicenceInput(serializers.Serializer):
    licence_number = serializers.CharField(max_length=40)
    licence_authority = serializers.CharField(max_length=200)
    licence_country = serializers.CharField(max_length=2)
    licence_expiry = serializers.DateField()
    primary_specialization = SpecializationField()


class ApplicationInput(LicenceInput):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, style={"input_type": "password"})
    first_name = serializers.CharField(max_length=150)
    last_name = serializers.CharField(max_length=150)
    timezone = serializers.CharField(max_length=64, required=False, default="UTC", validators=[validate_timezone])
    years_experience = serializers.IntegerField(min_value=0, max_value=70, required=False, default=0)
    licence_document = serializers.FileField(help_text="PDF, JPEG or PNG (checked by content), at most DOCTOR_DOCUMENT_MAX_BYTES.")
    qualification_documents = serializers.ListField(child=serializers.FileField(), required=False, default=list, max_length=10)


class InviteInput(LicenceInput):
    email = serializers.EmailField(max_length=254)
    first_name = serializers.CharField(max_length=150)
    last_name = serializers.CharField(max_length=150)


class ProfileUpdateInput(serializers.Serializer):
    first_name = serializers.CharField(max_length=150, required=False)
    last_name = serializers.CharField(max_length=150, required=False)
    title = serializers.CharField(max_length=20, required=False, allow_blank=True)
    bio = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    years_experience = serializers.IntegerField(min_value=0, max_value=70, required=False)
    special_skills = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    clinic_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    clinic_address = serializers.CharField(max_length=300, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False, allow_blank=True)
    offers_video = serializers.BooleanField(required=False)
    offers_in_person = serializers.BooleanField(required=False)
    primary_specialization = SpecializationField(required=False)
    secondary_specializations = SpecializationField(many=True, required=False)
    languages = serializers.SlugRelatedField(slug_field="code", queryset=Language.objects.all(), many=True, required=False)
    education = EducationSerializer(many=True, required=False)
    certifications = CertificationSerializer(many=True, required=False)
    positions = PositionSerializer(many=True, required=False)
    licence_number = serializers.CharField(max_length=40, required=False)
    licence_authority = serializers.CharField(max_length=200, required=False)
    licence_country = serializers.CharField(max_length=2, required=False)
    licence_expiry = serializers.DateField(required=False)

    def validate(self, attrs: dict) -> dict:
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({name: [gettext("Unknown or read-only field.")] for name in sorted(unknown)})
        return attrs


class DocumentInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=DoctorDocument.Kind.choices)
    document = serializers.FileField()


class ServiceInput(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    price_minor = serializers.IntegerField(min_value=1, max_value=100_000_000, help_text="Minor units: cents, paise; yen for JPY.")
    currency = serializers.ChoiceField(choices=CURRENCY_CHOICES)
    duration_minutes = serializers.IntegerField(min_value=5, max_value=240)
    mode = serializers.ChoiceField(choices=ConsultationMode.choices, default=ConsultationMode.VIDEO)
    preparation_instructions = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    procedure_type = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    equipment_required = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    free_follow_up_days = serializers.IntegerField(min_value=0, max_value=60, required=False, default=0, help_text="Follow-ups within this many days of a completed consultation are free.")
    is_active = serializers.BooleanField(required=False, default=True)

    def validate_duration_minutes(self, value: int) -> int:
        if value % 5:
            raise serializers.ValidationError("Use steps of 5 minutes.")
        return value


class TransitionInput(serializers.Serializer):
    to_status = serializers.ChoiceField(choices=TRANSITION_TARGET_CHOICES)
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class SpecializationNode(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    children = serializers.ListField(child=serializers.DictField(), help_text="Nested nodes of the same shape.")


class LanguageOutput(serializers.ModelSerializer):
    class Meta:
        model = Language
        fields = ["code", "name"]


# --- Permissions ----------------------------------------------------------------------------


class IsDoctor(BasePermission):
    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.role == User.Role.DOCTOR and hasattr(user, "doctor_profile"))


def _own_profile(request) -> DoctorProfile:
    return (
        DoctorProfile.objects.select_related("user", "primary_specialization")
        .prefetch_related("languages", "secondary_specializations", "education", "certifications", "positions", "services", "verification_events", "documents")
        .get(user=request.user)
    )


# --- Public views ---------------------------------------------------------------------------


class DoctorSearchView(APIView):
    permission_classes = [AllowAny]
    pagination_class = StandardPagination  # what drf-spectacular documents the 200 as: one page

    @extend_schema(tags=["doctors"], parameters=[SearchInput], responses={200: DoctorCardOutput(many=True), **error_responses(400)}, auth=[])
    def get(self, request):
        params = valid_input(SearchInput, request.query_params)
        search = selectors.DoctorSearch(**params)
        queryset = selectors.doctor_search(search)
        if request.query_params.get("page", "1") == "1":  # a search, not a later page of the same one
            services.search_tally_record()
        paginator = KnownCountPagination(lambda: selectors.doctor_search_count(search, queryset))
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(DoctorCardOutput(page, many=True, context={"request": request}).data)


class DoctorDetailView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["doctors"], responses={200: DoctorDetailOutput, **error_responses(404)}, auth=[])
    def get(self, request, slug: str):
        try:
            doctor = selectors.doctor_public_detail(slug=slug)
        except DoctorProfile.DoesNotExist as exc:
            raise ApplicationError("DOC_001") from exc
        return Response(DoctorDetailOutput(doctor, context={"request": request}).data)


class SpecializationListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["doctors"], responses={200: SpecializationNode(many=True)}, auth=[])
    def get(self, request):
        return Response(selectors.specialization_tree())


class LanguageListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["doctors"], responses={200: LanguageOutput(many=True)}, auth=[])
    def get(self, request):
        return Response(LanguageOutput(Language.objects.all(), many=True).data)


class ApplicationView(APIView):
    permission_classes = [AllowAny]
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "register"

    @extend_schema(tags=["doctor applications"], request={"multipart/form-data": ApplicationInput}, responses={201: OwnProfileOutput, **error_responses(400, 409, 429)}, auth=[])
    def post(self, request):
        data = valid_input(ApplicationInput, request.data)
        doctor = services.doctor_apply(
            request=request._request,
            email=data["email"],
            password=data["password"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            licence_number=data["licence_number"],
            licence_authority=data["licence_authority"],
            licence_country=data["licence_country"],
            licence_expiry=data["licence_expiry"],
            primary_specialization=data["primary_specialization"],
            licence_document=data["licence_document"],
            qualification_documents=data["qualification_documents"],
            timezone_name=data["timezone"],
            years_experience=data["years_experience"],
        )
        return Response(OwnProfileOutput(doctor, context={"request": request}).data, status=status.HTTP_201_CREATED)


# --- The doctor's own profile ---------------------------------------------------------------


class OwnProfileView(APIView):
    permission_classes = [IsDoctor]
    parser_classes = [JSONParser]

    @extend_schema(tags=["doctor portal"], responses={200: OwnProfileOutput, **error_responses(401, 403)})
    def get(self, request):
        return Response(OwnProfileOutput(_own_profile(request), context={"request": request}).data)

    @extend_schema(tags=["doctor portal"], request=ProfileUpdateInput, responses={200: OwnProfileOutput, **error_responses(400, 401, 403)})
    def patch(self, request):
        # Every field is optional, so no partial=True: nested rows (education...) stay fully validated.
        data = valid_input(ProfileUpdateInput, request.data)
        services.doctor_profile_update(doctor=request.user.doctor_profile, data=dict(data), by=request.user, request=request._request)
        return Response(OwnProfileOutput(_own_profile(request), context={"request": request}).data)


class OwnDocumentsView(APIView):
    permission_classes = [IsDoctor]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(tags=["doctor portal"], request={"multipart/form-data": DocumentInput}, responses={201: DocumentOutput, **error_responses(400, 401, 403)})
    def post(self, request):
        data = valid_input(DocumentInput, request.data)
        document = services.doctor_document_add(doctor=request.user.doctor_profile, kind=data["kind"], upload=data["document"], by=request.user, request=request._request)
        return Response(DocumentOutput(document).data, status=status.HTTP_201_CREATED)


class OwnResubmitView(APIView):
    permission_classes = [IsDoctor]

    @extend_schema(tags=["doctor portal"], request=None, responses={200: OwnProfileOutput, **error_responses(400, 401, 403, 409)})
    def post(self, request):
        services.doctor_resubmit(doctor=request.user.doctor_profile, request=request._request)
        return Response(OwnProfileOutput(_own_profile(request), context={"request": request}).data)


class OwnServicesView(APIView):
    permission_classes = [IsDoctor]

    @extend_schema(tags=["doctor portal"], responses={200: ServiceOutput(many=True), **error_responses(401, 403)})
    def get(self, request):
        return Response(ServiceOutput(request.user.doctor_profile.services.all(), many=True).data)

    @extend_schema(tags=["doctor portal"], request=ServiceInput, responses={201: ServiceOutput, **error_responses(400, 401, 403)})
    def post(self, request):
        data = valid_input(ServiceInput, request.data)
        service = services.service_create(doctor=request.user.doctor_profile, data=data, request=request._request)
        return Response(ServiceOutput(service).data, status=status.HTTP_201_CREATED)


class OwnServiceDetailView(APIView):
    permission_classes = [IsDoctor]

    def _service(self, request, service_id) -> DoctorService:
        # Scoped to the signed-in doctor: another doctor's service id is simply not found.
        return get_object_or_404(DoctorService.objects.select_related("doctor"), public_id=service_id, doctor__user=request.user)

    @extend_schema(tags=["doctor portal"], request=ServiceInput(partial=True), responses={200: ServiceOutput, **error_responses(400, 401, 403, 404)})
    def patch(self, request, service_id):
        service = self._service(request, service_id)
        serializer = ServiceInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        updated = services.service_update(service=service, data={k: v for k, v in serializer.validated_data.items() if k in request.data}, request=request._request)
        return Response(ServiceOutput(updated).data)

    @extend_schema(tags=["doctor portal"], responses={204: None, **error_responses(401, 403, 404)})
    def delete(self, request, service_id):
        # Services are deactivated, not deleted: appointments keep pointing at what was booked.
        services.service_update(service=self._service(request, service_id), data={"is_active": False}, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Staff ----------------------------------------------------------------------------------


# The verification role's area (medimeet.core.roles): read applications, move them along.
DOCTOR_VERIFICATION = staff_permission("doctors.view_doctorprofile", "doctors.change_doctorprofile")


class StaffDoctorFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=DoctorProfile.Status.choices, required=False, allow_blank=True, default="")
    q = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class StaffDoctorCardOutput(DoctorCardOutput):
    class Meta(DoctorCardOutput.Meta):
        fields = DoctorCardOutput.Meta.fields + ["verification_status", "submitted_at", "licence_country", "licence_expiry"]


class StaffDoctorListView(APIView):
    permission_classes = [DOCTOR_VERIFICATION]
    pagination_class = StandardPagination  # what drf-spectacular documents the 200 as: one page

    @extend_schema(tags=["admin doctors"], parameters=[StaffDoctorFilter], responses={200: StaffDoctorCardOutput(many=True), **error_responses(400, 401, 403)})
    def get(self, request):
        params = valid_input(StaffDoctorFilter, request.query_params)
        queryset = selectors.doctor_queue(status=params["status"], q=params["q"])
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(StaffDoctorCardOutput(page, many=True, context={"request": request}).data)

    @extend_schema(tags=["admin doctors"], request=InviteInput, responses={201: StaffDoctorOutput, **error_responses(400, 401, 403, 409)})
    def post(self, request):
        data = valid_input(InviteInput, request.data)
        doctor = services.doctor_invite(by=request.user, request=request._request, **data)
        return Response(StaffDoctorOutput(doctor, context={"request": request}).data, status=status.HTTP_201_CREATED)


def _staff_doctor(doctor_id) -> DoctorProfile:
    try:
        return (
            DoctorProfile.objects.select_related("user", "primary_specialization")
            .prefetch_related("languages", "secondary_specializations", "education", "certifications", "positions", "services", "verification_events", "documents")
            .get(public_id=doctor_id)
        )
    except DoctorProfile.DoesNotExist as exc:
        raise ApplicationError("DOC_001") from exc


class StaffDoctorDetailView(APIView):
    permission_classes = [DOCTOR_VERIFICATION]

    @extend_schema(tags=["admin doctors"], responses={200: StaffDoctorOutput, **error_responses(401, 403, 404)})
    def get(self, request, doctor_id):
        return Response(StaffDoctorOutput(_staff_doctor(doctor_id), context={"request": request}).data)


class StaffDoctorTransitionView(APIView):
    permission_classes = [DOCTOR_VERIFICATION]

    @extend_schema(tags=["admin doctors"], request=TransitionInput, responses={200: StaffDoctorOutput, **error_responses(400, 401, 403, 404, 409)})
    def post(self, request, doctor_id):
        doctor = _staff_doctor(doctor_id)
        data = valid_input(TransitionInput, request.data)
        services.doctor_transition(doctor=doctor, to_status=data["to_status"], by=request.user, reason=data["reason"], request=request._request)
        return Response(StaffDoctorOutput(_staff_doctor(doctor_id), context={"request": request}).data)


class StaffDoctorInvitationView(APIView):
    permission_classes = [DOCTOR_VERIFICATION]

    @extend_schema(tags=["admin doctors"], request=None, responses={202: None, **error_responses(400, 401, 403, 404, 409)})
    def post(self, request, doctor_id):
        doctor = _staff_doctor(doctor_id)
        if doctor.user.has_usable_password():
            raise ApplicationError("DOC_008", gettext("This doctor has already set a password."))
        services.invitation_send(doctor=doctor)
        return Response(status=status.HTTP_202_ACCEPTED)
