from django.conf import settings
from django.utils.functional import SimpleLazyObject

from medimeet.core.notifications.announcements import announcements_for
from medimeet.core.platform import site_notice_or_default


def site(request):
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    return {
        # Evaluated only when a template shows them (base.html's banner): one query.
        "announcements": SimpleLazyObject(lambda: list(announcements_for(user=user))) if signed_in else [],
        # The maintenance banner (beside the announcements) and the footer's support contact:
        # platform settings staff edit in the admin (medimeet/core/platform.py), one query.
        "site_notice": SimpleLazyObject(site_notice_or_default),
        "SITE_NAME": settings.SITE_NAME,
        "SITE_URL": settings.SITE_URL,
        "OUTBOX_ENABLED": settings.EMAIL_BACKEND == "medimeet.core.mail.OutboxEmailBackend",
        # base.html shows every time in this zone; a view may name another in page_timezone.
        "USER_TIMEZONE": user.timezone if user is not None and user.is_authenticated else "UTC",
    }
