"""Staff pages of the platform in a browser: the health page and the platform settings form,
with the banner that a setting turns on. Writes docs/screenshots/step9-health.png and
step9-settings.png."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from constance import config
from django.test import Client
from playwright.sync_api import Page, expect

from accounts.tests.factories import StaffFactory
from appointments.tests.test_e2e import shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def signed_in_staff(page: Page, base_url: str) -> None:
    staff = StaffFactory(email="ops@medimeet.local", first_name="Omar", last_name="Singh", is_superuser=True)
    Authenticator.objects.create(user=staff, type=Authenticator.Type.TOTP, data={"secret": "unused"})
    client = Client()
    client.force_login(staff)
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base_url}])


def test_staff_read_the_health_page_and_edit_the_platform_settings(live_server, page: Page, console_errors):
    signed_in_staff(page, live_server.url)

    page.goto(f"{live_server.url}/admin/system-health/")
    expect(page.get_by_role("heading", name="System health")).to_be_visible()
    expect(page.locator("[data-check=database]")).to_contain_text("ok")
    shot(page, "health", step=9)

    # As the admin form stores them (config.NAME would hand out awaitables here: Playwright keeps
    # an event loop running in this thread).
    config._backend.set("MAINTENANCE_BANNER_ENABLED", True)
    config._backend.set("MAINTENANCE_BANNER_TEXT", "Payments are paused on Sunday 02:00–03:00 UTC for maintenance.")
    page.goto(f"{live_server.url}/admin/constance/config/")
    expect(page.get_by_text("Minutes a slot is held", exact=False)).to_be_visible()
    shot(page, "settings", step=9)
    page.goto(f"{live_server.url}/doctors/")
    expect(page.locator("[data-maintenance]")).to_contain_text("Payments are paused")

    assert console_errors == []
