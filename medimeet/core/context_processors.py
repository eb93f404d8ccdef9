from django.conf import settings


def site(request):
    user = getattr(request, "user", None)
    return {
        "SITE_NAME": settings.SITE_NAME,
        "SITE_URL": settings.SITE_URL,
        "OUTBOX_ENABLED": settings.EMAIL_BACKEND == "medimeet.core.mail.OutboxEmailBackend",
        # base.html shows every time in this zone; a view may name another in page_timezone.
        "USER_TIMEZONE": user.timezone if user is not None and user.is_authenticated else "UTC",
    }
