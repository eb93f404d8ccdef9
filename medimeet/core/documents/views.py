"""The public verifier page: upload a receipt or prescription PDF, read the verdict."""

from __future__ import annotations

from types import SimpleNamespace

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from medimeet.core.api import ScopedRateThrottle
from medimeet.core.errors import ERROR_CODES, ApplicationError

from .forms import DocumentVerifyForm
from .verdicts import UNSIGNED, signed_at_display, upload_check, verdict_message

THROTTLE_VIEW = SimpleNamespace(throttle_scope="document_verify")


def verify_throttled(request: HttpRequest) -> bool:
    """The API's ``document_verify`` throttle, applied to the page too (same key: user or IP)."""
    return not ScopedRateThrottle().allow_request(request, THROTTLE_VIEW)


@never_cache
def document_verify(request: HttpRequest) -> HttpResponse:
    """Public: anyone holding a MediMeet PDF checks its digital signature."""
    form = DocumentVerifyForm(request.POST, request.FILES) if request.method == "POST" else DocumentVerifyForm()
    context: dict = {"form": form}
    status = 200
    if request.method == "POST":
        if verify_throttled(request):
            form.add_error(None, ERROR_CODES["REQ_002"][1])
            return render(request, "documents/verify.html", context, status=429)
        if form.is_valid():
            try:
                check = upload_check(form.cleaned_data["file"])
            except ApplicationError as exc:
                if exc.code != "SIGN_003":
                    form.add_error("file", exc.message)
                    return render(request, "documents/verify.html", context, status=exc.status_code)
                context.update(verdict=UNSIGNED, message=verdict_message(None))
            else:
                context.update(verdict=check.verdict, check=check, message=verdict_message(check), signed_at=signed_at_display(check))
        else:
            status = 400
    return render(request, "documents/verify.html", context, status=status)
