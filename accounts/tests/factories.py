from __future__ import annotations

import factory
from allauth.account.models import EmailAddress

from accounts.models import PatientProfile, User

PASSWORD = "Correct-Horse-Battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    role = User.Role.PATIENT
    timezone = "Europe/London"

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or PASSWORD)
        if create:
            self.save(update_fields=["password"])

    @factory.post_generation
    def verified(self, create, extracted, **kwargs):
        if create:
            EmailAddress.objects.create(user=self, email=self.email, primary=True, verified=extracted is not False)

    @factory.post_generation
    def profile(self, create, extracted, **kwargs):
        if create and self.role == User.Role.PATIENT:
            PatientProfile.objects.create(user=self)


class DoctorFactory(UserFactory):
    role = User.Role.DOCTOR


class StaffFactory(UserFactory):
    role = User.Role.STAFF
    is_staff = True


def staff_member(*roles: str, totp_secret: str | None = None, **kwargs) -> User:
    """A staff user in the given role groups (``medimeet.core.roles``), with the TOTP
    authenticator staff need to pass the MFA requirement: of ``totp_secret`` when they sign in
    through the login page in the test (``medimeet.core.tests.browser.totp_code``)."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP
    from django.contrib.auth.models import Group

    user = StaffFactory(**kwargs)
    user.groups.add(*Group.objects.filter(name__in=roles))
    if totp_secret:
        TOTP.activate(user, totp_secret)
    else:
        Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "unused"})
    return user
