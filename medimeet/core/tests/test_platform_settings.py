"""Platform settings in the admin (django-constance; medimeet/core/platform.py): the maintenance
banner and the support contact everywhere they are shown, and the admin form refusing values
the code could not use."""

from __future__ import annotations

import pytest
from constance import config
from constance.forms import ConstanceForm
from constance.test import override_config
from constance.utils import get_values
from django.test import Client, RequestFactory

from accounts.tests.factories import UserFactory, staff_member
from medimeet.core import platform
from medimeet.core.notifications.catalogue import EVENTS
from medimeet.core.notifications.rendering import render_email

pytestmark = pytest.mark.django_db

BANNER = "Payments are paused on Sunday 02:00–03:00 UTC for maintenance."


@pytest.mark.parametrize("signed_in", [False, True])
def test_the_maintenance_banner_shows_on_every_page_only_while_switched_on(client, signed_in):
    if signed_in:
        client.force_login(UserFactory())
    pages = ["/", "/doctors/", "/blog/"] if not signed_in else ["/account/", "/doctors/", "/notifications/"]

    with override_config(MAINTENANCE_BANNER_TEXT=BANNER):
        off = [client.get(url, follow=True).content.decode() for url in pages]
        with override_config(MAINTENANCE_BANNER_ENABLED=True):
            on = [client.get(url, follow=True).content.decode() for url in pages]

    assert all("data-maintenance" not in page and BANNER not in page for page in off)
    assert all("data-maintenance" in page and BANNER in page for page in on)


def test_an_empty_banner_is_not_shown_even_when_switched_on(client):
    with override_config(MAINTENANCE_BANNER_ENABLED=True, MAINTENANCE_BANNER_TEXT="  "):
        page = client.get("/").content.decode()

    assert "data-maintenance" not in page


def test_the_support_contact_is_in_the_footer_the_emails_and_the_error_pages(client):
    user = UserFactory()

    with override_config(SUPPORT_EMAIL="help@medimeet.example", SUPPORT_PHONE="+91 80 1234 5678"):
        footer = client.get("/").content.decode()
        not_found = client.get("/no-such-page/").content.decode()
        email = render_email(event=EVENTS["appointment.update"], user=user, context={"appointment": None, "change": "confirmed"}, template="email/announcement")
        from medimeet.core.views import server_error

        server = server_error(RequestFactory().get("/")).content.decode()

    for page in (footer, not_found, server):
        assert 'href="mailto:help@medimeet.example"' in page and 'href="tel:+918012345678"' in page
    assert "help@medimeet.example · +91 80 1234 5678" in email.text and "help@medimeet.example" in email.html


def test_the_error_page_still_renders_its_support_contact_when_the_database_is_gone(monkeypatch):
    from medimeet.core.views import server_error

    def unavailable(keys):
        raise ConnectionError("database down")

    monkeypatch.setattr(platform, "get_values_for_keys", unavailable)

    page = server_error(RequestFactory().get("/")).content.decode()

    assert 'href="mailto:support@medimeet.local"' in page


# --- The admin form ----------------------------------------------------------------------------


def admin_client() -> Client:
    staff = staff_member(is_superuser=True)
    client = Client()
    client.force_login(staff)
    return client


def form_data(**changes) -> dict:
    values = get_values()
    data = {name: value for name, value in values.items() if not isinstance(value, bool)}
    data.update({name: "on" for name, value in values.items() if value is True})
    data["version"] = ConstanceForm(initial=values).initial["version"]
    data.update(changes)
    return {name: value for name, value in data.items() if value is not False}


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("BOOKING_HOLD_MINUTES", "0"),
        ("CANCELLATION_POLICY", "24:150"),
        ("CANCELLATION_POLICY", "soon"),
        ("REMINDER_OFFSETS", "3 weeks"),
        ("PAYMENT_CURRENCIES", "USD, XYZ"),
        ("PAYMENT_GATEWAY_ROUTES", "IN=paypal, *=stripe"),
        ("PAYMENT_GATEWAY_ROUTES", "IN=razorpay"),  # nothing for everyone else
        ("TAX_RULES", "IN=GST:180"),
        ("SUPPORT_EMAIL", "not an address"),
        ("SUPPORT_PHONE", "call us"),
    ],
)
def test_the_admin_refuses_values_the_platform_could_not_use_and_keeps_the_old_one(name, bad):
    before = getattr(config, name)

    response = admin_client().post("/admin/constance/config/", form_data(**{name: bad}))

    assert response.status_code == 200  # the form again, with the error next to the field
    assert response.context["form"].errors.get(name)
    assert getattr(config, name) == before


def test_staff_change_settings_in_the_admin_and_they_apply_at_once(client):
    admin = admin_client()
    page = admin.get("/admin/constance/config/").content.decode()

    response = admin.post(
        "/admin/constance/config/",
        form_data(BOOKING_HOLD_MINUTES="15", TAX_RULES="IN=GST:18, GB=VAT:20", MAINTENANCE_BANNER_ENABLED="on", MAINTENANCE_BANNER_TEXT=BANNER),
    )

    assert all(fieldset in page for fieldset in ("Booking", "Reminders", "Payments", "Site"))
    assert response.status_code == 302
    assert platform.hold_minutes() == 15
    assert platform.tax_rule("gb") == platform.TaxRule(name="VAT", rate=platform.Decimal("20"))
    assert BANNER in client.get("/").content.decode()


def test_staff_without_the_permission_only_read_the_settings():
    from django.contrib.auth.models import Permission

    staff = staff_member()
    staff.user_permissions.add(Permission.objects.get(codename="view_config"))
    client = Client()
    client.force_login(staff)

    page = client.get("/admin/constance/config/")
    client.post("/admin/constance/config/", form_data(BOOKING_HOLD_MINUTES="60"))

    assert page.status_code == 200
    assert config.BOOKING_HOLD_MINUTES == 10


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [
        (platform.cancellation_policy_parse, "0:0, 24:100; 2:50", [{"min_hours": 24, "refund_percent": 100}, {"min_hours": 2, "refund_percent": 50}, {"min_hours": 0, "refund_percent": 0}]),
        (platform.reminder_offsets_parse, "1h, 2d, 1h", [2880, 60]),
        (platform.currencies_parse, "usd, INR, usd", ["USD", "INR"]),
        (platform.gateway_routes_parse, "in=Razorpay, *=stripe", {"IN": "razorpay", "*": "stripe"}),
        (platform.tax_rules_parse, "IN=GST:18, gb = VAT : 17.5%", {"IN": platform.TaxRule("GST", platform.Decimal("18")), "GB": platform.TaxRule("VAT", platform.Decimal("17.5"))}),
        (platform.tax_rules_parse, "", {}),
    ],
)
def test_values_are_read_the_way_staff_write_them(parse, text, value):
    assert parse(text) == value
