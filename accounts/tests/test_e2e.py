"""Step 1 in a real browser: sign-up with email verification, sign-in, profile, sign-out and
password reset, driven through the server-rendered pages as a person would use them.

Emails are read from django.core.mail.outbox: test settings use the locmem backend and run
Celery tasks eagerly, so a message sent by the live server's thread lands in the same list.
The screenshots test also writes docs/screenshots/step1-*.png for reviewing the look.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.core import mail
from playwright.sync_api import Page, expect

from accounts.models import PatientProfile, User
from medimeet.core.tests.browser import expect_fits_the_window, sign_in, sign_out

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "Vivid-Harbor-2026!"
SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def link_in_last_email(pattern: str) -> str:
    match = re.search(pattern, mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(0)


def html_part(message) -> str:
    return next(content for content, mimetype in message.alternatives if mimetype == "text/html")


def expect_signed_out_navigation(page: Page) -> None:
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation.get_by_role("link", name="Sign in")).to_be_visible()
    expect(navigation.get_by_role("link", name="Create account")).to_be_visible()
    expect(navigation.get_by_role("link", name="Dashboard")).to_have_count(0)


def verified_patient(email: str, password: str, **fields) -> User:
    user = User.objects.create_user(email=email, password=password, role=User.Role.PATIENT, **fields)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    PatientProfile.objects.create(user=user)
    return user


def test_patient_signs_up_verifies_email_logs_in_edits_profile_and_logs_out(live_server, page: Page):
    # Given an anonymous visitor on the sign-up page
    page.goto(f"{live_server.url}/accounts/signup/")

    # When they create an account
    page.get_by_label("First name").fill("Amara")
    page.get_by_label("Last name").fill("Okonkwo")
    page.get_by_label("Time zone").select_option("Europe/London")
    page.get_by_label("Email", exact=True).fill("amara@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again)").fill(PASSWORD)
    page.get_by_role("button", name="Sign Up").click()

    # Then they are asked to verify their email, and the branded email carries the link
    expect(page.get_by_role("heading", level=1)).to_have_text("Verify Your Email Address")
    assert page.url == f"{live_server.url}/accounts/confirm-email/"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["amara@example.com"]
    confirm_url = link_in_last_email(r"http\S*confirm-email\S*")
    assert confirm_url.startswith(f"{live_server.url}/accounts/confirm-email/")
    assert f'href="{confirm_url}"' in html_part(mail.outbox[0])
    user = User.objects.get(email="amara@example.com")
    assert (user.first_name, user.last_name, user.timezone, user.role) == ("Amara", "Okonkwo", "Europe/London", "patient")

    # When they open the link and confirm
    page.goto(confirm_url)
    page.get_by_role("button", name="Confirm").click()

    # Then the address is verified and they can sign in, landing on their dashboard
    assert EmailAddress.objects.get(email="amara@example.com").verified is True
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    sign_in(page, live_server.url, "amara@example.com", PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/account/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Amara")

    # When they add their phone number and date of birth on the profile page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Profile").click()
    expect(page).to_have_url(f"{live_server.url}/account/profile/")
    page.get_by_label("Phone (optional)", exact=True).fill("+44 20 7946 0958")
    page.get_by_label("Date of birth (optional)").fill("1990-04-12")
    page.get_by_role("button", name="Save profile").click()

    # Then the change is confirmed, shown again and stored
    expect(page.get_by_role("alert")).to_contain_text("Your profile has been saved.")
    expect(page.get_by_label("Phone (optional)", exact=True)).to_have_value("+44 20 7946 0958")
    expect(page.get_by_label("Date of birth (optional)")).to_have_value("1990-04-12")
    profile = PatientProfile.objects.get(user__email="amara@example.com")
    assert profile.phone == "+44 20 7946 0958"
    assert profile.date_of_birth == datetime.date(1990, 4, 12)

    # When they sign out
    sign_out(page)

    # Then they are anonymous again
    expect(page).to_have_url(f"{live_server.url}/")
    expect_signed_out_navigation(page)
    page.goto(f"{live_server.url}/account/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/account/$"))


def test_password_reset_by_email_link(live_server, page: Page):
    # Given a patient with a verified email address
    verified_patient("ravi@example.com", "Old-Lantern-2019!", first_name="Ravi", last_name="Kumar")

    # When they ask for a password reset
    page.goto(f"{live_server.url}/accounts/password/reset/")
    page.get_by_label("Email", exact=True).fill("ravi@example.com")
    page.get_by_role("button", name="Reset My Password").click()

    # Then they are told to check their email, which holds a reset link
    expect(page.get_by_role("heading", level=1)).to_have_text("Password Reset")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ravi@example.com"]
    reset_url = link_in_last_email(r"http\S*/accounts/password/reset/key/\S+")
    assert f'href="{reset_url}"' in html_part(mail.outbox[0])

    # When they open the link and choose a new password
    page.goto(reset_url)
    page.get_by_label("New Password", exact=True).fill(PASSWORD)
    page.get_by_label("New Password (again)").fill(PASSWORD)
    page.get_by_role("button", name="Change Password").click()

    # Then the new password works and the old one does not
    expect(page.get_by_role("heading", level=1)).to_have_text("Change Password")
    expect(page.get_by_text("Your password is now changed.")).to_be_visible()
    sign_in(page, live_server.url, "ravi@example.com", "Old-Lantern-2019!")
    expect(page.get_by_role("alert")).to_contain_text("not correct")
    sign_in(page, live_server.url, "ravi@example.com", PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/account/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Ravi")


def test_step1_pages_render_cleanly_for_screenshots(live_server, page: Page, browser):
    """Walks the Step 1 pages on desktop and mobile, saving full-page screenshots to
    docs/screenshots/ and failing on any browser console error (e.g. a CSP violation)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    user = verified_patient("sam@example.com", PASSWORD, first_name="Sam", last_name="Patel", timezone="Europe/London")
    profile = user.patient_profile
    profile.phone = "+44 20 7946 0958"
    profile.date_of_birth = datetime.date(1988, 6, 3)
    profile.allergies = "Penicillin"
    profile.save()

    def shot(name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"step1-{name}.png"), full_page=True)

    # Anonymous pages; the first Tab reaches the skip link.
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("See a verified doctor by video, today")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    page.mouse.click(1, 1)
    shot("home")
    page.goto(f"{live_server.url}/accounts/login/")
    shot("login")
    page.goto(f"{live_server.url}/accounts/signup/")
    shot("signup")

    # A second device signed in, so the devices page has a session to sign out.
    other = browser.new_context(user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1")
    sign_in(other.new_page(), live_server.url, "sam@example.com", PASSWORD)
    other.close()

    sign_in(page, live_server.url, "sam@example.com", PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Sam")
    expect_fits_the_window(page)  # a patient's links fit the header of a 1280-pixel window
    shot("dashboard")
    page.goto(f"{live_server.url}/account/profile/")
    expect(page.get_by_label("Allergies (optional)")).to_have_value("Penicillin")
    shot("profile")
    page.goto(f"{live_server.url}/account/devices/")
    expect(page.locator(".mm-session")).to_have_count(2)
    expect(page.get_by_role("button", name="Sign out everywhere else")).to_be_visible()
    shot("devices")
    page.locator(".mm-session", has_text="Safari on iPhone").get_by_role("button", name=re.compile("^Sign out")).click()
    expect(page.get_by_role("alert")).to_contain_text("The session has been signed out.")
    expect(page.locator(".mm-session")).to_have_count(1)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/account/")
    shot("dashboard-mobile")

    assert console_errors == []
