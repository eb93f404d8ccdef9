"""Pages: a person's notification history and preferences, the one-click unsubscribe, and
the staff outbox of the embedded default."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from medimeet.core.errors import ApplicationError

from . import announcements, phone, selectors, services
from .catalogue import CATEGORIES, EVENTS
from .forms import PreferencesForm, offsets_label


@login_required
def history(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.notifications_for(user=request.user), 20).get_page(request.GET.get("page"))
    for notification in page.object_list:
        event = EVENTS.get(notification.event)
        notification.category_label = CATEGORIES[event.category].label if event else ""
    return render(request, "notifications/history.html", {"page_obj": page})


@login_required
@require_POST
def announcement_dismiss(request: HttpRequest, announcement_id: int) -> HttpResponse:
    """Hide a banner for good (for this person); back to the page it was on."""
    announcements.announcement_dismiss(announcement_id=announcement_id, user=request.user)
    back = request.POST.get("next", "")
    return redirect(back if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()) else "/")


@login_required
@require_POST
def sms_number(request: HttpRequest) -> HttpResponse:
    """Text messages: send a code to a number, confirm it, or remove the number."""
    action = request.POST.get("action")
    try:
        if action == "send":
            phone.sms_number_start(user=request.user, number=request.POST.get("number", ""), request=request)
            messages.success(request, _("We texted you a code. Type it below to confirm the number."))
        elif action == "confirm":
            phone.sms_number_confirm(user=request.user, code=request.POST.get("code", ""), request=request)
            messages.success(request, _("Your phone number is confirmed. You can now choose text messages for reminders."))
        elif action == "remove":
            phone.sms_number_remove(user=request.user, request=request)
            messages.success(request, _("We will not text you any more."))
    except ApplicationError as error:
        messages.error(request, next(iter(error.fields.values()), [error.message])[0])
    return redirect(reverse("notifications:preferences") + "#sms-title")


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    preference = services.preferences_for(request.user)
    initial = {"reminder_offsets": offsets_label(preference.reminder_offsets), "language": request.user.language}
    for name, category in CATEGORIES.items():
        initial[f"channels_{name}"] = [c for c in preference.channels.get(name, category.default_channels) if not (category.essential and c == "email")]
    form = PreferencesForm(request.POST or None, initial=initial, sms_available=bool(preference.verified_sms_number))
    if request.method == "POST" and form.is_valid():
        services.preferences_update(user=request.user, channels=form.channels(), reminder_offsets=form.cleaned_data["reminder_offsets"], language=form.cleaned_data["language"])
        translation.activate(form.cleaned_data["language"])  # the confirmation in the language just chosen
        messages.success(request, _("Your notification preferences are saved."))
        response = redirect("notifications:preferences")
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, form.cleaned_data["language"], samesite="Lax", secure=settings.SESSION_COOKIE_SECURE)
        return response
    essential = [c for c in CATEGORIES.values() if c.essential]
    sms = {
        "number": phone.masked(preference.sms_number),
        "verified": bool(preference.verified_sms_number),
        "awaiting_code": bool(preference.sms_code_hash),
    }
    return render(request, "notifications/preferences.html", {"form": form, "essential": essential, "sms": sms})


@csrf_exempt  # the signed token is the credential; mail clients POST RFC 8058 one-click without a CSRF token
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "POST":
        try:
            _user, category = services.unsubscribe(token=token)
        except ApplicationError:
            return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=400)
        return render(request, "notifications/unsubscribe.html", {"done": True, "category": category})
    return render(request, "notifications/unsubscribe.html", {"token": token})


# --- Staff outbox (embedded default: the OutboxEmailBackend's .eml files) ---------------------


def _outbox_files() -> list[Path]:
    directory = Path(settings.EMAIL_OUTBOX_DIR)
    return sorted(directory.glob("*.eml"), reverse=True) if directory.is_dir() else []


def _parse(path: Path):
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())


@staff_member_required
def outbox(request: HttpRequest) -> HttpResponse:
    page = Paginator(_outbox_files(), 50).get_page(request.GET.get("page"))
    rows = []
    for path in page.object_list:
        message = _parse(path)
        rows.append({"name": path.name, "to": message["To"], "subject": message["Subject"], "date": message["Date"], "attachments": [part.get_filename() for part in message.iter_attachments()]})
    return render(request, "notifications/outbox.html", {"page_obj": page, "rows": rows, "admin_url": reverse("admin:core_notification_changelist")})


@staff_member_required
def outbox_message(request: HttpRequest, name: str) -> HttpResponse:
    path = Path(settings.EMAIL_OUTBOX_DIR) / name
    if "/" in name or not name.endswith(".eml") or not path.is_file():
        raise Http404
    message = _parse(path)
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    if request.GET.get("part") == "html" and html is not None:
        # The message's own HTML in a sandboxed frame: no scripts, no same-origin access.
        response = HttpResponse(html.get_content(), content_type="text/html; charset=utf-8")
        response["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
        response["X-Frame-Options"] = "SAMEORIGIN"
        return response
    context = {
        "name": name,
        "message": message,
        "headers": [(key, message[key]) for key in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe")],
        "text": text.get_content() if text is not None else "",
        "has_html": html is not None,
        "attachments": [(part.get_filename(), part.get_content_type(), len(part.get_payload(decode=True) or b"")) for part in message.iter_attachments()],
    }
    return render(request, "notifications/outbox_message.html", context)
