from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.decorators.cache import cache_control
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts import urls as accounts_urls
from appointments import urls as appointments_urls
from cms import urls as cms_urls
from consultations import urls as consultations_urls
from doctors import urls as doctors_urls
from medimeet.core import health as core_health
from medimeet.core import views as core_views
from medimeet.core.dashboard import api as dashboard_api
from medimeet.core.dashboard import views as dashboard_views
from medimeet.core.documents import urls as documents_urls
from medimeet.core.flags import FlagsView
from medimeet.core.notifications import urls as notifications_urls
from payments import urls as payments_urls
from records import urls as records_urls
from reviews import urls as reviews_urls

api_v1 = [
    path("auth/", include((accounts_urls.api_patterns, "auth"))),
    path("admin/users/", include((accounts_urls.admin_api_patterns, "admin-users"))),
    path("admin/dashboard/", dashboard_api.DashboardView.as_view(), name="admin-dashboard"),
    path("admin/reports/", dashboard_api.ReportView.as_view(), name="admin-reports"),
    path("", include((doctors_urls.api_patterns, "doctors"))),
    path("", include((appointments_urls.api_patterns, "appointments"))),
    path("", include((payments_urls.api_patterns, "payments"))),
    path("", include((consultations_urls.api_patterns, "consultations"))),
    path("", include((notifications_urls.api_patterns, "notifications"))),
    path("", include((reviews_urls.api_patterns, "reviews"))),
    path("", include((records_urls.api_patterns, "records"))),
    path("", include((cms_urls.api_patterns, "cms"))),
    path("", include((documents_urls.api_patterns, "documents"))),
    path("flags/", FlagsView.as_view(), name="flags"),
    path("schema/", SpectacularAPIView.as_view(api_version="v1"), name="schema"),
    path("schema/swagger/", SpectacularSwaggerView.as_view(url_name="api-v1:schema"), name="swagger"),
    path("schema/redoc/", SpectacularRedocView.as_view(url_name="api-v1:schema"), name="redoc"),
]

urlpatterns = [
    path("", core_views.home, name="home"),
    path("health/", core_views.health, name="health"),
    path("ready/", core_views.ready, name="ready"),
    # The djangojs catalogue for static/js in the request's language; base.html loads it before
    # any page script, with the language in the query so a browser's cached copy follows a switch.
    path("jsi18n/", cache_control(max_age=3600, private=True)(JavaScriptCatalog.as_view()), name="javascript-catalog"),
    *cms_urls.root_patterns,
    path("api/v1/", include((api_v1, "api-v1"))),
    path("accounts/", include("allauth.urls")),
    path("account/", include((accounts_urls.page_patterns, "accounts"))),
    path("", include((doctors_urls.page_patterns, "doctors"))),
    path("", include((appointments_urls.page_patterns, "appointments"))),
    path("", include((payments_urls.page_patterns, "payments"))),
    path("", include((consultations_urls.page_patterns, "consultations"))),
    path("", include((notifications_urls.page_patterns, "notifications"))),
    path("", include((reviews_urls.page_patterns, "reviews"))),
    path("", include((records_urls.page_patterns, "records"))),
    path("", include((documents_urls.page_patterns, "documents"))),
    path("", include((cms_urls.page_patterns, "cms"))),
    path("admin/dashboard/", dashboard_views.dashboard_page, name="admin-dashboard"),  # inside the admin, before its catch-all
    # Staff pages inside the admin: before admin.site.urls, whose catch-all would take them.
    path("admin/system-health/", admin.site.admin_view(core_health.system_health), name="system-health"),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    # Only profile pictures and the CMS media library are public media; documents go through permission-checked views.
    # In production they are served by the storage (S3) or the proxy (docs/deployment.md).
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL + "profile-pictures/", document_root=settings.MEDIA_ROOT / "profile-pictures")
    urlpatterns += static(settings.MEDIA_URL + "cms/", document_root=settings.MEDIA_ROOT / "cms")  # the media library: public

handler404 = "medimeet.core.views.page_not_found"
handler500 = "medimeet.core.views.server_error"
