"""The application error type and the API error envelope.

Services raise ``ApplicationError`` (or a subclass) with a stable code; one DRF exception
handler turns it, and every DRF/Django error, into

    {"error": {"code": "AUTH_002", "message": "...", "fields": {...}}}

Codes are listed once here so that clients and docs/api.md have one catalogue.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger("medimeet.errors")

StrOrPromise = str | Promise

# code: (HTTP status, default message). The messages are translated lazily: a code stays the same
# in every language, its message follows the request's (Accept-Language, or the account's language).
ERROR_CODES: dict[str, tuple[int, StrOrPromise]] = {
    "AUTH_001": (401, _("Authentication credentials were not provided.")),
    "AUTH_002": (401, _("Invalid email or password.")),
    "AUTH_003": (401, _("The token has expired.")),
    "AUTH_004": (401, _("The token is invalid or has been revoked.")),
    "AUTH_005": (403, _("This account is blocked.")),
    "AUTH_006": (403, _("The email address has not been verified yet.")),
    "AUTH_007": (429, _("Too many sign-in attempts for this account or from this network. Try again later.")),
    "AUTH_008": (401, _("The two-factor authentication code is not valid.")),
    "AUTH_009": (403, _("Two-factor authentication must be set up for this account first.")),
    "AUTH_010": (403, _("You do not have permission to perform this action.")),
    "AUTH_011": (400, _("The link or code is invalid or has expired.")),
    "AUTH_012": (400, _("The current password is not correct.")),
    # A browser session (cookie) without the CSRF token: DRF's SessionAuthentication refuses it.
    "SEC_001": (403, _("The request came with your browser session but without its CSRF token. Reload the page and try again.")),
    "USER_001": (404, _("User not found.")),
    "USER_002": (409, _("An account with this email address already exists.")),
    "USER_003": (400, _("The uploaded picture is not acceptable.")),
    "USER_004": (404, _("Session not found.")),
    "DOC_001": (404, _("Doctor not found.")),
    "DOC_002": (404, _("Specialization not found.")),
    "DOC_003": (400, _("The licence details are not valid.")),
    "DOC_004": (400, _("The document is not acceptable.")),
    "DOC_005": (409, _("The application cannot move to that state.")),
    "DOC_006": (409, _("The application cannot be approved yet.")),
    "DOC_007": (400, _("The service is not valid.")),
    "DOC_008": (409, _("The invitation cannot be sent.")),
    "DOC_009": (403, _("This action needs a doctor account.")),
    "APPT_001": (400, _("The appointment request is not valid.")),
    "APPT_002": (409, _("That slot is not available.")),
    "APPT_003": (409, _("The hold on this slot has expired.")),
    "APPT_004": (409, _("The appointment cannot change that way.")),
    "APPT_005": (409, _("You already have an appointment at that time.")),
    "APPT_006": (404, _("Appointment not found.")),
    "APPT_007": (409, _("Rescheduling is no longer allowed for this appointment.")),
    "APPT_008": (409, _("You are already on this doctor's waitlist.")),
    "APPT_009": (409, _("This rebooking offer is no longer open.")),
    "APPT_010": (409, _("No follow-up has been recommended for this appointment.")),
    "APPT_011": (403, _("Clinical notes are only for the appointment's doctor and patient.")),
    "PAY_001": (402, _("The payment failed.")),
    "PAY_002": (400, _("The payment verification is not valid.")),
    "PAY_003": (409, _("This refund is not allowed.")),
    "PAY_004": (409, _("This appointment is already paid for or costs nothing.")),
    "PAY_005": (400, _("This currency is not supported for payments.")),
    "PAY_006": (409, _("The amount paid does not match the price; the payment is held for review.")),
    "PAY_007": (429, _("Too many failed payment attempts. Try again later.")),
    "PAY_008": (503, _("The payment provider could not be reached. Retry with the same Idempotency-Key.")),
    "PAY_009": (404, _("Payment not found.")),
    "PAY_010": (409, _("This appointment is not waiting for a payment.")),
    "PAY_011": (404, _("Refund not found.")),
    "PAY_012": (403, _("This refund needs approval by another finance approver.")),
    "SUB_001": (404, _("Care plan not found.")),
    "SUB_002": (404, _("Subscription not found.")),
    "SUB_003": (409, _("You already have a care plan. Change or cancel it instead.")),
    "SUB_004": (409, _("The subscription cannot change that way now.")),
    "SUB_005": (400, _("You can only switch to a plan in the same currency and billing period.")),
    "SUB_006": (409, _("This care plan cannot be subscribed to right now.")),
    "CONS_001": (404, _("Consultation not found.")),
    "CONS_002": (409, _("This appointment has no consultation room.")),
    "CONS_003": (409, _("The consultation room has closed.")),
    "CONS_004": (409, _("This consultation already has a guest: withdraw that invitation first.")),
    "CONS_005": (404, _("This invitation link is not valid.")),
    "CONS_006": (410, _("This invitation can no longer be used.")),
    # Recording
    "CONS_010": (404, _("Recording not found.")),
    "CONS_011": (403, _("Only the doctor and the patient admitted to the call can record it.")),
    "CONS_012": (409, _("Recording needs the consent of both the doctor and the patient.")),
    "CONS_013": (409, _("The consultation is not in progress.")),
    "CONS_014": (409, _("A recording is already running in this consultation.")),
    "CONS_015": (409, _("This recording has ended and accepts no more chunks.")),
    "CONS_016": (413, _("The chunk or the recording is too large.")),
    "CONS_017": (400, _("The recording chunk is not valid.")),
    "CONS_018": (409, _("A chunk with this number was already stored with different content.")),
    "CONS_019": (409, _("The recording is not finished yet.")),
    "CONS_020": (410, _("The recording has been deleted under the retention policy.")),
    "CONS_021": (403, _("Only the participant who started the recording uploads to it and finishes it.")),
    "CONS_022": (410, _("The share link has expired.")),
    # Reviews and ratings
    "REV_001": (404, _("Appointment not found.")),
    "REV_002": (409, _("Only a completed consultation can be reviewed.")),
    "REV_003": (409, _("This consultation has already been reviewed.")),
    "REV_004": (409, _("The time to review this consultation has passed.")),
    "REV_005": (400, _("The review is not valid.")),
    "REV_006": (400, _("The photo is not acceptable.")),
    "REV_007": (404, _("Review not found.")),
    "REV_008": (409, _("This review can no longer be edited.")),
    "REV_009": (409, _("This review cannot be appealed.")),
    "REV_010": (403, _("Only the reviewed doctor can reply to a review.")),
    "REV_011": (409, _("You have already reported this review.")),
    "REV_012": (409, _("You cannot report or vote on your own review.")),
    "REV_013": (400, _("The reply cannot be published as written.")),
    "REV_014": (409, _("The review is not in a state this decision applies to.")),
    "NTF_001": (400, _("The phone number is not valid.")),
    "NTF_002": (429, _("A code was just sent. Wait a moment before asking again.")),
    "NTF_003": (400, _("The code is not right or has expired.")),
    "NTF_004": (429, _("Too many wrong codes. Ask for a new one.")),
    "NTF_005": (403, _("The delivery report's signature is not valid.")),
    # Medical records
    "REC_001": (404, _("Record not found.")),
    "REC_002": (403, _("Your access to this record does not cover this.")),
    "REC_003": (400, _("The record entry is not valid.")),
    "REC_004": (409, _("This entry or document has been deleted.")),
    "REC_005": (400, _("The access grant is not valid.")),
    "REC_006": (410, _("This download link has expired.")),
    "REC_007": (409, _("This grant has already been revoked.")),
    "REC_008": (403, _("Emergency access is for doctors, to a patient's record.")),
    "REC_009": (409, _("This emergency access has already been reviewed.")),
    "REC_010": (400, _("The document is not acceptable.")),
    "REC_011": (413, _("The document is too large.")),
    "REC_012": (503, _("The malware scanner could not be reached; try again later.")),
    "REC_013": (400, _("The document was refused by the malware scan.")),
    "REC_014": (409, _("You already have an erasure request waiting for a decision.")),
    "REC_015": (409, _("This erasure request has already been decided.")),
    "REC_016": (409, _("An issued prescription cannot be changed; issue a new one that supersedes it.")),
    "REC_017": (400, _("The prescription is not valid.")),
    "CMS_001": (404, _("Post not found.")),
    "CMS_002": (404, _("Page not found.")),
    "CMS_003": (409, _("The content cannot move to that state.")),
    "CMS_004": (403, _("Only content editors can schedule, publish or unpublish.")),
    "CMS_005": (403, _("Only the author or a content editor can submit this draft for review.")),
    "CMS_006": (400, _("The image is not acceptable.")),
    # Signed documents: the public verifier of receipt and prescription PDFs (medimeet/core/pdf.py).
    "SIGN_001": (400, _("The file is not a PDF document.")),
    "SIGN_002": (413, _("The file is too large to check.")),
    "SIGN_003": (400, _("This PDF has no digital signature.")),
    # Staff dashboard and reports
    "DASH_001": (400, _("Unknown period: choose today, 7d, 30d, 90d or custom.")),
    "DASH_002": (400, _("The dates of the custom period are not valid.")),
    "DASH_003": (400, _("Unknown interval: choose day, week or month.")),
    "DASH_004": (400, _("Unknown report metric.")),
    "DASH_005": (400, _("Unknown grouping.")),
    "DASH_006": (400, _("This metric cannot be grouped that way.")),
    "DASH_007": (400, _("Unknown export format: choose csv or json.")),
    # Feature flags and platform settings (medimeet/core/flags.py, platform.py).
    "FEAT_001": (403, _("This feature is turned off.")),
    "REQ_001": (400, _("The request is not valid.")),
    "REQ_002": (429, _("Too many requests. Try again later.")),
    "REQ_003": (405, _("Method not allowed.")),
    "REQ_004": (404, _("Not found.")),
    "REQ_005": (415, _("Unsupported media type.")),
    "REQ_006": (400, _("Malformed request body.")),
    "REQ_007": (406, _("Not acceptable.")),
    "SERVER_001": (500, _("An unexpected error occurred. It has been logged.")),
    "SERVER_002": (503, _("The service is briefly unavailable. Nothing was changed that you were not told about; try again in a moment.")),
}

OUTAGE_RETRY_AFTER_SECONDS = 5


def is_outage(exc: BaseException | None) -> bool:
    """Whether ``exc`` means a backing service (PostgreSQL, Redis, the task broker) could not be
    reached: the request gets 503 SERVER_002 with Retry-After, not a 500. The transaction it was
    in was rolled back by the database (docs/testing.md, Fault injection)."""
    if exc is None:
        return False
    from django.db import InterfaceError, OperationalError
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import RedisError

    from .cache import CacheUnavailable

    return isinstance(exc, OperationalError | InterfaceError | CacheUnavailable | RedisError | BrokerError)

CANNOT_COMPLETE = _("The request cannot be completed.")


class ApplicationError(Exception):
    """A business-rule failure with a stable code, raised by services and turned into a 4xx."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        fields: dict[str, list[str]] | None = None,
        status_code: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        default_status, default_message = ERROR_CODES.get(code, (400, CANNOT_COMPLETE))
        self.code = code
        self.message = str(message or default_message)  # in the language active where it is raised
        self.fields = fields or {}
        self.status_code = status_code or default_status
        self.extra = extra or {}
        super().__init__(f"{code}: {self.message}")


def error_payload(code: str, message: StrOrPromise, fields: dict | None = None, **extra: Any) -> dict:
    return {"error": {"code": code, "message": str(message), "fields": fields or {}, **extra}}


def _field_messages(detail: Any) -> dict[str, list[str]]:
    """Flatten DRF's nested error detail into {"field": ["message", ...]} with dotted paths."""
    out: dict[str, list[str]] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(sub, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            if all(not isinstance(v, (dict, list)) for v in value):
                out.setdefault(path or "non_field_errors", []).extend(str(v) for v in value)
            else:
                for index, sub in enumerate(value):
                    walk(sub, f"{path}.{index}" if path else str(index))
        else:
            out.setdefault(path or "non_field_errors", []).append(str(value))

    walk(detail, "")
    return out


def _response(code: str, message: str | None = None, fields: dict | None = None, status_code: int | None = None, headers: dict | None = None, **extra: Any) -> Response:
    default_status, default_message = ERROR_CODES[code]
    response = Response(error_payload(code, message or default_message, fields, **extra), status=status_code or default_status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ApplicationError):
        response = Response(error_payload(exc.code, exc.message, exc.fields, **exc.extra), status=exc.status_code)
        if exc.status_code == 429 and "retry_after" in exc.extra:
            response["Retry-After"] = str(exc.extra["retry_after"])
        return response
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return _response("REQ_001", fields=fields)
    if isinstance(exc, Http404):
        return _response("REQ_004")
    if isinstance(exc, DjangoPermissionDenied):
        return _response("AUTH_010")
    if isinstance(exc, drf_exceptions.ValidationError):
        return _response("REQ_001", fields=_field_messages(exc.detail))
    if isinstance(exc, drf_exceptions.NotAuthenticated):
        return _response("AUTH_001", headers=_auth_headers(exc, context))
    if isinstance(exc, drf_exceptions.AuthenticationFailed):
        code = getattr(exc, "medimeet_code", "AUTH_004")
        return _response(code, str(exc.detail) if code != "AUTH_004" else None, headers=_auth_headers(exc, context))
    if isinstance(exc, drf_exceptions.PermissionDenied):
        # DRF's SessionAuthentication raises PermissionDenied("CSRF Failed: ...").
        return _response("SEC_001" if str(exc.detail).startswith("CSRF Failed") else "AUTH_010")
    if isinstance(exc, drf_exceptions.NotFound):
        return _response("REQ_004")
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return _response("REQ_003", str(exc.detail))
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return _response("REQ_005", str(exc.detail))
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return _response("REQ_007")
    if isinstance(exc, drf_exceptions.ParseError):
        return _response("REQ_006", str(exc.detail))
    if isinstance(exc, drf_exceptions.Throttled):
        wait = int(exc.wait) if exc.wait is not None else None
        headers = {"Retry-After": str(wait)} if wait is not None else {}
        return _response("REQ_002", fields=None, headers=headers, retry_after=wait)
    if is_outage(exc):
        logger.warning("service unavailable", extra={"code": type(exc).__name__})
        return _response("SERVER_002", headers={"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)})
    response = drf_exception_handler(exc, context)
    if response is not None:  # any other APIException: keep its status, wrap its detail
        response.data = error_payload("REQ_001", CANNOT_COMPLETE, _field_messages(response.data))
        return response
    logger.exception("unhandled API error", extra={"view": context.get("view").__class__.__name__ if context.get("view") else ""})
    return Response(error_payload("SERVER_001", ERROR_CODES["SERVER_001"][1]), status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def _auth_headers(exc: drf_exceptions.APIException, context: dict) -> dict:
    request = context.get("request")
    view = context.get("view")
    if request is not None and view is not None:
        header = view.get_authenticate_header(request)
        if header:
            return {"WWW-Authenticate": header}
    return {}


def form_add_service_errors(form, exc: ApplicationError, names: dict[str, str] | None = None) -> None:
    """Show a service's ApplicationError on a page form: each field message next to its field
    (``names`` maps service field names to form field names), the rest on top of the form."""
    names = names or {}
    for name, field_messages in exc.fields.items():
        target = names.get(name, name)
        for message in field_messages if isinstance(field_messages, list) else [field_messages]:
            form.add_error(target if target in form.fields else None, message)
    if not exc.fields:
        form.add_error(None, exc.message)
