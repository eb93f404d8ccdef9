"""django-allauth hooks: how the web sign-up, sign-in and emails fit MediMeet."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp
from django.contrib import messages
from django.http import Http404, HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from medimeet.core.audit import audit_record
from medimeet.core.notifications.services import email_with_html

# allauth's email templates → our event catalogue (anything else is an account notice).
ALLAUTH_EVENTS = {
    "account/email/email_confirmation_signup": "account.email_verification",
    "account/email/email_confirmation": "account.email_verification",
    "account/email/password_reset_key": "account.password_reset",
}


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """Render with allauth's templates in the recipient's language and zone, then deliver
        through the notification layer (logged, after commit, by Celery, with retries)."""
        from allauth.core import context as allauth_context
        from django.contrib.sites.shortcuts import get_current_site

        from medimeet.core.notifications.rendering import recipient_locale

        from .models import User

        request = allauth_context.request
        user = context.get("user") if isinstance(context.get("user"), User) else User.objects.filter(email=email.lower()).first()
        ctx = {"request": request, "email": email, "current_site": get_current_site(request), **context}
        with recipient_locale(user):
            message = self.render_mail(template_prefix, email, ctx)
        html = next((content for content, mimetype in getattr(message, "alternatives", []) if mimetype == "text/html"), None)
        event = ALLAUTH_EVENTS.get(template_prefix, "account.notice")
        email_with_html(user=user, to=email, event=event, subject=message.subject, text_body=message.body, html_body=html)

    def save_user(self, request: HttpRequest, user, form, commit: bool = True):
        from .models import PatientProfile, User

        user = super().save_user(request, user, form, commit=False)
        user.role = User.Role.PATIENT
        if commit:
            user.save()
            PatientProfile.objects.get_or_create(user=user)
            audit_record(action="account.registered", actor=user, target=user, subject_user=user, request=request, metadata={"channel": "web"})
        return user

    def pre_login(self, request: HttpRequest, user, **kwargs):
        if getattr(user, "is_blocked", False):
            audit_record(action="auth.login_refused_blocked", subject_user=user, request=request, metadata={"channel": "web"})
            messages.error(request, _("This account is blocked. Contact support if you think this is a mistake."))
            from allauth.account.internal.stagekit import clear_login

            clear_login(request)
            return redirect(reverse("account_login"))
        return super().pre_login(request, user, **kwargs)

    def login(self, request: HttpRequest, user) -> None:
        super().login(request, user)
        from .middleware import session_mark_authenticated

        session_mark_authenticated(request)
        from .services import login_new_device_alert

        login_new_device_alert(user=user, request=request)
        audit_record(action="auth.login", actor=user, target=user, subject_user=user, request=request, metadata={"channel": "web"})

    def authentication_failed(self, request: HttpRequest, **credentials) -> None:
        audit_record(action="auth.login_failed", request=request, metadata={"channel": "web"})

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        if getattr(request.user, "role", None) == "doctor" and hasattr(request.user, "doctor_profile"):
            return reverse("doctors:portal")
        return reverse("accounts:dashboard")


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def get_app(self, request: HttpRequest, provider, client_id=None):
        """A provider without keys in the environment (GOOGLE_CLIENT_ID, ...) is not offered; its
        login URLs answer 404 rather than 500 (allauth raises ``SocialApp.DoesNotExist``; what
        allauth itself catches still catches it)."""
        try:
            return super().get_app(request, provider, client_id=client_id)
        except SocialApp.DoesNotExist:
            raise ProviderNotConfigured(f"{provider} sign-in is not configured") from None

    def save_user(self, request: HttpRequest, sociallogin, form=None):
        from .models import PatientProfile

        user = super().save_user(request, sociallogin, form)
        PatientProfile.objects.get_or_create(user=user)
        return user


class ProviderNotConfigured(SocialApp.DoesNotExist, Http404):
    """Both the ``SocialApp.DoesNotExist`` allauth expects and a 404 for Django."""
