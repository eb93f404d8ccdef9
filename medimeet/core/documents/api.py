"""API: ``POST /api/v1/documents/verify/`` (multipart, field ``file``): the verdict on a PDF's signature."""

from __future__ import annotations

from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from medimeet.core.api import ScopedRateThrottle, error_responses
from medimeet.core.errors import ApplicationError
from medimeet.core.pdf import SignatureCheck

from .verdicts import upload_check, verdict_message


class SignedDocumentOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["receipt", "prescription"])
    title = serializers.CharField()
    code = serializers.CharField(help_text="Verification code, as on the document.")
    verify_url = serializers.CharField(help_text="The page that shows what MediMeet recorded for this code.")
    current = serializers.BooleanField(help_text="False for a prescription the doctor has since replaced.")


class DocumentVerdictOutput(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=[SignatureCheck.VALID, SignatureCheck.ALTERED, SignatureCheck.NOT_OURS, SignatureCheck.UNKNOWN_DOCUMENT])
    valid = serializers.BooleanField()
    intact = serializers.BooleanField(help_text="The signed bytes are unchanged and the signature over them is sound.")
    unchanged = serializers.BooleanField(help_text="Nothing was added to the file after signing.")
    signed_by_medimeet = serializers.BooleanField(source="ours")
    signer = serializers.CharField(help_text="Common name and organisation of the signing certificate.")
    signed_at = serializers.DateTimeField(allow_null=True)
    document = SignedDocumentOutput(allow_null=True)
    message = serializers.SerializerMethodField()

    def get_message(self, check: SignatureCheck) -> str:
        return verdict_message(check)


class DocumentVerifyView(APIView):
    """Anyone may check a document; each check parses an uploaded PDF, so it is throttled."""

    permission_classes = [AllowAny]
    parser_classes = [MultiPartParser]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "document_verify"

    @extend_schema(
        tags=["documents"],
        request={"multipart/form-data": inline_serializer("DocumentVerifyInput", {"file": serializers.FileField(help_text="The PDF (receipt or prescription).")})},
        responses={200: DocumentVerdictOutput, **error_responses(400, 413, 429)},
    )
    def post(self, request):
        """The verdict on a receipt's or prescription's digital signature: valid (and which
        document), altered after signing, or not signed by MediMeet. A file that is not a PDF
        (SIGN_001), too large (SIGN_002) or unsigned (SIGN_003) is refused."""
        upload = request.FILES.get("file")
        if upload is None:
            raise ApplicationError("REQ_001", fields={"file": [gettext("Attach the PDF file.")]})
        check = upload_check(upload)
        return Response(DocumentVerdictOutput(check).data)
