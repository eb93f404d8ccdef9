"""Demo data so a newcomer can sign in at once: `manage.py seed_demo`.

Idempotent: running it twice leaves the same accounts. Later steps add doctors' profiles,
services and availability here.
"""

from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import PatientProfile, User

DEMO_PASSWORD = "medimeet-demo-2026"
# Staff must use two-factor authentication; the demo admin gets a known authenticator secret so
# a newcomer can add it to any authenticator app (or compute codes in tests). Demo data only.
DEMO_STAFF_TOTP_SECRET = "MEDIMEETDEMOSTAFFTOTPSECRETKEYAB"

STAFF = [("admin@medimeet.local", "Asha", "Admin")]
# One demo staff member per role (medimeet/core/roles.py), to see what each role sees.
ROLE_STAFF = [
    ("support@medimeet.local", "Sunil", "Support", "support"),
    ("verification@medimeet.local", "Vera", "Verification", "verification"),
    ("finance@medimeet.local", "Farah", "Finance", "finance"),
    ("editor@medimeet.local", "Emma", "Editor", "content editor"),
    ("compliance@medimeet.local", "Colm", "Compliance", "compliance"),
    ("clinical@medimeet.local", "Dr. Kiran", "Clinical", "clinical reviewer"),
]
DOCTORS = [
    ("dr.mehta@medimeet.local", "Priya", "Mehta", "Asia/Kolkata"),
    ("dr.okafor@medimeet.local", "Chidi", "Okafor", "Europe/London"),
    ("dr.garcia@medimeet.local", "Lucia", "Garcia", "America/New_York"),
]
PATIENTS = [
    ("patient@medimeet.local", "Sam", "Patel", "Europe/London"),
    ("rahul@medimeet.local", "Rahul", "Sharma", "Asia/Kolkata"),
]


class Command(BaseCommand):
    help = "Create demo staff, doctors and patients with a known password; --doctors N adds N benchmark doctors."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--doctors", type=int, default=0, help="Also create this many approved benchmark doctors (e.g. 20000).")

    def handle(self, *args, **options) -> None:
        from doctors import demo as doctors_demo


        with transaction.atomic():
            for email, first, last in STAFF:
                self._staff(email, first, last, is_superuser=True)
            for email, first, last, role in ROLE_STAFF:
                self._staff(email, first, last).groups.add(Group.objects.get(name=role))
            for email, first, last, tz in DOCTORS:
                self._user(email, first, last, tz, role=User.Role.DOCTOR)
            for email, first, last, tz in PATIENTS:
                user = self._user(email, first, last, tz, role=User.Role.PATIENT)
                PatientProfile.objects.get_or_create(user=user)
            doctors_demo.reference_data()
        doctors_demo.demo_doctors(DEMO_PASSWORD)
        if options["doctors"]:
            added = doctors_demo.bulk_doctors(options["doctors"])
            self.stdout.write(f"Benchmark doctors: {added} added ({options['doctors']} wanted).")
        self.stdout.write(self.style.SUCCESS(f"Demo accounts (password for all: {DEMO_PASSWORD})"))
        for email, *_ in STAFF + DOCTORS + PATIENTS:
            self.stdout.write(f"  {email}")
        for email, *_, role in ROLE_STAFF:
            self.stdout.write(f"  {email} (staff role: {role})")
        self.stdout.write(
            f"Staff sign-in asks for an authenticator code: add the secret {DEMO_STAFF_TOTP_SECRET} "
            "to an authenticator app (TOTP, 30 s, 6 digits)."
        )

    def _staff(self, email: str, first: str, last: str, **extra) -> User:
        staff = self._user(email, first, last, "UTC", role=User.Role.STAFF, is_staff=True, **extra)
        if not Authenticator.objects.filter(user=staff, type=Authenticator.Type.TOTP).exists():
            TOTP.activate(staff, DEMO_STAFF_TOTP_SECRET)
        return staff

    def _user(self, email: str, first: str, last: str, tz: str, **extra) -> User:
        user, created = User.objects.get_or_create(
            email=email, defaults={"first_name": first, "last_name": last, "timezone": tz, **extra}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        EmailAddress.objects.update_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
        return user
